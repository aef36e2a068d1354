#!/usr/bin/env bash
# Builds swiftlet-monitor with the C compiler alone (no Swift runtime linked in), as it is
# installed: one per container, so its memory is what supervision costs.
#
#   hack/build-monitor.sh [OUTPUT]     (default .build/swiftlet-monitor)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/swiftlet-monitor}
mkdir -p "$(dirname "$out")"
${CC:-cc} -O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation -D_GNU_SOURCE -o "$out" Sources/CSwiftletMonitor/*.c -lseccomp
echo "$out"
