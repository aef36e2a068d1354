"""Pods across agent restarts (SIGTERM and kill -9), containers that end while the agent is
away, images removed under running containers, and the whole pod flow over runtime.v1alpha2
(kubelets 1.20-1.25)."""
import os
import signal
import time

import grpc
import pytest

from runtimes import BUSYBOX, wait_for


def only_swiftlet(runtime):
    if runtime.name != "swiftlet":
        pytest.skip("restarts and the image store's leases are swiftlet's")


def restart(runtime, sig):
    """Stops the agent with `sig` and starts it again over the same state."""
    runtime.agent.stop(sig=sig)
    runtime.agent.log_file.close()
    runtime.agent.start()
    runtime._stubs()


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restart_adopts_pods_and_containers(runtime, cri, sig):
    only_swiftlet(runtime)
    pod_id, config = runtime.run_pod()
    sleeper = runtime.sleeper(pod_id, config)
    done = runtime.run_container(pod_id, config, command=["sh", "-c", "exit 5"], wait_running=False)
    runtime.wait_exited(done)
    pid = runtime.host_pid(sleeper)
    ip = runtime.pod_status(pod_id).network.ip
    restart(runtime, sig)
    # Nothing was restarted: same process, same pod IP, same states.
    assert alive(pid)
    assert runtime.host_pid(sleeper) == pid
    status = runtime.pod_status(pod_id)
    assert status.state == cri.v1.SANDBOX_READY and status.network.ip == ip
    assert runtime.status(sleeper).state == cri.v1.CONTAINER_RUNNING
    exited = runtime.status(done)
    assert (exited.state, exited.exit_code, exited.reason) == (cri.v1.CONTAINER_EXITED, 5, "Error")
    assert runtime.exec(sleeper, ["echo", "still here"]) == ("still here\n", "", 0)
    # The adopted container is supervised again: its exit is seen.
    runtime.stop_container(sleeper, timeout=0)
    assert runtime.wait_exited(sleeper).exit_code == 137
    assert not alive(pid)
    runtime.stop_pod(pod_id)
    runtime.remove_pod(pod_id)
    assert runtime.list_pods() == [] and runtime.list_containers() == []


def test_a_container_that_ends_while_the_agent_is_away_reports_its_exit(runtime, cri):
    only_swiftlet(runtime)
    pod_id, config = runtime.run_pod()
    container = runtime.run_container(pod_id, config, command=["sh", "-c", "read x; exit 9"], stdin=True)
    pid = runtime.host_pid(container)
    runtime.agent.stop(sig=signal.SIGKILL)
    runtime.agent.log_file.close()
    os.kill(pid, signal.SIGKILL)  # PID 1 of its namespace: only SIGKILL from outside ends it
    wait_for(lambda: not alive(pid), timeout=30, message="the container to end")
    runtime.agent.start()
    runtime._stubs()
    status = runtime.wait_exited(container)
    assert status.exit_code == 137 and status.reason == "Error"
    assert status.finished_at > status.started_at


def test_an_image_removed_under_a_running_container_keeps_its_layers(runtime, cri):
    only_swiftlet(runtime)
    pod_id, config = runtime.run_pod()
    container = runtime.sleeper(pod_id, config)
    runtime.ims.RemoveImage(cri.v1.RemoveImageRequest(image=cri.v1.ImageSpec(image=BUSYBOX)))
    assert not runtime.ims.ImageStatus(cri.v1.ImageStatusRequest(image=cri.v1.ImageSpec(image=BUSYBOX))).HasField("image")
    # The container's root filesystem still has every file of its image.
    assert runtime.exec(container, ["sh", "-c", "ls /bin/busybox && echo ok"])[0].endswith("ok\n")
    with pytest.raises(grpc.RpcError) as failed:
        runtime.create_container(pod_id, config, command=["true"])
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    snapshots = runtime.agent.root / "images" / "snapshots"
    assert any(snapshots.iterdir())
    leases = runtime.agent.root / "images" / "leases"
    assert len(list(leases.iterdir())) == 1
    runtime.stop_container(container)
    runtime.remove_container(container)
    # The lease went with the container; the next collection frees what only it kept.
    assert list(leases.iterdir()) == []


