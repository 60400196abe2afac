#!/bin/sh
# Runs the classifier's whole pipeline (all plug-ins) over capture files under ASan + UBSan, then under Valgrind.
#   sh classifier-native/fuzz/check-captures.sh CAPTURE…      (needs clang and valgrind)
set -eu
cd "$(dirname "$0")"
[ "$#" -gt 0 ] || { echo "usage: check-captures.sh CAPTURE…" >&2; exit 2; }
out="$(mktemp -d)"
src="../src/decode.cc ../src/flow_table.cc ../src/port_plugin.cc ../src/ndpi_plugin.cc ../src/signature_plugin.cc ../src/statistical_plugin.cc ../src/engine.cc"
libs="-lpcap -lndpi -lgcrypt -lm -lhs"
clang++ -std=c++17 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -I../src -I/usr/include/ndpi \
  captures.cc $src $libs -o "$out/captures-asan"
clang++ -std=c++17 -gdwarf-4 -O1 -I../src -I/usr/include/ndpi captures.cc $src $libs -o "$out/captures"
for run in "signature,ndpi,port priority" "port,signature,statistical,ndpi weighted"; do
  plugins="${run% *}" combiner="${run#* }"
  echo "ASan + UBSan ($plugins, $combiner):"
  ASAN_OPTIONS=detect_leaks=1 "$out/captures-asan" ../data "$plugins" "$combiner" "$@"
  echo "Valgrind ($plugins, $combiner):"
  valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q "$out/captures" ../data "$plugins" "$combiner" "$@"
done
