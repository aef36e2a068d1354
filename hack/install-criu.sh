#!/usr/bin/env bash
# Builds and installs CRIU 4.1.1 (what CheckpointContainer dumps containers with) from
# Debian's source archive: bookworm's criu 3.17.1 fails `criu check` on recent kernels
# ("vdso: Unexpected rt vDSO area bounds").
#   /usr/local/sbin/criu                  the criu binary (no docs, no plugins)
#   /usr/local/lib/criu-4.1.1/python      pycriu and crit (the image decoder)
#   /usr/local/bin/crit                   crit, run by Debian's python3 (python3-protobuf)
# Idempotent: does nothing when /usr/local/sbin/criu already is 4.1.1 and crit is there.
# Build dependencies come from Debian's archive. Quiet; the build takes well under a minute.
set -euo pipefail

version=4.1.1
sha256=f80a66cb3726bb2116266d4759ce3bcbfab7abdb6b6d430bf20dd41911717afe
url="http://deb.debian.org/debian/pool/main/c/criu/criu_${version}.orig.tar.xz"
prefix=/usr/local
binary="$prefix/sbin/criu"
pythondir="$prefix/lib/criu-$version/python"

if [ -x "$binary" ] && "$binary" --version 2>/dev/null | grep -qx "Version: $version" \
   && [ -x "$prefix/bin/crit" ] && [ -d "$pythondir/pycriu" ]; then
  echo "install-criu: criu $version already at $binary"
  exit 0
fi

packages=(build-essential libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev
          libnl-3-dev libnl-route-3-dev libprotobuf-c-dev libprotobuf-dev pkgconf
          protobuf-c-compiler protobuf-compiler python3 python3-protobuf uuid-dev curl xz-utils)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-criu: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/install-criu.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "install-criu: building criu $version from $url"
curl -sSfL --retry 3 -o "$work/criu.tar.xz" "$url"
echo "$sha256  $work/criu.tar.xz" | sha256sum -c --quiet -
tar -xJf "$work/criu.tar.xz" -C "$work"
src="$work/criu-$version"
# `criu` is the binary alone; `lib` generates pycriu's protobuf modules crit needs.
if ! make -C "$src" -j"$(nproc)" criu lib >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  echo "install-criu: build failed" >&2
  exit 1
fi

install -D -m 0755 "$src/criu/criu" "$binary"
rm -rf "$prefix/lib/criu-$version"
mkdir -p "$pythondir"
cp -r "$src/lib/pycriu" "$pythondir/pycriu"
cp -r "$src/crit/crit" "$pythondir/crit"
echo "__version__ = '$version'" >"$pythondir/crit/version.py"
find "$pythondir" -name Makefile -delete
cat >"$prefix/bin/crit" <<EOF
#!/bin/sh
# crit $version (CRIU image tool), installed by swiftlet's hack/install-criu.sh
PYTHONPATH="$pythondir\${PYTHONPATH:+:\$PYTHONPATH}" exec /usr/bin/python3 -m crit "\$@"
EOF
chmod 0755 "$prefix/bin/crit"

"$binary" --version
echo "install-criu: criu check: $("$binary" check 2>&1 | tail -1)"
