#!/usr/bin/env bash
# Pod lifecycle benchmark through the CRI: Swiftlet (release build, the installed monitor built
# by hack/build-monitor.sh) beside Debian's containerd 1.6 CRI (config from
# hack/bench/containerd.toml.in, a busybox-static pause image) on the same machine, one after
# the other. Each runtime runs inside a network namespace of its own with the same CNI network
# (Debian's bridge + host-local, its own bridge name and subnet; containerd adds its loopback
# plugin for lo, Swiftlet brings lo up itself), its own root, state, socket and cgroup parent,
# and the same busybox image. Reports, with ratios Swiftlet/containerd: pod start latency
# (RunPodSandbox + CreateContainer + StartContainer until running, and each step), teardown
# latency (StopPodSandbox + RemovePodSandbox), ListContainers/ListPodSandbox latency and server
# CPU per call at N pods, the runtime's process-tree CPU while polled like the kubelet's PLEG,
# and PSS per pod. Everything it made is removed at the end, also on failure.
#
#   sudo hack/bench-pods.sh [--pods N] [--pleg-seconds S] [--json FILE]
#     N pods (default 100) for the lists, the PLEG poll (S seconds, default 60), memory and
#     teardown; pod start latency over the first 30 of them. FILE keeps the raw results.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
pods=100 pleg=60 json=
while [ $# -gt 0 ]; do
  case $1 in
    --pods) pods=$2; shift 2 ;;
    --pleg-seconds) pleg=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "usage: $0 [--pods N] [--pleg-seconds S] [--json FILE]" >&2; exit 2 ;;
  esac
done

hack/install-deps.sh
command -v containerd >/dev/null || apt-get install -y -q --no-install-recommends containerd runc >/dev/null
[ -x /usr/lib/cni/bridge ] || apt-get install -y -q --no-install-recommends containernetworking-plugins >/dev/null
swift build -c release --product swiftlet >/dev/null

work=$(mktemp -d /tmp/swiftlet-bench-pods-XXXXXX)
token=${work##*-}
name=swiftlet-bench-pods-$token
pids=()
cleanup() {
  status=$?
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ $status -ne 0 ]; then
    for log in "$work"/*/log; do [ -s "$log" ] && { echo "--- $log"; tail -n 20 "$log"; }; done >&2
  fi
  .venv/bin/python hack/bench/pods.py cleanup --work "$work" --containerd-socket "$work/containerd/containerd.sock" \
    --cgroup "$name-swiftlet" --cgroup "$name-containerd" --cgroup "$name-agent" \
    --netns "$name-swiftlet" --netns "$name-containerd" || true
  rm -rf "$work"
}
trap cleanup EXIT

# Client stubs from the same protos; Swiftlet installed as it would be: the agent with the
# cc-built swiftlet-monitor next to it.
mkdir -p "$work/stubs" "$work/bin" "$work/images"
hack/strip-proto-options.sh proto "$work/stubs/proto"
.venv/bin/python -m grpc_tools.protoc -I"$work/stubs/proto" --python_out="$work/stubs" --grpc_python_out="$work/stubs" \
  runtime/v1/api.proto
cp .build/release/swiftlet "$work/bin/swiftlet"
hack/build-monitor.sh "$work/bin/swiftlet-monitor" >/dev/null
.venv/bin/python hack/bench/pods.py images "$work/images"

# The network namespace, CNI config and directories of runtime $1 with pod subnet $2.
prepare() {
  local dir=$work/$1 bridge=swlbp${token}${1:0:1}
  mkdir -p "$dir/net.d" "$dir/ipam"
  ip netns add "$name-$1"
  ip -n "$name-$1" link set lo up
  cat > "$dir/net.d/10-bench.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "$name-$1", "plugins": [
  {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$2"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "$dir/ipam"}}]}
EOF
}

wait_socket() {
  for _ in $(seq 600); do [ -S "$1" ] && return 0; sleep 0.05; done
  echo "bench-pods: $1 did not appear" >&2; exit 1
}

# Measures runtime $1 (daemon pid $2, socket $3, helper processes' command-line marker $4).
measure() {
  .venv/bin/python hack/bench/pods.py measure --runtime "$1" --pid "$2" --socket "$3" --marker "$4" \
    --stubs "$work/stubs" --work "$work/$1" --cgroup-parent "/$name-$1" --pods "$pods" --pleg-seconds "$pleg" \
    >> "$work/results.jsonl"
}

stop() {
  kill -TERM "$1"; wait "$1" 2>/dev/null || true
  local left=() pid; for pid in "${pids[@]}"; do [ "$pid" = "$1" ] || left+=("$pid"); done; pids=("${left[@]}")
}

prepare swiftlet 10.201.0.0/16
"$work/bin/swiftlet" images import --root "$work/swiftlet/root" "$work/images/busybox.tar" >/dev/null
nsenter --net="/run/netns/$name-swiftlet" "$work/bin/swiftlet" run --config /dev/null \
  --cri-socket "$work/swiftlet/cri.sock" --root "$work/swiftlet/root" --state "$work/swiftlet/state" \
  --cni-conf-dir "$work/swiftlet/net.d" --cni-bin-dir /usr/lib/cni --cgroups-root "$name-agent" \
  --log-level warn 2>"$work/swiftlet/log" &
pids+=($!); swiftlet_pid=$!
wait_socket "$work/swiftlet/cri.sock"
echo "bench-pods: swiftlet, $pods pods ..." >&2
measure swiftlet $swiftlet_pid "$work/swiftlet/cri.sock" "$work/bin/swiftlet-monitor"
stop $swiftlet_pid

prepare containerd 10.202.0.0/16
sed -e "s|@DIR@|$work/containerd|g" -e "/restrict_oom_score_adj/a\\  sandbox_image = \"swiftlet.bench/pause:pods\"" \
  hack/bench/containerd.toml.in > "$work/containerd/config.toml"
nsenter --net="/run/netns/$name-containerd" containerd --config "$work/containerd/config.toml" 2>"$work/containerd/log" &
pids+=($!); containerd_pid=$!
wait_socket "$work/containerd/containerd.sock"
for image in busybox pause; do
  ctr --address "$work/containerd/containerd.sock" -n k8s.io images import "$work/images/$image.tar" >/dev/null
done
echo "bench-pods: containerd, $pods pods ..." >&2
measure containerd $containerd_pid "$work/containerd/containerd.sock" "$work/containerd/"
stop $containerd_pid

[ -z "$json" ] || cp "$work/results.jsonl" "$json"
.venv/bin/python hack/bench/pods.py report "$work/results.jsonl"
