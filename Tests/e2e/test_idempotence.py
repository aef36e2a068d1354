"""Idempotence (after critest's idempotence.go and the CRI's comments): stopping and removing
what is already stopped, removed or was never there succeeds, as the kubelet retries these."""
import secrets

import grpc
import pytest


def unknown_id():
    return secrets.token_hex(32)


@pytest.mark.xfail_runtime("containerd", reason="containerd 1.6 answers NOT_FOUND; the CRI says stop must succeed")
def test_stop_pod_sandbox_of_an_unknown_id_succeeds(runtime, cri):
    runtime.stop_pod(unknown_id())


def test_remove_pod_sandbox_of_an_unknown_id_succeeds(runtime, cri):
    runtime.remove_pod(unknown_id())


@pytest.mark.xfail_runtime("containerd", reason="containerd 1.6 answers NOT_FOUND; the CRI says stop must succeed")
def test_stop_container_of_an_unknown_id_succeeds(runtime, cri):
    runtime.stop_container(unknown_id())


def test_remove_container_of_an_unknown_id_succeeds(runtime, cri):
    runtime.remove_container(unknown_id())


def test_remove_image_of_an_unknown_id_succeeds(runtime, cri):
    for _ in range(2):
        runtime.ims.RemoveImage(cri.v1.RemoveImageRequest(image=cri.v1.ImageSpec(image="0" * 64)))


def test_stop_pod_sandbox_twice(runtime, cri):
    pod_id, config = runtime.run_pod()
    runtime.sleeper(pod_id, config)
    runtime.stop_pod(pod_id)
    runtime.stop_pod(pod_id)
    assert runtime.pod_status(pod_id).state == cri.v1.SANDBOX_NOTREADY
    runtime.remove_pod(pod_id)
    runtime.remove_pod(pod_id)
    assert runtime.list_pods(id=pod_id) == []


def test_stop_and_remove_container_twice(runtime, cri):
    pod_id, config = runtime.run_pod()
    container = runtime.sleeper(pod_id, config)
    runtime.stop_container(container, timeout=2)
    runtime.stop_container(container, timeout=2)
    assert runtime.status(container).state == cri.v1.CONTAINER_EXITED
    runtime.remove_container(container)
    runtime.remove_container(container)
    assert runtime.list_containers(id=container) == []


def test_stop_of_a_created_container_succeeds(runtime, cri):
    pod_id, config = runtime.run_pod()
    container = runtime.create_container(pod_id, config, command=["sleep", "100000"])
    runtime.stop_container(container, timeout=2)
    assert runtime.status(container).state in (cri.v1.CONTAINER_CREATED, cri.v1.CONTAINER_EXITED)
    runtime.remove_container(container)
    assert runtime.list_containers(id=container) == []


def test_status_of_an_unknown_id_is_not_found(runtime, cri):
    for call in (runtime.pod_status, runtime.status):
        with pytest.raises(grpc.RpcError) as failed:
            call(unknown_id())
        assert failed.value.code() == grpc.StatusCode.NOT_FOUND
