#!/usr/bin/env bash
# Fails when the committed generated code differs from what hack/update-codegen.sh writes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$repo/hack/update-codegen.sh" "$tmp"
status=0
for dir in Sources/CSwiftletCRI Sources/CRI/Generated Sources/CRIProtobufC/Generated Sources/CRIServer/Generated; do
  if ! diff -r "$repo/$dir" "$tmp/$dir" >"$tmp/diff.txt" 2>&1; then
    # Only generated files are compared: hand-written files in the same target are skipped.
    if grep -v '^Only in '"$repo/$dir" "$tmp/diff.txt" | grep -q .; then
      echo "verify-codegen: $dir is out of date; run hack/update-codegen.sh" >&2
      head -40 "$tmp/diff.txt" >&2
      status=1
    fi
  fi
done
[ $status -eq 0 ] && echo "verify-codegen: generated code is current"
exit $status
