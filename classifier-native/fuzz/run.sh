#!/bin/sh
# Fuzzes the classifier's decoder and session table with libFuzzer under ASan + UBSan.
#   sh classifier-native/fuzz/run.sh [SECONDS]      (default 60; needs clang: apt-get install clang)
# New inputs that reach new code are kept in fuzz/corpus/; a crash leaves crash-* here and exits non-zero.
set -eu
cd "$(dirname "$0")"
seconds="${1:-60}"
command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing (apt-get install clang)" >&2; exit 2; }
out="$(mktemp -d)"
clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I../src \
  decode_fuzzer.cc ../src/decode.cc ../src/flow_table.cc -o "$out/decode_fuzzer"
mkdir -p corpus
"$out/decode_fuzzer" -max_total_time="$seconds" -max_len=2048 -print_final_stats=1 corpus
