#!/usr/bin/env bash
# Node benchmark: Swiftlet as a Kubernetes Node (`swiftlet run --kubeconfig`, its own runtime)
# beside the real kubelet 1.20 + containerd 1.6 (Debian's; kubelet built by
# hack/local-up-cluster.sh), on the same machine, one after the other. Each side gets a fresh
# control plane of the same kind (etcd + kube-apiserver + controller-manager + scheduler 1.20
# from hack/local-up-cluster.sh) inside a network namespace of its own, in which the agent(s),
# the CNI network (the same bridge + host-local + portmap config) and every listener live; the
# node is named 127.0.0.1 on both sides; the same offline busybox image (hack/busybox-image.py)
# is imported into the node's store beforehand; the same pod spec (bound with spec.nodeName, no
# scheduler; `sleep`, imagePullPolicy Never) is used. hack/bench/node.py measures, over the API:
#   - pod start: POST until the pod's watch event says Running, one pod at a time (p50/p95 over
#     --start-samples pods after a warm-up pod), then they are deleted;
#   - the agent's CPU (% of a core, utime+stime deltas) and PSS/RSS (smaps_rollup) with --pods
#     running pods, steady state over --steady-seconds, and at 0 pods; summed over
#     kubelet + containerd + its containerd-shim-runc-v2 processes, and over `swiftlet run` +
#     its swiftlet-monitor processes;
# and prints a table with ratios Swiftlet / (kubelet + containerd), and writes a JSON file.
# Everything it starts (processes, netns, cgroups, mounts, temp dirs, the kernel tunables the
# kubelet rewrites, its /var/log/pods and /var/log/containers entries) is removed or restored at
# the end, also on failure or Ctrl-C.
#
#   sudo hack/bench-node.sh [--pods N] [--start-samples N] [--steady-seconds S] [--settle S]
#                           [--json FILE] [--debug | --no-build] [--only swiftlet|kubelet]
#     --pods N            running pods for the CPU/memory steady state (default 100)
#     --start-samples N   pods for the start latency (default 30)
#     --steady-seconds S  the steady-state window (default 60); --settle S before it (default 20)
#     --json FILE         the result file (default /tmp/swiftlet-bench-node-<date>.json)
#     --debug             measure the debug build (default: `swift build -c release`)
#     --no-build          measure the existing .build/release (or, with --debug, debug) binary
#     --only SIDE         one side only (no ratios)
# A full run takes ~10-15 min on 2 cores; `--pods 20 --start-samples 10 --steady-seconds 20`
# takes ~4 min.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
repo=$PWD
pods=100 samples=30 steady=60 settle=20 json= configuration=release build=true sides="swiftlet kubelet"
usage() { sed -n '/^#   sudo/,/^#     --only/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --pods) pods=$2; shift 2 ;;
    --start-samples) samples=$2; shift 2 ;;
    --steady-seconds) steady=$2; shift 2 ;;
    --settle) settle=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --debug) configuration=debug; shift ;;
    --no-build) build=false; shift ;;
    --only) sides=$2; shift 2 ;;
    *) usage ;;
  esac
