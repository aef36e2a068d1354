"""PullImage against a real registry (Debian's docker-registry, Distribution 2.8) on
loopback, reached through a hosts.toml in containerd's layout, by the real agent over the CRI."""
import base64
import json

import grpc
import pytest

import images


@pytest.fixture
def registry(tmp_path):
    running = images.Registry(tmp_path / "registry")
    yield running
    running.stop()


@pytest.fixture
def auth_registry(tmp_path):
    running = images.Registry(tmp_path / "auth-registry", htpasswd=("puller", "s3cret"))
    yield running
    running.stop()


def agent_for(make_agent, tmp_path, *registries, mirror_docker_io=None):
    """An agent whose --registry-config-path declares each registry plain HTTP."""
    certs = tmp_path / "certs.d"
    for registry in registries:
        (certs / registry.host).mkdir(parents=True, exist_ok=True)
        (certs / registry.host / "hosts.toml").write_text(f'server = "http://{registry.host}"\n')
    if mirror_docker_io:
        (certs / "docker.io").mkdir(parents=True, exist_ok=True)
        (certs / "docker.io" / "hosts.toml").write_text(
            f'server = "https://registry-1.docker.io"\n\n[host."http://{mirror_docker_io.host}"]\n'
            f'  capabilities = ["pull", "resolve"]\n')
    return make_agent(extra_args=["--registry-config-path", str(certs)])


def pull(agent, cri, reference, auth=None):
    stub = cri.v1_grpc.ImageServiceStub(agent.channel())
    return stub.PullImage(cri.v1.PullImageRequest(image=cri.v1.ImageSpec(image=reference), auth=auth), timeout=60)


@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker-v2"])
def test_pull_each_manifest_format(make_agent, tmp_path, cri, registry, docker):
    manifest, media, blobs = images.oci_image_blobs(docker=docker)
    registry.push("team/app", "v1", manifest, media, blobs)
    agent = agent_for(make_agent, tmp_path, registry)
    config = next(d for d, b in blobs.items() if b.startswith(b"{"))
    assert pull(agent, cri, f"{registry.host}/team/app:v1").image_ref == config
    stub = cri.v1_grpc.ImageServiceStub(agent.channel())
    status = stub.ImageStatus(cri.v1.ImageStatusRequest(image=cri.v1.ImageSpec(image=f"{registry.host}/team/app:v1")))
    assert status.image.id == config and status.image.uid.value == 1000
    assert f"{registry.host}/team/app@{images.sha(manifest)}" in status.image.repo_digests
    # Warm: everything is present, the pull is a manifest round trip.
    assert pull(agent, cri, f"{registry.host}/team/app:v1").image_ref == config
    # By digest too.
    assert pull(agent, cri, f"{registry.host}/team/app@{images.sha(manifest)}").image_ref == config


def test_manifest_list_picks_this_platform(make_agent, tmp_path, cri, registry):
    manifest, media, blobs = images.oci_image_blobs(docker=True)
    amd64 = registry.push("multi/app", images.sha(manifest), manifest, media, blobs)
    # The arm64 entry: a config of its own and no layers (its blobs must not be fetched).
    other_config = json.dumps({"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    other = json.dumps({"schemaVersion": 2, "mediaType": media, "layers": [], "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json", "digest": images.sha(other_config), "size": len(other_config)}}).encode()
    arm64 = registry.push("multi/app", images.sha(other), other, media, {images.sha(other_config): other_config})
    listing = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json", "manifests": [
        {"mediaType": media, "digest": arm64, "size": len(other), "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        {"mediaType": media, "digest": amd64, "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"}},
    ]}).encode()
    registry.push("multi/app", "latest", listing, "application/vnd.docker.distribution.manifest.list.v2+json", {})
    agent = agent_for(make_agent, tmp_path, registry)
    config = next(d for d, b in blobs.items() if b.startswith(b"{"))
    assert pull(agent, cri, f"{registry.host}/multi/app").image_ref == config
    assert not (agent.root / "images/content/blobs/sha256" / images.sha(other_config)[7:]).exists()


def test_auth_failures_name_the_registry_and_credentials_work(make_agent, tmp_path, cri, auth_registry):
    manifest, media, blobs = images.oci_image_blobs()
    auth_registry.push("private/app", "v1", manifest, media, blobs)
    agent = agent_for(make_agent, tmp_path, auth_registry)
    reference = f"{auth_registry.host}/private/app:v1"
    for credentials in [None, cri.v1.AuthConfig(username="puller", password="wrong")]:
        with pytest.raises(grpc.RpcError) as refused:
            pull(agent, cri, reference, credentials)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert auth_registry.host in refused.value.details()
    assert pull(agent, cri, reference, cri.v1.AuthConfig(username="puller", password="s3cret")).image_ref
    encoded = base64.b64encode(b"puller:s3cret").decode()
    assert pull(agent, cri, reference, cri.v1.AuthConfig(auth=encoded)).image_ref


