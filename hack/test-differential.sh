#!/usr/bin/env bash
# The pod and container end-to-end tests (Tests/e2e/test_{pod_sandbox,cri_containers,
# security_context,pod_network,idempotence,multi_container,exec_sync,stats,streaming,pod_lifecycle,
# user_namespaces,checkpoint}.py) against
# Debian's containerd 1.6 + runc instead of swiftlet: a differential check of the tests
# themselves. A test containerd fails is suspect, unless it is marked
# `xfail_runtime("containerd", reason=...)` (a strict xfail: verified to fail there).
#
#   sudo hack/test-differential.sh                         containerd only
#   sudo hack/test-differential.sh --runtime=swiftlet,containerd   both, side by side
#   sudo hack/test-differential.sh -k network              extra pytest arguments pass through
#
# Every runtime runs in a network namespace, state root and cgroup parent of its test's own,
# all removed afterwards (see Tests/e2e/runtimes.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

runtime_arg="--runtime=containerd"
args=()
for arg in "$@"; do
  case "$arg" in
    --runtime=*) runtime_arg="$arg" ;;
    *) args+=("$arg") ;;
  esac
done

missing=()
for package in containerd runc containernetworking-plugins busybox-static iproute2 iptables; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-differential: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || hack/setup-python.sh
if [[ "$runtime_arg" == *swiftlet* ]] && [ -z "${SWIFTLET_BIN:-}" ] && [ ! -x .build/debug/swiftlet ]; then
  swift build --product swiftlet
fi

tests=(Tests/e2e/test_pod_sandbox.py Tests/e2e/test_cri_containers.py Tests/e2e/test_security_context.py
       Tests/e2e/test_pod_network.py Tests/e2e/test_idempotence.py Tests/e2e/test_multi_container.py
       Tests/e2e/test_exec_sync.py Tests/e2e/test_stats.py Tests/e2e/test_streaming.py Tests/e2e/test_pod_lifecycle.py
       Tests/e2e/test_user_namespaces.py Tests/e2e/test_checkpoint.py)
echo "=== $(containerd --version | cut -d' ' -f1,3); $(runc --version | head -1); ${runtime_arg}"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
status=0
SWIFTLET_BIN="${SWIFTLET_BIN:-$PWD/.build/debug/swiftlet}" .venv/bin/python -m pytest -p no:cacheprovider -q -rfExX \
  "$runtime_arg" --junitxml="$report" "${tests[@]}" "${args[@]}" || status=$?

.venv/bin/python - "$report" <<'PY'
import collections, sys, xml.etree.ElementTree as ET
counts = collections.Counter()
per_file = collections.defaultdict(collections.Counter)
for case in ET.parse(sys.argv[1]).iter("testcase"):
    outcome = "passed"
    for child in case:
        if child.tag in ("failure", "error"):
            outcome = "failed" if child.tag == "failure" else "error"
        elif child.tag == "skipped":
            outcome = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
    name = case.get("name")
    parts = name.partition("[")[2].rstrip("]").split("-")
    runtime = next((r for r in ("swiftlet", "containerd") if r in parts), "?")
    counts[(runtime, outcome)] += 1
    per_file[(case.get("classname").rsplit(".", 1)[-1], runtime)][outcome] += 1
print("\n=== summary (file, runtime: outcomes)")
for (module, runtime), outcome in sorted(per_file.items()):
    print(f"  {module:24} {runtime:10} " + ", ".join(f"{n} {o}" for o, n in sorted(outcome.items())))
for runtime in sorted({r for r, _ in counts}):
    print(f"  TOTAL {runtime}: " + ", ".join(f"{n} {o}" for (r, o), n in sorted(counts.items()) if r == runtime))
PY
exit $status
