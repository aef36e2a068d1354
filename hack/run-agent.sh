#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs Swiftlet standalone, offline, in the foreground:
# installs the build dependencies from Debian, builds the release binary, installs it to
# /usr/local/bin, and runs it with manifests/swiftlet.yaml (Ctrl-C or SIGTERM stops it).
#
#   sudo hack/run-agent.sh [extra `swiftlet run` flags]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
hack/install-deps.sh --no-python
swift build -c release --product swiftlet
install -D -m 0755 .build/release/swiftlet /usr/local/bin/swiftlet
# The per-container supervisor, built with cc alone (no Swift runtime in it).
hack/build-monitor.sh /usr/local/bin/swiftlet-monitor >/dev/null
echo "run-agent: crictl --runtime-endpoint unix:///run/swiftlet/swiftlet.sock version  # to talk to it"
exec /usr/local/bin/swiftlet run --config manifests/swiftlet.yaml "$@"
