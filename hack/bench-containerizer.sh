#!/usr/bin/env bash
# Containerizer benchmark: launch-to-running latency and per-container supervision memory
# for 1, 20 and 100 idle containers, beside Debian's runc (runc run -d) and containerd 1.6
# (ctr run -d, a shim per container), on the same busybox rootfs. Prints ratios.
#
#   sudo hack/bench-containerizer.sh [COUNTS]     (default 1,20,100)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
counts=${1:-1,20,100}
hack/install-deps.sh
for tool in containerd runc; do
  command -v $tool >/dev/null || apt-get install -y -q --no-install-recommends containerd runc >/dev/null
done
swift build -c release --product swiftlet >/dev/null
work=$(mktemp -d /tmp/swiftlet-bench-ctr-XXXXXX)
trap 'rm -rf "$work"' EXIT
monitor=$(hack/build-monitor.sh "$work/swiftlet-monitor")
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/containerd/net.d"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for applet in $(busybox --list); do [ "$applet" = busybox ] || ln -s busybox "$work/rootfs/bin/$applet"; done
sed "s|@DIR@|$work/containerd|g" hack/bench/containerd.toml.in > "$work/containerd/config.toml"
.venv/bin/python hack/bench/containerizer.py "$work" "$PWD/.build/release/swiftlet" "$monitor" "$work/containerd/config.toml" "$counts"
# Swiftlet's cgroups root, and the one containerd made for its "bench" namespace.
for hierarchy in /sys/fs/cgroup/*/; do
  rmdir "$hierarchy"swiftlet-bench-* 2>/dev/null || true
  rmdir "$hierarchy"bench/*/ "$hierarchy"bench 2>/dev/null || true
done
