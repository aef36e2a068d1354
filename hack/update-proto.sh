#!/usr/bin/env bash
# Re-vendors the CRI API definitions into proto/ from their Debian packages, by name:
#   runtime.v1       golang-github-kubernetes-cri-api-dev (trixie, 0.32.3)
#                    k8s.io/cri-api/pkg/apis/runtime/v1/api.proto
#   runtime.v1alpha2 the kubernetes source package (bookworm, 1.20.2)
#                    staging/src/k8s.io/cri-api/pkg/apis/runtime/v1alpha2/api.proto
# The files are copied unchanged. A private apt state (sources list, lists, cache) in a
# temporary directory keeps the machine's own apt configuration untouched.
set -euo pipefail
cd "$(dirname "$0")/.."

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
cat > "$work/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm main
SRC
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=root")
apt-get "${apt_opts[@]}" -q update >/dev/null

cd "$work"
apt-get "${apt_opts[@]}" -q download "golang-github-kubernetes-cri-api-dev=0.32.3*"
dpkg-deb -x golang-github-kubernetes-cri-api-dev_*.deb v1
# bookworm versions it 1.20.5+really1.20.2: the 1.20.2 tree under a bumped version.
k8s_version=$(apt-cache "${apt_opts[@]}" showsrc kubernetes | awk '/^Version: .*really1\.20\.2/ {print $2; exit}')
[ -n "$k8s_version" ] || { echo "update-proto: no kubernetes 1.20.2 source in bookworm" >&2; exit 1; }
apt-get "${apt_opts[@]}" -q source --download-only "kubernetes=$k8s_version"
tar -xf kubernetes_*really1.20.2.orig.tar.* --wildcards '*/staging/src/k8s.io/cri-api/pkg/apis/runtime/v1alpha2/api.proto'
cd - >/dev/null

v1=$(find "$work/v1" -path '*k8s.io/cri-api/pkg/apis/runtime/v1/api.proto' | head -1)
v1alpha2=$(find "$work" -path '*staging/src/k8s.io/cri-api/pkg/apis/runtime/v1alpha2/api.proto' | head -1)
mkdir -p proto/runtime/v1 proto/runtime/v1alpha2
install -m 0644 "$v1" proto/runtime/v1/api.proto
install -m 0644 "$v1alpha2" proto/runtime/v1alpha2/api.proto
echo "vendored: proto/runtime/v1/api.proto (cri-api 0.32.3), proto/runtime/v1alpha2/api.proto (kubernetes 1.20.2)"