def test_tampered_blob_is_rejected(make_agent, tmp_path, cri, registry):
    manifest, media, blobs = images.oci_image_blobs()
    registry.push("team/tampered", "v1", manifest, media, blobs)
    layer = max(blobs, key=lambda d: len(blobs[d]))
    path = registry.blob_path(layer)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    agent = agent_for(make_agent, tmp_path, registry)
    with pytest.raises(grpc.RpcError) as refused:
        pull(agent, cri, f"{registry.host}/team/tampered:v1")
    assert refused.value.code() == grpc.StatusCode.INTERNAL
    assert "content has digest" in refused.value.details()
    stub = cri.v1_grpc.ImageServiceStub(agent.channel())
    assert list(stub.ListImages(cri.v1.ListImagesRequest()).images) == []
    assert not (agent.root / "images/content/blobs/sha256" / layer[7:]).exists()


def test_unknown_image_is_not_found(make_agent, tmp_path, cri, registry):
    agent = agent_for(make_agent, tmp_path, registry)
    with pytest.raises(grpc.RpcError) as missing:
        pull(agent, cri, f"{registry.host}/nobody/here:v1")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_docker_io_through_a_hosts_toml_mirror(make_agent, tmp_path, cri, registry):
    manifest, media, blobs = images.oci_image_blobs()
    registry.push("library/mirrored", "latest", manifest, media, blobs)
    agent = agent_for(make_agent, tmp_path, mirror_docker_io=registry)
    config = next(d for d, b in blobs.items() if b.startswith(b"{"))
    # "mirrored" normalizes to docker.io/library/mirrored:latest, served by the mirror.
    assert pull(agent, cri, "mirrored").image_ref == config
    stub = cri.v1_grpc.ImageServiceStub(agent.channel())
    assert stub.ImageStatus(cri.v1.ImageStatusRequest(image=cri.v1.ImageSpec(image="docker.io/library/mirrored:latest"))).image.id == config


@pytest.fixture
def token_registry(tmp_path):
    service = images.TokenService(tmp_path / "token", users={"puller": "s3cret"})
    running = images.Registry(tmp_path / "token-registry", token=service)
    yield running, service
    running.stop()
    service.stop()


def test_bearer_token_flow(make_agent, tmp_path, cri, token_registry):
    registry, service = token_registry
    manifest, media, blobs = images.oci_image_blobs()
    registry.push("private/tokened", "v1", manifest, media, blobs)
    agent = agent_for(make_agent, tmp_path, registry)
    reference = f"{registry.host}/private/tokened:v1"
    # Anonymous: the service issues a token without access; the registry refuses it.
    with pytest.raises(grpc.RpcError) as refused:
        pull(agent, cri, reference)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as refused:
        pull(agent, cri, reference, cri.v1.AuthConfig(username="puller", password="wrong"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED and registry.host in refused.value.details()
    assert pull(agent, cri, reference, cri.v1.AuthConfig(username="puller", password="s3cret")).image_ref
    assert ("puller", ["repository:private/tokened:pull"]) in service.issued


def test_concurrent_pulls_of_one_image_share_the_download(make_agent, tmp_path, cri):
    registry = images.Registry(tmp_path / "logged-registry", log_level="info")
    try:
        manifest, media, blobs = images.oci_image_blobs(big_layer_bytes=8 << 20)
        registry.push("team/shared", "v1", manifest, media, blobs)
        agent = agent_for(make_agent, tmp_path, registry)
        reference = f"{registry.host}/team/shared:v1"
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            refs = list(pool.map(lambda _: pull(agent, cri, reference).image_ref, range(4)))
        assert len(set(refs)) == 1
        biggest = max(blobs, key=lambda d: len(blobs[d]))
        assert registry.blob_fetches(biggest) == 1
    finally:
        registry.stop()


def test_a_pull_killed_mid_layer_then_retried_works(tmp_path, registry):
    import os
    import signal
    import subprocess
    import time
    from conftest import SWIFTLET
    manifest, media, blobs = images.oci_image_blobs(big_layer_bytes=64 << 20)
    registry.push("team/big", "v1", manifest, media, blobs)
    certs = tmp_path / "certs.d" / registry.host
    certs.mkdir(parents=True)
    (certs / "hosts.toml").write_text(f'server = "http://{registry.host}"\n')
    root = tmp_path / "root"
    command = [SWIFTLET, "images", "pull", "--root", str(root), "--registry-config-path", str(tmp_path / "certs.d"),
               f"{registry.host}/team/big:v1"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ingest = root / "images/content/ingest"
    deadline = time.time() + 30
    def size(path):  # an ingest file is renamed away once its blob is whole
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return 0
    while time.time() < deadline and not any(size(p) > 1 << 20 for p in ingest.glob("*")):
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    partial = list(ingest.iterdir())
    assert partial, "the pull was not caught mid-layer"
    biggest = max(blobs, key=lambda d: len(blobs[d]))
    assert not (root / "images/content/blobs/sha256" / biggest[7:]).exists()  # no half blob in the store
    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    subprocess.run([SWIFTLET, "images", "gc", "--root", str(root)], check=True, capture_output=True)
    assert list(ingest.iterdir()) == []  # the killed pull's leftovers are gone
    assert (root / "images/content/blobs/sha256" / biggest[7:]).stat().st_size == len(blobs[biggest])


def test_oci_index_picks_this_platform(make_agent, tmp_path, cri, registry):
    manifest, media, blobs = images.oci_image_blobs()
    digest = registry.push("multi/oci", images.sha(manifest), manifest, media, blobs)
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": media, "digest": digest, "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"}},
    ]}).encode()
    registry.push("multi/oci", "v1", index, "application/vnd.oci.image.index.v1+json", {})
    agent = agent_for(make_agent, tmp_path, registry)
    config = next(d for d, b in blobs.items() if b.startswith(b"{"))
    assert pull(agent, cri, f"{registry.host}/multi/oci:v1").image_ref == config


