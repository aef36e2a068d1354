#!/usr/bin/env bash
# Installs what Swiftlet builds and tests with, from Debian's archive and PyPI only.
#   build:  libgrpc-dev (the gRPC C core), libprotobuf-c-dev, pkg-config
#   codegen: protobuf-c-compiler, protobuf-compiler
#   containers: libseccomp-dev (seccomp filters in swiftlet-monitor)
#   images: libssl-dev (SHA-256), zlib1g-dev (gzip), libcurl4-openssl-dev (registry client);
#           in tests attr (xattrs), docker-registry (a real registry), apache2-utils (htpasswd)
#   networks: containernetworking-plugins (bridge, host-local, …), iproute2 (test namespaces)
#   differential tests: containerd and runc (the CRI peer the pod tests also run against)
#   checkpoints: CRIU, built by hack/install-criu.sh (its build deps come from Debian)
#   tests:  busybox-static (the test containers' root filesystem), a Python venv (.venv) with
#           grpcio, grpcio-tools and pytest
# Swift itself (6.x) is expected at /opt/swift or on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler pkg-config python3-venv
          libseccomp-dev busybox-static libssl-dev zlib1g-dev attr libcurl4-openssl-dev
          docker-registry apache2-utils containernetworking-plugins iproute2 containerd runc)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# CheckpointContainer: CRIU 4.1.1 built from Debian's source (bookworm's 3.17.1 fails on new kernels)
hack/install-criu.sh
if [ "${1:-}" != "--no-python" ]; then
  hack/setup-python.sh
fi
if ! command -v swift >/dev/null && [ -x /opt/swift/usr/bin/swift ]; then
  echo "install-deps: swift is at /opt/swift/usr/bin; add it to PATH" >&2
fi
