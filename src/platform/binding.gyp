{
  "targets": [
    {
      "target_name": "kbrackup_platform",
      "sources": ["platform.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra"]
    }
  ]
}