def test_the_pod_flow_over_v1alpha2(runtime, cri):
    """A kubelet 1.20 speaks only runtime.v1alpha2: the same pods and containers, its messages."""
    v1a2 = cri.v1alpha2
    stub = cri.v1alpha2_grpc.RuntimeServiceStub(runtime.channel())
    meta = v1a2.PodSandboxMetadata(name="old-kubelet", namespace="e2e", uid=f"uid-{runtime.token}", attempt=0)
    pod_config = v1a2.PodSandboxConfig(
        metadata=meta, hostname="old-kubelet", log_directory=str(runtime.logs / "v1alpha2"),
        linux=v1a2.LinuxPodSandboxConfig(cgroup_parent=runtime.cgroup_parent, security_context=v1a2.LinuxSandboxSecurityContext(
            namespace_options=v1a2.NamespaceOption(network=v1a2.POD, pid=v1a2.CONTAINER, ipc=v1a2.POD))))
    pod_id = stub.RunPodSandbox(v1a2.RunPodSandboxRequest(config=pod_config), timeout=120).pod_sandbox_id
    runtime.pods.append(pod_id)
    config = v1a2.ContainerConfig(
        metadata=v1a2.ContainerMetadata(name="c"), image=v1a2.ImageSpec(image=BUSYBOX),
        command=["sh", "-c", "echo from-v1alpha2; sleep 1000"], log_path="c.log",
        linux=v1a2.LinuxContainerConfig(security_context=v1a2.LinuxContainerSecurityContext(
            namespace_options=v1a2.NamespaceOption(network=v1a2.POD, pid=v1a2.CONTAINER, ipc=v1a2.POD))))
    container = stub.CreateContainer(v1a2.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod_config),
                                     timeout=120).container_id
    stub.StartContainer(v1a2.StartContainerRequest(container_id=container), timeout=60)
    status = stub.ContainerStatus(v1a2.ContainerStatusRequest(container_id=container), timeout=60).status
    assert status.state == v1a2.CONTAINER_RUNNING and status.image.image == BUSYBOX
    pod = stub.PodSandboxStatus(v1a2.PodSandboxStatusRequest(pod_sandbox_id=pod_id), timeout=60).status
    assert pod.state == v1a2.SANDBOX_READY and pod.network.ip
    result = stub.ExecSync(v1a2.ExecSyncRequest(container_id=container, cmd=["hostname"], timeout=10), timeout=60)
    assert (result.stdout, result.exit_code) == (b"old-kubelet\n", 0)
    stats = stub.ListContainerStats(v1a2.ListContainerStatsRequest(), timeout=60).stats
    assert [s.attributes.id for s in stats] == [container]
    listed = stub.ListContainers(v1a2.ListContainersRequest(filter=v1a2.ContainerFilter(pod_sandbox_id=pod_id)), timeout=60)
    assert [c.id for c in listed.containers] == [container]
    assert stub.Exec(v1a2.ExecRequest(container_id=container, cmd=["true"], stdout=True), timeout=60).url.startswith("http://")
    stub.StopContainer(v1a2.StopContainerRequest(container_id=container, timeout=1), timeout=60)
    stub.RemoveContainer(v1a2.RemoveContainerRequest(container_id=container), timeout=60)
    stub.StopPodSandbox(v1a2.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
    stub.RemovePodSandbox(v1a2.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
    assert stub.ListPodSandbox(v1a2.ListPodSandboxRequest(), timeout=60).items == []


@pytest.mark.xfail_runtime("containerd", reason="containerd 1.6 uses the pod CIDR only in its conf template, not as ipRanges "
                                                 "(host-local: no IP ranges specified)")
def test_the_pod_cidr_from_update_runtime_config_reaches_cni_configs_that_ask(runtime, cri):
    """A network whose host-local IPAM takes `ipRanges` from the runtime gets the node's pod
    CIDR (what the kubelet sends in UpdateRuntimeConfig once the node has one)."""
    import json
    conf = {"cniVersion": "0.4.0", "name": "swl-cidr", "plugins": [
        {"type": "bridge", "bridge": runtime.bridge, "isGateway": True,
         "ipam": {"type": "host-local", "dataDir": str(runtime.ipam)},
         "capabilities": {"ipRanges": True}},
    ]}
    for old in runtime.cni_conf.iterdir():
        old.unlink()
    (runtime.cni_conf / "10-cidr.conflist").write_text(json.dumps(conf))
    runtime.rs.UpdateRuntimeConfig(cri.v1.UpdateRuntimeConfigRequest(
        runtime_config=cri.v1.RuntimeConfig(network_config=cri.v1.NetworkConfig(pod_cidr="10.99.3.0/24"))))
    pod_id, _ = runtime.run_pod()
    assert runtime.pod_status(pod_id).network.ip.startswith("10.99.3.")


def test_restart_settles_what_a_crash_left_half_done(runtime, cri):
    """A container launched but not yet recorded as started is running after the restart; the
    containers of a pod whose record is gone are orphans and are removed."""
    only_swiftlet(runtime)
    import json
    pod_a, config_a = runtime.run_pod()
    launched = runtime.sleeper(pod_a, config_a)
    pod_b, config_b = runtime.run_pod()
    orphan = runtime.sleeper(pod_b, config_b)
    orphan_pid = runtime.host_pid(orphan)
    runtime.agent.stop(sig=signal.SIGKILL)
    runtime.agent.log_file.close()
    records = runtime.agent.state / "cri"
    record = records / "containers" / f"{launched}.json"
    fields = json.loads(record.read_text())
    fields["started"] = False  # as if the agent died between the launch and the record
    record.write_text(json.dumps(fields))
    for suffix in ("json", "pb"):
        (records / "sandboxes" / f"{pod_b}.{suffix}").unlink()
    runtime.agent.start()
    runtime._stubs()
    assert runtime.status(launched).state == cri.v1.CONTAINER_RUNNING
    wait_for(lambda: not alive(orphan_pid), timeout=30, message="the orphan to be killed")
    assert [c.id for c in runtime.list_containers()] == [launched]
    assert not (runtime.agent.state / "pods" / pod_b).exists()  # its pinned namespaces released
    runtime.pods.remove(pod_b)