def test_https_registry_with_an_untrusted_certificate_needs_skip_verify(make_agent, tmp_path, cri):
    registry = images.Registry(tmp_path / "tls-registry", tls=True)
    try:
        manifest, media, blobs = images.oci_image_blobs()
        registry.push("team/secure", "v1", manifest, media, blobs)
        certs = tmp_path / "certs.d" / registry.host
        certs.mkdir(parents=True)
        (certs / "hosts.toml").write_text(f'server = "https://{registry.host}"\n')
        agent = make_agent(extra_args=["--registry-config-path", str(tmp_path / "certs.d")])
        reference = f"{registry.host}/team/secure:v1"
        with pytest.raises(grpc.RpcError) as refused:  # HTTPS, verified against the system CAs
            pull(agent, cri, reference)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "certificate" in refused.value.details().lower()
        (certs / "hosts.toml").write_text(f'server = "https://{registry.host}"\nskip_verify = true\n')
        assert pull(agent, cri, reference).image_ref
    finally:
        registry.stop()


def test_three_pulled_images_list_as_three(make_agent, tmp_path, cri, registry):
    """critest "listImage should get exactly 3 image in the result list"."""
    for index, name in enumerate(["one", "two", "three"]):
        manifest, media, blobs = images.oci_image_blobs(big_layer_bytes=index + 1)
        registry.push(f"team/{name}", "v1", manifest, media, blobs)
    agent = agent_for(make_agent, tmp_path, registry)
    refs = {pull(agent, cri, f"{registry.host}/team/{name}:v1").image_ref for name in ["one", "two", "three"]}
    stub = cri.v1_grpc.ImageServiceStub(agent.channel())
    listed = stub.ListImages(cri.v1.ListImagesRequest()).images
    assert len(listed) == 3 and {image.id for image in listed} == refs


def test_simultaneous_removes_of_one_image_all_succeed(make_agent, tmp_path, cri, registry):
    """critest "should not fail on simultaneous RemoveImage calls"."""
    import concurrent.futures
    manifest, media, blobs = images.oci_image_blobs()
    registry.push("team/app", "v1", manifest, media, blobs)
    agent = agent_for(make_agent, tmp_path, registry)
    reference = f"{registry.host}/team/app:v1"
    pull(agent, cri, reference)
    stub = cri.v1_grpc.ImageServiceStub(agent.channel())
    spec = cri.v1.ImageSpec(image=reference)
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        list(pool.map(lambda _: stub.RemoveImage(cri.v1.RemoveImageRequest(image=spec), timeout=60), range(5)))
    assert not stub.ImageStatus(cri.v1.ImageStatusRequest(image=spec)).HasField("image")
    assert not stub.ListImages(cri.v1.ListImagesRequest()).images


def test_the_same_image_from_two_registries_has_one_id(make_agent, tmp_path, cri):
    """critest "should return the same image identifier when pulled from different registries"."""
    first, second = images.Registry(tmp_path / "first"), images.Registry(tmp_path / "second")
    try:
        manifest, media, blobs = images.oci_image_blobs()
        for registry in (first, second):
            registry.push("team/app", "v1", manifest, media, blobs)
        agent = agent_for(make_agent, tmp_path, first, second)
        ids = {pull(agent, cri, f"{registry.host}/team/app:v1").image_ref for registry in (first, second)}
        assert len(ids) == 1
        stub = cri.v1_grpc.ImageServiceStub(agent.channel())
        listed = stub.ListImages(cri.v1.ListImagesRequest()).images
        assert len(listed) == 1
        assert {f"{first.host}/team/app:v1", f"{second.host}/team/app:v1"} <= set(listed[0].repo_tags)
    finally:
        first.stop()
        second.stop()
