{
  "targets": [{
    "target_name": "vantage_icmp",
    "sources": ["icmp.cc", "traceroute.cc", "mask.cc"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
    "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"]
  }]
}
