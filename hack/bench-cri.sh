#!/usr/bin/env bash
# CRI server benchmark: Version and Status with 1, 4 and 16 concurrent clients, against
# Swiftlet (release build) and Debian's containerd 1.6 CRI on the same machine, each on its
# own socket and state. Reports calls/s, p50/p99 latency and server CPU per call, and the
# ratios Swiftlet/containerd. Compare CPU per call: the Python client's own cost (~270 µs per
# call) dominates latency.
#
#   sudo hack/bench-cri.sh [SECONDS_PER_POINT]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
seconds=${1:-3}

hack/install-deps.sh
if ! command -v containerd >/dev/null; then
  apt-get install -y -q --no-install-recommends containerd runc >/dev/null
fi
swift build -c release --product swiftlet >/dev/null

work=$(mktemp -d /tmp/swiftlet-bench-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Client stubs from the same protos.
mkdir -p "$work/stubs"
hack/strip-proto-options.sh proto "$work/stubs/proto"
.venv/bin/python -m grpc_tools.protoc -I"$work/stubs/proto" --python_out="$work/stubs" --grpc_python_out="$work/stubs" \
  runtime/v1/api.proto

wait_socket() {
  for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done
  echo "bench-cri: $1 did not appear" >&2; exit 1
}

mkdir -p "$work/swiftlet" "$work/containerd/net.d"
.build/release/swiftlet run --config /dev/null --cri-socket "$work/swiftlet/cri.sock" --root "$work/swiftlet/root" \
  --state "$work/swiftlet/state" --cni-conf-dir "$work/swiftlet/net.d" --log-level warn &
pids+=($!); swiftlet_pid=$!
sed "s|@DIR@|$work/containerd|g" hack/bench/containerd.toml.in > "$work/containerd/config.toml"
containerd --config "$work/containerd/config.toml" 2>"$work/containerd/log" &
pids+=($!); containerd_pid=$!
wait_socket "$work/swiftlet/cri.sock"
wait_socket "$work/containerd/containerd.sock"
sleep 1

results="$work/results.jsonl"
for method in Version Status; do
  for concurrency in 1 4 16; do
    for runtime in swiftlet containerd; do
      if [ $runtime = swiftlet ]; then pid=$swiftlet_pid sock=$work/swiftlet/cri.sock
      else pid=$containerd_pid sock=$work/containerd/containerd.sock; fi
      .venv/bin/python hack/bench/cri_load.py --stubs "$work/stubs" --target "unix://$sock" --pid "$pid" \
        --method $method --concurrency $concurrency --seconds "$seconds" |
        sed "s/^{/{\"runtime\": \"$runtime\", /" >> "$results"
    done
  done
done

.venv/bin/python - "$results" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
by = {(r["runtime"], r["method"], r["concurrency"]): r for r in rows}
print(f"{'method':8} {'conc':>4} | {'swiftlet calls/s':>16} {'p50 µs':>8} {'p99 µs':>8} {'CPU µs/call':>11} | "
      f"{'containerd calls/s':>18} {'p50 µs':>8} {'p99 µs':>8} {'CPU µs/call':>11} | {'CPU ratio':>9} {'calls/s ratio':>13}")
for method in ("Version", "Status"):
    for conc in (1, 4, 16):
        s, c = by[("swiftlet", method, conc)], by[("containerd", method, conc)]
        print(f"{method:8} {conc:>4} | {s['calls_per_second']:>16.0f} {s['p50_us']:>8.0f} {s['p99_us']:>8.0f} "
              f"{s['server_cpu_us_per_call']:>11.1f} | {c['calls_per_second']:>18.0f} {c['p50_us']:>8.0f} {c['p99_us']:>8.0f} "
              f"{c['server_cpu_us_per_call']:>11.1f} | {s['server_cpu_us_per_call'] / c['server_cpu_us_per_call']:>9.2f} "
              f"{s['calls_per_second'] / c['calls_per_second']:>13.2f}")
print("CPU ratio = swiftlet CPU per call / containerd CPU per call (lower is better);"
      " calls/s ratio = swiftlet / containerd (higher is better).")
PY
