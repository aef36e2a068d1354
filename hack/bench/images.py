#!/usr/bin/env python3
"""Image pull benchmark: cold pull + unpack and warm re-pull through the CRI, Swiftlet beside
containerd 1.6, both against the same local registry (Debian's docker-registry), for images
of about 1 MB, 5 MB and 100 MB (the last in four layers)."""
import gzip
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tarfile
import time
import io

import grpc

work = pathlib.Path(sys.argv[1])
stubs, swiftlet_socket, containerd_socket, registry_host = sys.argv[2:6]
sys.path.insert(0, stubs)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "Tests/e2e"))
import images  # noqa: E402
from runtime.v1 import api_pb2, api_pb2_grpc  # noqa: E402


def layer(size, seed):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(f"data/blob{seed}.bin")
        data = os.urandom(size)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build(name, layer_sizes):
    raw = images.layers() + [layer(size, index) for index, size in enumerate(layer_sizes)]
    compressed = [gzip.compress(x, compresslevel=1, mtime=0) for x in raw]
    config = images.config([images.sha(x) for x in raw])
    blobs = {images.sha(config): config, **{images.sha(c): c for c in compressed}}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": images.sha(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": images.sha(c), "size": len(c)}
                                      for c in compressed]}).encode()
    return manifest, blobs, sum(len(c) for c in compressed)


registry = images.Registry.__new__(images.Registry)  # reuse push() against the running registry
registry.auth = None
registry.token = None
registry.port = int(registry_host.split(":")[1])
cases = [("small", [0]), ("medium", [4 << 20]), ("large", [25 << 20] * 4)]
sizes = {}
for name, layer_sizes in cases:
    manifest, blobs, size = build(name, [s for s in layer_sizes if s])
    registry.push(f"bench/{name}", "v1", manifest, "application/vnd.oci.image.manifest.v1+json", blobs)
    sizes[name] = size


def measure(socket, reference, runs):
    stub = api_pb2_grpc.ImageServiceStub(grpc.insecure_channel(f"unix://{socket}"))
    cold, warm = [], []
    for _ in range(runs):
        stub.RemoveImage(api_pb2.RemoveImageRequest(image=api_pb2.ImageSpec(image=reference)))
        time.sleep(0.5)  # containerd collects garbage shortly after a removal
        started = time.perf_counter()
        stub.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=reference)), timeout=600)
        cold.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        stub.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image=reference)), timeout=600)
        warm.append((time.perf_counter() - started) * 1000)
    return statistics.median(cold), statistics.median(warm)


print(f"{'image':>8} {'MB':>6} | {'swiftlet cold ms':>16} {'warm ms':>8} | {'containerd cold ms':>18} {'warm ms':>8} | {'cold ratio':>10} {'warm ratio':>10}")
for name, _ in cases:
    reference = f"{registry_host}/bench/{name}:v1"
    runs = 5 if name != "large" else 3
    s_cold, s_warm = measure(swiftlet_socket, reference, runs)
    c_cold, c_warm = measure(containerd_socket, reference, runs)
    print(f"{name:>8} {sizes[name] / 1e6:>6.1f} | {s_cold:>16.0f} {s_warm:>8.1f} | {c_cold:>18.0f} {c_warm:>8.1f} |"
          f" {s_cold / c_cold:>10.2f} {s_warm / c_warm:>10.2f}")
print("cold: pull and unpack into a store without the image; warm: the same pull again. Medians; ratio = swiftlet / containerd.")
