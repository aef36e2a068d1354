"""The image store end to end: offline import with `swiftlet images`, then the CRI
ImageService of a running agent on the same --root (real grpcio client)."""
import json
import pathlib
import os
import pathlib
import subprocess

import grpc
import pytest

import images
from conftest import SWIFTLET


def cli(agent, *args, check=True):
    return subprocess.run([SWIFTLET, "images", args[0], "--root", str(agent.root), *args[1:]], capture_output=True,
                          text=True, check=check, timeout=120)


@pytest.fixture
def imported(agent, tmp_path):
    layout = tmp_path / "layout"
    manifest, config = images.oci_layout(layout, "docker.io/library/testbox:v1")
    assert cli(agent, "import", str(layout)).stdout.split() == ["docker.io/library/testbox:v1"]
    archive = tmp_path / "docker.tar"
    docker_id = images.docker_archive(archive, "dockerbox:latest")
    assert cli(agent, "import", str(archive)).stdout.split() == ["docker.io/library/dockerbox:latest"]
    return manifest, config, docker_id


def test_list_and_status_by_tag_id_and_digest(agent, cri, imported):
    manifest, config, docker_id = imported
    stub = cri.v1_grpc.ImageServiceStub(agent.channel())
    listed = {image.id: image for image in stub.ListImages(cri.v1.ListImagesRequest()).images}
    # Same layers and config: the two imports are one image with two names.
    assert config == docker_id and set(listed) == {config}
    image = listed[config]
    assert sorted(image.repo_tags) == ["docker.io/library/dockerbox:latest", "docker.io/library/testbox:v1"]
    assert f"docker.io/library/testbox@{manifest}" in image.repo_digests
    assert image.uid.value == 1000 and image.username == ""
    assert image.size > 500_000
    for reference in ["testbox:v1", "docker.io/library/testbox:v1", config, config[7:19], f"docker.io/library/testbox@{manifest}"]:
        status = stub.ImageStatus(cri.v1.ImageStatusRequest(image=cri.v1.ImageSpec(image=reference)))
        assert status.image.id == config, reference
    assert not stub.ImageStatus(cri.v1.ImageStatusRequest(image=cri.v1.ImageSpec(image="nosuch:latest"))).HasField("image")
    verbose = stub.ImageStatus(cri.v1.ImageStatusRequest(image=cri.v1.ImageSpec(image="testbox:v1"), verbose=True))
    info = json.loads(verbose.info["info"])
    assert info["imageSpec"]["config"]["Cmd"] == ["sh", "-c", "cat /data/file"]
    filtered = stub.ListImages(cri.v1.ListImagesRequest(filter=cri.v1.ImageFilter(image=cri.v1.ImageSpec(image="dockerbox"))))
    assert [i.id for i in filtered.images] == [config]
    # v1alpha2 sees the same store.
    old = cri.v1alpha2_grpc.ImageServiceStub(agent.channel())
    assert [i.id for i in old.ListImages(cri.v1alpha2.ListImagesRequest()).images] == [config]


def test_layers_are_unpacked_with_whiteouts_and_hard_links(agent, cri, imported):
    stub = cri.v1_grpc.ImageServiceStub(agent.channel())
    info = json.loads(stub.ImageStatus(cri.v1.ImageStatusRequest(image=cri.v1.ImageSpec(image="testbox:v1"), verbose=True)).info["info"])
    top, bottom = [pathlib.Path(p) for p in info["snapshots"]]
    assert (bottom / "bin/busybox").stat().st_mode & 0o111
    assert (bottom / "etc/motd").read_text() == "first layer\n"
    whiteout = os.lstat(top / "etc/motd")
    assert (whiteout.st_mode & 0o170000) == 0o020000 and whiteout.st_rdev == 0  # overlayfs whiteout
    assert os.stat(top / "data/hardlink").st_ino == os.stat(top / "data/file").st_ino
    assert os.stat(top / "data/file").st_uid == 1000


