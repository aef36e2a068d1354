#!/usr/bin/env bash
# Sets up and runs every test: generated code current, the Swift Testing suites (also under
# AddressSanitizer), and the end-to-end suite — a real `swiftlet run` driven by a real gRPC
# client (grpcio) — against both the normal and the AddressSanitizer build, and the pod and
# container part of it against Debian's containerd as a differential check of the tests.
#
#   sudo hack/test.sh            everything
#   sudo hack/test.sh --quick    no AddressSanitizer builds
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
quick=false
[ "${1:-}" = "--quick" ] && quick=true

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
hack/install-deps.sh

step "generated code is current"
hack/verify-codegen.sh

step "swift build"
swift build --build-tests

step "Kubernetes 1.20 control plane and kubelet for the node tests (built once per machine, cached)"
hack/local-up-cluster.sh build

step "swift test (Swift Testing)"
swift test --skip-build

step "end-to-end: swiftlet run + grpcio"
SWIFTLET_BIN="$PWD/.build/debug/swiftlet" .venv/bin/python -m pytest -q -rs -p no:cacheprovider Tests/e2e

step "differential: the pod and container suite against containerd 1.6 + runc"
hack/test-differential.sh

if ! $quick; then
  step "AddressSanitizer: swift test"
  swift build --build-tests --sanitize=address --scratch-path .build-asan
  # Leak checking stays off: LeakSanitizer reports the Swift runtime's and XCTest's
  # process-lifetime allocations.
  ASAN_OPTIONS=detect_leaks=0 swift test --skip-build --sanitize=address --scratch-path .build-asan

  step "AddressSanitizer + LeakSanitizer: end-to-end against the instrumented agent"
  # Every agent the suite starts must exit with no ASan error and no leak report.
  asan_logs=$(mktemp -d)
  # The agent runs instrumented; its swiftlet-monitor is the plain build beside it. The
  # monitor's own code runs under ASan in the Swift suites above; here it would inherit
  # LeakSanitizer, whose exit-time scan does not finish in a process that cloned children
  # into other namespaces and users.
  asan_bin=$(mktemp -d)
  cp .build-asan/debug/swiftlet "$asan_bin/swiftlet"
  cp .build/debug/swiftlet-monitor "$asan_bin/swiftlet-monitor"
  status=0
  ASAN_OPTIONS="detect_leaks=1:log_path=$asan_logs/agent" LSAN_OPTIONS="suppressions=$PWD/hack/lsan-suppressions.txt:print_suppressions=0" \
    SWIFTLET_BIN="$asan_bin/swiftlet" .venv/bin/python -m pytest -q -rs -p no:cacheprovider Tests/e2e || status=$?
  rm -rf "$asan_bin"
  if compgen -G "$asan_logs/agent*" >/dev/null; then
    cat "$asan_logs"/agent* >&2
    echo "AddressSanitizer/LeakSanitizer reports from the agent (above)" >&2
    exit 1
  fi
  rm -rf "$asan_logs"
  [ $status -eq 0 ] || exit $status
fi
