#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs Swiftlet standalone, offline, in the foreground,
# with the example static pods of manifests/static-pods:
#   - installs the build dependencies from Debian, builds the release binary, installs it (and
#     swiftlet-monitor) to /usr/local/bin;
#   - makes the examples' image (swiftlet.local/busybox:1.35) from Debian's busybox-static with
#     hack/busybox-image.py and imports it (no registry needed);
#   - installs manifests/cni/10-swiftlet.conflist into /etc/cni/net.d when no CNI network is
#     configured there (a bridge swl0 on 10.85.0.0/16);
#   - runs `swiftlet run` with manifests/swiftlet.yaml and --pod-manifest-path manifests/static-pods
#     (Ctrl-C or SIGTERM stops the agent; the pods keep running and are adopted at the next start).
#
#   sudo hack/run-agent.sh [extra `swiftlet run` flags, e.g. --kubeconfig node.kubeconfig]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
hack/install-deps.sh --no-python
swift build -c release --product swiftlet
install -D -m 0755 .build/release/swiftlet /usr/local/bin/swiftlet
# The per-container supervisor, built with cc alone (no Swift runtime in it).
hack/build-monitor.sh /usr/local/bin/swiftlet-monitor >/dev/null

image_archive="$(mktemp /tmp/swiftlet-busybox.XXXXXX.tar)"
trap 'rm -f "$image_archive"' EXIT
python3 hack/busybox-image.py "$image_archive" >/dev/null
/usr/local/bin/swiftlet images import "$image_archive" >/dev/null
echo "run-agent: imported swiftlet.local/busybox:1.35 for the example static pods"

if ! ls /etc/cni/net.d/*.conf /etc/cni/net.d/*.conflist /etc/cni/net.d/*.json >/dev/null 2>&1; then
  install -D -m 0644 manifests/cni/10-swiftlet.conflist /etc/cni/net.d/10-swiftlet.conflist
  echo "run-agent: installed /etc/cni/net.d/10-swiftlet.conflist (bridge swl0, 10.85.0.0/16)"
fi
echo "run-agent: crictl --runtime-endpoint unix:///run/swiftlet/swiftlet.sock pods   # to see the static pods"
echo "run-agent: curl http://127.0.0.1:18080/                                    # the hello-web example"
exec /usr/local/bin/swiftlet run --config manifests/swiftlet.yaml --pod-manifest-path "$PWD/manifests/static-pods" "$@"
