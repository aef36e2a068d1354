#!/usr/bin/env bash
# Copies proto/ to DEST without the gogoproto import and `option (gogoproto.*)` lines, which
# only the Go generator understands. Field numbers, names and types are untouched.
set -euo pipefail
src=$1 dest=$2
for f in $(cd "$src" && find . -name '*.proto'); do
  mkdir -p "$dest/$(dirname "$f")"
  sed -e '/^import "github.com\/gogo\/protobuf\/gogoproto\/gogo.proto";/d' \
      -e '/^option (gogoproto\./d' "$src/$f" > "$dest/$f"
  if grep -q 'gogoproto\|debug_redact' "$dest/$f"; then
    echo "strip-proto-options: $f still uses options protoc cannot resolve:" >&2
    grep -n 'gogoproto\|debug_redact' "$dest/$f" >&2
    exit 1
  fi
done