def test_image_fs_info_matches_du(agent, cri, imported):
    stub = cri.v1_grpc.ImageServiceStub(agent.channel())
    usage = stub.ImageFsInfo(cri.v1.ImageFsInfoRequest()).image_filesystems[0]
    store = agent.root / "images"
    assert usage.fs_id.mountpoint == str(store)
    du = int(subprocess.run(["du", "-s", "-B1", str(store)], capture_output=True, text=True, check=True).stdout.split()[0])
    inodes = int(subprocess.run(["du", "-s", "--inodes", str(store)], capture_output=True, text=True, check=True).stdout.split()[0])
    assert usage.used_bytes.value == du
    assert usage.inodes_used.value == inodes


def test_remove_by_id_removes_every_name_and_collects_garbage(agent, cri, imported):
    _, config, _ = imported
    stub = cri.v1_grpc.ImageServiceStub(agent.channel())
    stub.RemoveImage(cri.v1.RemoveImageRequest(image=cri.v1.ImageSpec(image=config)))
    assert list(stub.ListImages(cri.v1.ListImagesRequest()).images) == []
    stub.RemoveImage(cri.v1.RemoveImageRequest(image=cri.v1.ImageSpec(image="nosuch:latest")))  # not an error
    store = agent.root / "images"
    assert list((store / "content/blobs/sha256").iterdir()) == []
    assert list((store / "snapshots").iterdir()) == []


def test_tampered_blob_is_rejected_and_nothing_is_stored(agent, cri, tmp_path):
    layout = tmp_path / "layout"
    images.oci_layout(layout, "docker.io/library/tampered:v1")
    blobs = sorted((layout / "blobs/sha256").iterdir(), key=lambda p: p.stat().st_size)
    biggest = blobs[-1]
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    biggest.write_bytes(bytes(data))
    result = cli(agent, "import", str(layout), check=False)
    assert result.returncode != 0 and "content has digest" in result.stderr
    stub = cri.v1_grpc.ImageServiceStub(agent.channel())
    assert list(stub.ListImages(cri.v1.ListImagesRequest()).images) == []
    cli(agent, "gc")
    assert list((agent.root / "images/content/blobs/sha256").iterdir()) == []




def test_container_rootfs_is_an_overlay_of_the_image_snapshots(agent, cri, imported, tmp_path):
    """`swiftlet images mount` (the runtime's rootfs path): lower layers shared, changes private."""
    directory = tmp_path / "c1"
    out = cli(agent, "mount", "testbox:v1", str(directory)).stdout.split()
    assert out[0] == str(directory / "rootfs") and out[1] in ("overlay", "copy")
    rootfs = directory / "rootfs"
    try:
        assert (rootfs / "bin/busybox").exists()
        assert not (rootfs / "etc/motd").exists()  # whited out by the top layer
        assert (rootfs / "data/file").read_text() == "payload\n"
        (rootfs / "data/new").write_text("mine")
        if out[1] == "overlay":
            assert (directory / "upper/data/new").read_text() == "mine"
            assert str(rootfs) in pathlib.Path("/proc/self/mountinfo").read_text()
    finally:
        cli(agent, "unmount", str(directory))
    assert not directory.exists()
    assert str(rootfs) not in pathlib.Path("/proc/self/mountinfo").read_text()


def test_oci_archive_import(agent, cri, tmp_path):
    layout = tmp_path / "layout"
    images.oci_layout(layout, "docker.io/library/archived:v2")
    archive = tmp_path / "image.oci.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(layout), "."], check=True)
    assert cli(agent, "import", str(archive)).stdout.split() == ["docker.io/library/archived:v2"]
    stub = cri.v1_grpc.ImageServiceStub(agent.channel())
    assert stub.ImageStatus(cri.v1.ImageStatusRequest(image=cri.v1.ImageSpec(image="archived:v2"))).image.id
