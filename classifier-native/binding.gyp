{
  "targets": [{
    "target_name": "vantage_classifier",
    "sources": ["src/decode.cc", "src/flow_table.cc", "src/port_plugin.cc", "src/ndpi_plugin.cc", "src/signature_plugin.cc", "src/statistical_plugin.cc", "src/engine.cc", "src/addon.cc"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "src", "/usr/include/ndpi"],
    "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
    "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra"],
    "libraries": ["-lpcap", "-lndpi", "-lgcrypt", "-lm", "-lhs"]
  }]
}