done
case $sides in swiftlet|kubelet|"swiftlet kubelet") ;; *) usage ;; esac
[ "$pods" -ge 1 ] && [ "$pods" -le 110 ] && [ "$samples" -ge 1 ] || { echo "bench-node: 1 <= --pods <= 110 (the nodes' maxPods), --start-samples >= 1" >&2; exit 2; }
log() { echo "bench-node: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "needs root"; exit 1; }

hack/install-deps.sh --no-python
kube_bin=$(hack/local-up-cluster.sh bin-dir | tail -n1)
[ -x "$kube_bin/kubelet" ] || { log "no kubelet in $kube_bin"; exit 1; }

token=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
work=/tmp/swiftlet-bench-node-$token
mkdir -m 0755 "$work"
name=swl-bench-node-$token       # netns, cgroup and CNI network names
namespace=bench-$token           # the pods' Kubernetes namespace
json=${json:-/tmp/swiftlet-bench-node-$(date +%Y%m%d-%H%M%S).json}
pids=()                          # agents started here (swiftlet, containerd, kubelet)
held_tunables=false
made_dirs=()
for dir in /var/log/pods /var/log/containers; do [ -e "$dir" ] || made_dirs+=(--made-dir "$dir"); done

# stop PID SECONDS: SIGTERM, then SIGKILL after SECONDS.
stop() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq $(($2 * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local left=() p; for p in "${pids[@]}"; do [ "$p" = "$pid" ] || left+=("$p"); done; pids=("${left[@]}")
}

cleanup() {
  local status=$? i
  trap - EXIT INT TERM
  set +e
  # The kubelet first (it would restart what goes), then the runtimes, newest first.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[i]}" 30; done
  if [ $status -ne 0 ]; then
    for f in "$work"/*/agent.log "$work"/*/kubelet.log "$work"/*/containerd.log; do
      [ -s "$f" ] && { echo "--- $f (tail)"; tail -n 25 "$f"; }
    done >&2
  fi
  for cluster in "$work"/*/cluster; do
    [ -d "$cluster" ] && hack/local-up-cluster.sh down --dir "$cluster" >/dev/null 2>&1
  done
  python3 hack/bench/node.py cleanup --work "$work" --containerd-socket "$work/kubelet/containerd.sock" \
    --cgroup "$name-swiftlet" --cgroup "$name-kubelet" --netns "$name-swiftlet" --netns "$name-kubelet" \
    --cni-network "$name-swiftlet" --cni-network "$name-kubelet" --namespace "$namespace" "${made_dirs[@]}"
  $held_tunables && python3 hack/bench/node.py tunables release --token "$token"
  rm -rf "$work"
  [ $status -eq 0 ] || log "failed ($status); cleaned up"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_socket() {  # PATH PID
  for _ in $(seq 600); do
    [ -S "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || { log "$1: its server exited"; exit 1; }
    sleep 0.05
  done
  log "$1 did not appear"; exit 1
}

# The side's network namespace and CNI network (the same on both sides but for the names).
prepare() {
  local side=$1 dir=$work/$1
  mkdir -p "$dir/net.d" "$dir/ipam"
  ip netns add "$name-$side"
  ip -n "$name-$side" link set lo up
  ip netns exec "$name-$side" sysctl -q -w net.ipv4.ip_forward=1
  cat > "$dir/net.d/10-bench.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "$name-$side", "plugins": [
  {"type": "bridge", "bridge": "swlbn$token${side:0:1}", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.210.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "$dir/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
  log "$side: control plane (hack/local-up-cluster.sh up) in netns $name-$side ..."
  nsenter --net="/run/netns/$name-$side" hack/local-up-cluster.sh up --dir "$dir/cluster" --node-name 127.0.0.1 >/dev/null
}

# measure SIDE ARGS...: node.py measure inside the side's netns, one JSON line to results.
measure() {
  local side=$1; shift
  nsenter --net="/run/netns/$name-$side" python3 hack/bench/node.py measure --side "$side" \
    --cluster-dir "$work/$side/cluster" --namespace "$namespace" --pods "$pods" --start-samples "$samples" \
    --steady-seconds "$steady" --settle "$settle" "$@" >> "$work/results.jsonl"
}

if $build; then
  log "swift build -c $configuration --product swiftlet ..."
  if ! swift build -c "$configuration" --product swiftlet > "$work/build.log" 2>&1; then
    grep -m5 "error:" "$work/build.log" >&2 || tail -n 20 "$work/build.log" >&2
    log "the $configuration build failed; a file may be mid-edit: retry, or measure the existing binary with --no-build"
    exit 1
  fi
fi
binary=.build/$configuration/swiftlet
[ -x "$binary" ] || { log "no $binary"; exit 1; }

# Swiftlet installed as it would be: the agent with the cc-built swiftlet-monitor next to it.
mkdir -p "$work/bin" "$work/images"
cp "$binary" "$work/bin/swiftlet"
hack/build-monitor.sh "$work/bin/swiftlet-monitor" >/dev/null
python3 hack/bench/node.py images "$work/images" >/dev/null
log "swiftlet: $binary ($configuration build, $(cd "$repo" && git describe --always --dirty 2>/dev/null))"

eviction="memory.available<100Mi,nodefs.available<1%,imagefs.available<1%"

if [[ " $sides " == *" swiftlet "* ]]; then
  dir=$work/swiftlet
  prepare swiftlet
  "$work/bin/swiftlet" images import --root "$dir/root" "$work/images/busybox.oci.tar" >/dev/null
  nsenter --net="/run/netns/$name-swiftlet" "$work/bin/swiftlet" run --config /dev/null \
    --cri-socket "$dir/cri.sock" --root "$dir/root" --state "$dir/state" \
    --cni-conf-dir "$dir/net.d" --cni-bin-dir /usr/lib/cni --cgroups-root "$name-swiftlet" \
    --kubeconfig "$dir/cluster/node.kubeconfig" --hostname-override 127.0.0.1 --node-ip 127.0.0.1 \
    --address 127.0.0.1 --pod-logs-dir "$dir/pod-logs" --eviction-hard "$eviction" \
    > "$dir/agent.log" 2>&1 &
  pids+=($!); swiftlet_pid=$!
  wait_socket "$dir/cri.sock" $swiftlet_pid
  log "swiftlet: measuring ($samples start samples, $pods pods, ${steady}s steady) ..."
  measure swiftlet --daemon "swiftlet=$swiftlet_pid" --helper "swiftlet-monitor=$work/bin/"
  stop $swiftlet_pid 30
  hack/local-up-cluster.sh down --dir "$dir/cluster" >/dev/null
fi

if [[ " $sides " == *" kubelet "* ]]; then
  dir=$work/kubelet
  prepare kubelet
  mkdir -p "$dir/containerd"
  cat > "$dir/containerd.toml" <<EOF
# containerd 1.6 as a kubelet's runtime: its own root, state, socket and runc root under $dir.
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "swiftlet.bench/pause:pods"
  # Nothing on these machines may lower oom_score_adj (no CAP_SYS_RESOURCE).
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "$dir/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/net.d"
    max_conf_num = 1
EOF
  nsenter --net="/run/netns/$name-kubelet" containerd --config "$dir/containerd.toml" > "$dir/containerd.log" 2>&1 &
  pids+=($!); containerd_pid=$!
  wait_socket "$dir/containerd.sock" $containerd_pid
  for image in busybox.oci pause; do
    ctr --address "$dir/containerd.sock" -n k8s.io images import "$work/images/$image.tar" >/dev/null
  done

  # kubelet 1.20 as in Tests/e2e/test_kubelet_compat.py: private dirs, cgroupfs under a
  # cgroupRoot of its own, no swap check, no iptables chains, oomScoreAdj 0 (no
  # CAP_SYS_RESOURCE), no image GC (shared disk); otherwise its defaults (sync and status
  # frequencies, API QPS, log level). The same eviction thresholds as Swiftlet's.
  python3 hack/bench/node.py tunables hold --token "$token" --pid $$
  held_tunables=true
  for hierarchy in /sys/fs/cgroup/*; do  # kubelet checks its cgroupRoot in every v1 controller
    if [ "${hierarchy##*/}" != unified ] && [ -e "$hierarchy/cgroup.procs" ]; then mkdir -p "$hierarchy/$name-kubelet"; fi
  done
  cat > "$dir/kubelet.yaml" <<EOF
{"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
 "address": "127.0.0.1", "port": 10250, "readOnlyPort": 0, "healthzBindAddress": "127.0.0.1", "healthzPort": 10248,
 "authentication": {"anonymous": {"enabled": false}, "webhook": {"enabled": false},
                    "x509": {"clientCAFile": "$dir/cluster/pki/ca.crt"}},
 "authorization": {"mode": "AlwaysAllow"},
 "cgroupDriver": "cgroupfs", "cgroupRoot": "/$name-kubelet", "cgroupsPerQOS": true,
 "failSwapOn": false, "makeIPTablesUtilChains": false, "oomScoreAdj": 0,
 "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
 "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
 "resolvConf": "/etc/resolv.conf"}
EOF
  nsenter --net="/run/netns/$name-kubelet" "$kube_bin/kubelet" --config "$dir/kubelet.yaml" \
    --kubeconfig "$dir/cluster/node.kubeconfig" --root-dir "$dir/kubelet-root" --cert-dir "$dir/kubelet-pki" \
    --volume-plugin-dir "$dir/volume-plugins" --hostname-override 127.0.0.1 \
    --container-runtime remote --container-runtime-endpoint "unix://$dir/containerd.sock" \
    --image-service-endpoint "unix://$dir/containerd.sock" --runtime-request-timeout 2m \
    > "$dir/kubelet.log" 2>&1 &
  pids+=($!); kubelet_pid=$!
  log "kubelet: measuring ($samples start samples, $pods pods, ${steady}s steady) ..."
  measure kubelet --daemon "kubelet=$kubelet_pid" --daemon "containerd=$containerd_pid" \
    --helper "containerd-shim-runc-v2=$dir/containerd.sock"
  stop $kubelet_pid 30
  stop $containerd_pid 30
  hack/local-up-cluster.sh down --dir "$dir/cluster" >/dev/null
fi

echo "swiftlet binary: $binary ($configuration build)"
python3 hack/bench/node.py report "$work/results.jsonl" --json "$json"
