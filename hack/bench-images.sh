#!/usr/bin/env bash
# Image pull benchmark through the CRI: Swiftlet beside Debian's containerd 1.6, both pulling
# from the same local registry (Debian's docker-registry on loopback, plain HTTP declared in a
# hosts.toml for each), cold and warm, for ~1 MB, ~5 MB and ~100 MB images. Prints ratios.
#
#   sudo hack/bench-images.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
hack/install-deps.sh
command -v containerd >/dev/null || apt-get install -y -q --no-install-recommends containerd runc >/dev/null
swift build -c release --product swiftlet >/dev/null
work=$(mktemp -d /tmp/swiftlet-bench-img-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for hierarchy in /sys/fs/cgroup/*/; do rmdir "$hierarchy"k8s.io 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
mkdir -p "$work/registry" "$work/certs.d/$host" "$work/stubs" "$work/containerd/net.d"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$work/registry" "$host" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
pids+=($!)
printf 'server = "http://%s"\n' "$host" > "$work/certs.d/$host/hosts.toml"

.build/release/swiftlet run --config /dev/null --cri-socket "$work/swiftlet.sock" --root "$work/swiftlet-root" \
  --state "$work/swiftlet-state" --registry-config-path "$work/certs.d" --log-level warn &
pids+=($!)
sed "s|@DIR@|$work/containerd|g" hack/bench/containerd.toml.in > "$work/containerd/config.toml"
printf '  [plugins."io.containerd.grpc.v1.cri".registry]\n    config_path = "%s"\n' "$work/certs.d" >> "$work/containerd/config.toml"
containerd --config "$work/containerd/config.toml" 2>"$work/containerd.log" &
pids+=($!)

hack/strip-proto-options.sh proto "$work/stubs/proto"
.venv/bin/python -m grpc_tools.protoc -I"$work/stubs/proto" --python_out="$work/stubs" --grpc_python_out="$work/stubs" runtime/v1/api.proto
for _ in $(seq 200); do [ -S "$work/swiftlet.sock" ] && [ -S "$work/containerd/containerd.sock" ] && break; sleep 0.05; done
sleep 1
.venv/bin/python hack/bench/images.py "$work" "$work/stubs" "$work/swiftlet.sock" "$work/containerd/containerd.sock" "$host"
