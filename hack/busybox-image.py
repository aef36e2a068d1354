#!/usr/bin/env python3
"""Writes an OCI image archive of Debian's busybox-static (/bin/busybox with its applets), for
running the example static pods on a machine with no registry:

    hack/busybox-image.py OUT.tar [--name swiftlet.local/busybox:1.35]
    swiftlet images import OUT.tar

Python's standard library only; the layer is reproducible (fixed times and owners)."""
import argparse
import gzip
import hashlib
import io
import json
import pathlib
import shutil
import subprocess
import tarfile


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer():
    busybox = pathlib.Path(shutil.which("busybox") or "/bin/busybox").read_bytes()
    applets = subprocess.run(["busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        def add(name, data=b"", mode=0o644, kind=tarfile.REGTYPE, link=""):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname = kind, mode, 0, link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        for directory, mode in [("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700), ("var", 0o755),
                                ("var/www", 0o755), ("run", 0o755), ("dev", 0o755), ("proc", 0o555), ("sys", 0o555)]:
            add(directory, mode=mode, kind=tarfile.DIRTYPE)
        add("bin/busybox", busybox, mode=0o755)
        for applet in applets:
            if applet != "busybox":
                add(f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox")
        add("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return buffer.getvalue()


def write_archive(path, name):
    raw = layer()
    compressed = gzip.compress(raw, compresslevel=6, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
                         "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha256(raw)]}}, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(compressed),
                    "size": len(compressed)}]}, sort_keys=True).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(manifest), "size": len(manifest),
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}}]})
    with tarfile.open(path, "w") as archive:
        def add(member, data):
            info = tarfile.TarInfo(member)
            info.size, info.mtime = len(data), 0
            archive.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add("index.json", index.encode())
        for blob in (config, manifest, compressed):
            add("blobs/sha256/" + sha256(blob)[7:], blob)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--name", default="swiftlet.local/busybox:1.35")
    options = parser.parse_args()
    write_archive(options.output, options.name)
    print(f"{options.output}: {options.name}")
