{
  "targets": [
    {
      "target_name": "lunrig_native",
      "sources": ["addon.cc", "bitmap.cc", "crc32c.cc", "syscalls.cc"],
      # Headers only, rather than node-addon-api's gyp targets: those make gyp
      # write makefiles into native/node_modules/ when built from this folder.
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # Node-API 8 is in every Node >= 12.22. The module keeps no mutable
      # global state, so it is context-aware and loads in worker_threads.
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-O2"],
      "cflags_cc": ["-std=c++17", "-O3", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_OPTIMIZATION_LEVEL": "3",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES"
      },
      "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1 } }
    }
  ]
}
