"""Pod sandboxes through the CRI (after critest's pkg/validate/pod*.go): run, status, stop,
remove, list with filters, and what a pod gives its containers — hostname, DNS config,
sysctls, the host's or the pod's own network/IPC/PID namespaces, a PID namespace shared by
the containers (POD mode) and one IPC namespace and /dev/shm for all of them.

Each test runs against the `runtime` fixture: `--runtime=swiftlet` (default) or
`--runtime=containerd` (the differential peer)."""
import os
import secrets
import time

import grpc
import pytest


def ns_inode(text):
    """The inode from a namespace link's text, e.g. `net:[4026532281]`."""
    return int(text.strip().split("[")[1].rstrip("]"))


def test_run_pod_sandbox_is_ready_and_listed(runtime, cri):
    pod_id, config = runtime.run_pod()
    status = runtime.pod_status(pod_id)
    assert status.id == pod_id
    assert status.state == cri.v1.SANDBOX_READY
    assert status.created_at > 0
    assert [pod.id for pod in runtime.list_pods(id=pod_id)] == [pod_id]
    listed = runtime.list_pods(id=pod_id)[0]
    assert listed.state == cri.v1.SANDBOX_READY
    assert listed.created_at == status.created_at


def test_pod_sandbox_attributes_are_preserved(runtime, cri):
    labels = {"foo": "bar", "io.kubernetes.pod.name": "attributes", "io.kubernetes.pod.namespace": "e2e-ns"}
    annotations = {"abc": "def", "multi.line": "a\nb"}
    pod_id, config = runtime.run_pod(name="attributes", namespace="e2e-ns", uid="uid-attributes", attempt=2,
                                     labels=labels, annotations=annotations)
    for found in (runtime.pod_status(pod_id), runtime.list_pods(id=pod_id)[0]):
        assert found.metadata.name == "attributes"
        assert found.metadata.uid == "uid-attributes"
        assert found.metadata.namespace == "e2e-ns"
        assert found.metadata.attempt == 2
        assert labels.items() <= dict(found.labels).items()
        assert annotations.items() <= dict(found.annotations).items()


def test_stop_pod_sandbox_makes_it_not_ready_and_stops_its_containers(runtime, cri):
    pod_id, config = runtime.run_pod()
    container = runtime.sleeper(pod_id, config)
    runtime.stop_pod(pod_id)
    assert runtime.pod_status(pod_id).state == cri.v1.SANDBOX_NOTREADY
    assert runtime.list_pods(id=pod_id)[0].state == cri.v1.SANDBOX_NOTREADY
    status = runtime.wait_exited(container)
    assert status.finished_at >= status.started_at > 0


def test_remove_pod_sandbox_removes_it_and_its_containers(runtime, cri):
    pod_id, config = runtime.run_pod()
    container = runtime.create_container(pod_id, config)
    runtime.stop_pod(pod_id)
    runtime.remove_pod(pod_id)
    assert runtime.list_pods(id=pod_id) == []
    assert pod_id not in [pod.id for pod in runtime.list_pods()]
    assert runtime.list_containers(id=container) == []
    with pytest.raises(grpc.RpcError) as missing:
        runtime.pod_status(pod_id)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as missing:
        runtime.status(container)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_remove_of_a_running_pod_stops_and_removes_everything(runtime, cri):
    """CRI: RemovePodSandbox forcibly terminates and removes the pod's running containers."""
    pod_id, config = runtime.run_pod()
    container = runtime.sleeper(pod_id, config)
    pid = runtime.host_pid(container)
    runtime.remove_pod(pod_id)
    assert runtime.list_pods(id=pod_id) == []
    assert runtime.list_containers(id=container) == []
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()


def test_list_pod_sandbox_filters_by_id_state_and_labels(runtime, cri):
    a, _ = runtime.run_pod(labels={"app": "web", "tier": "front"})
    b, _ = runtime.run_pod(labels={"app": "web", "tier": "back"})
    c, _ = runtime.run_pod(labels={"app": "db"})
    runtime.stop_pod(b)
    v1 = cri.v1

    def ids(**filters):
        return sorted(pod.id for pod in runtime.list_pods(**filters))

    assert ids() == sorted([a, b, c])
    assert ids(id=b) == [b]
    assert ids(id="0123456789abcdef-no-such-pod") == []
    assert ids(state=v1.PodSandboxStateValue(state=v1.SANDBOX_READY)) == sorted([a, c])
    assert ids(state=v1.PodSandboxStateValue(state=v1.SANDBOX_NOTREADY)) == [b]
    assert ids(label_selector={"app": "web"}) == sorted([a, b])
    assert ids(label_selector={"app": "web", "tier": "back"}) == [b]
    assert ids(label_selector={"app": "nope"}) == []
    # Filters combine (AND).
    assert ids(label_selector={"app": "web"}, state=v1.PodSandboxStateValue(state=v1.SANDBOX_READY)) == [a]
    assert ids(id=a, label_selector={"app": "db"}) == []


def test_hostname_is_the_pod_hostname(runtime, cri):
    pod_id, config = runtime.run_pod(hostname="swl-e2e-host")
    first = runtime.sleeper(pod_id, config)
    second = runtime.sleeper(pod_id, config)
    assert runtime.sh(first, "hostname") == "swl-e2e-host"
    assert runtime.sh(second, "hostname") == "swl-e2e-host"
    assert runtime.sh(first, "cat /proc/sys/kernel/hostname") == "swl-e2e-host"
    # /etc/hostname names it too (the kubelet's and Docker's convention).
    assert runtime.sh(first, "cat /etc/hostname") == "swl-e2e-host"


def test_dns_config_becomes_resolv_conf(runtime, cri):
    dns = cri.v1.DNSConfig(servers=["10.96.0.10", "10.96.0.11"], searches=["e2e.svc.cluster.local", "cluster.local"],
                           options=["ndots:5", "timeout:2"])
    pod_id, config = runtime.run_pod(dns=dns)
    container = runtime.sleeper(pod_id, config)
    lines = runtime.sh(container, "cat /etc/resolv.conf").splitlines()
    assert "nameserver 10.96.0.10" in lines and "nameserver 10.96.0.11" in lines
    assert lines.index("nameserver 10.96.0.10") < lines.index("nameserver 10.96.0.11")
    assert "search e2e.svc.cluster.local cluster.local" in lines
    assert any(line.startswith("options") and line.split()[1:] == ["ndots:5", "timeout:2"] for line in lines), lines


@pytest.mark.parametrize("sysctl,path,value", [
    ("kernel.shm_rmid_forced", "/proc/sys/kernel/shm_rmid_forced", "1"),   # safe (IPC namespace)
    ("fs.mqueue.msg_max", "/proc/sys/fs/mqueue/msg_max", "100"),            # unsafe but namespaced
    ("net.ipv4.ip_local_port_range", "/proc/sys/net/ipv4/ip_local_port_range", "40000\t50000"),  # network namespace
])
def test_sysctls_are_set_in_the_pod_namespaces(runtime, cri, sysctl, path, value):
    pod_id, config = runtime.run_pod(sysctls={sysctl: value.replace("\t", " ")})
    container = runtime.sleeper(pod_id, config)
    assert runtime.sh(container, f"cat {path}") == value
    # The host (here: the runtime's network namespace and the test's IPC namespace) keeps its own.
    with open(path) as host:
        if sysctl.startswith("net."):
            assert runtime_netns_read(runtime, path) != value
        else:
            assert host.read().strip() != value


def runtime_netns_read(runtime, path):
    import runtimes
    return runtimes.netns_exec(runtime.netns, "cat", path).stdout.strip()


def namespace_options(cri, network=None, pid=None, ipc=None):
    v1 = cri.v1
    return v1.NamespaceOption(network=network if network is not None else v1.POD,
                              pid=pid if pid is not None else v1.CONTAINER,
                              ipc=ipc if ipc is not None else v1.POD)


def pod_with_namespaces(runtime, cri, **options):
    security = cri.v1.LinuxSandboxSecurityContext(namespace_options=namespace_options(cri, **options))
    pod_id, config = runtime.run_pod(security=security)
    container_security = cri.v1.LinuxContainerSecurityContext(namespace_options=namespace_options(cri, **options))
    return pod_id, config, container_security


def test_host_network_shares_the_runtime_network_namespace(runtime, cri):
    host_net = os.stat(f"/run/netns/{runtime.netns}").st_ino
    pod_id, config, security = pod_with_namespaces(runtime, cri, network=cri.v1.NODE)
    container = runtime.sleeper(pod_id, config, security=security)
    assert ns_inode(runtime.sh(container, "readlink /proc/self/ns/net")) == host_net
    assert runtime.pod_status(pod_id).linux.namespaces.options.network == cri.v1.NODE
    # A pod with its own network namespace is elsewhere.
    own_pod, own_config = runtime.run_pod()
    own = runtime.sleeper(own_pod, own_config)
    assert ns_inode(runtime.sh(own, "readlink /proc/self/ns/net")) != host_net


def test_host_ipc_shares_the_host_ipc_namespace(runtime, cri):
    host_ipc = os.stat("/proc/self/ns/ipc").st_ino
    pod_id, config, security = pod_with_namespaces(runtime, cri, ipc=cri.v1.NODE)
    container = runtime.sleeper(pod_id, config, security=security)
    assert ns_inode(runtime.sh(container, "readlink /proc/self/ns/ipc")) == host_ipc
    own_pod, own_config = runtime.run_pod()
    own = runtime.sleeper(own_pod, own_config)
    assert ns_inode(runtime.sh(own, "readlink /proc/self/ns/ipc")) != host_ipc


def test_host_pid_sees_host_processes(runtime, cri):
    host_pid_ns = os.stat("/proc/self/ns/pid").st_ino
    pod_id, config, security = pod_with_namespaces(runtime, cri, pid=cri.v1.NODE)
    container = runtime.sleeper(pod_id, config, security=security)
    assert ns_inode(runtime.sh(container, "readlink /proc/self/ns/pid")) == host_pid_ns
    # This test's own process is visible by its host PID.
    assert "python" in runtime.sh(container, f"cat /proc/{os.getpid()}/comm")
    own_pod, own_config = runtime.run_pod()
    own = runtime.sleeper(own_pod, own_config)
    assert ns_inode(runtime.sh(own, "readlink /proc/self/ns/pid")) != host_pid_ns
    out, _, code = runtime.exec(own, ["cat", f"/proc/{os.getpid()}/comm"])
    assert code != 0 or "python" not in out


def test_shared_pid_namespace_pod_mode(runtime, cri):
    """PID namespace POD (shareProcessNamespace): each container sees the others' processes."""
    pod_id, config, security = pod_with_namespaces(runtime, cri, pid=cri.v1.POD)
    first = runtime.run_container(pod_id, config, command=["sleep", "100001"], security=security)
    second = runtime.run_container(pod_id, config, command=["sleep", "100002"], security=security)
    assert ns_inode(runtime.sh(first, "readlink /proc/self/ns/pid")) == ns_inode(runtime.sh(second, "readlink /proc/self/ns/pid"))
    assert "sleep 100001" in runtime.sh(second, "ps -o args")
    assert "sleep 100002" in runtime.sh(first, "ps -o args")
    # Neither container's command is PID 1 in a shared namespace (the pod owns it).
    assert "sleep 10000" not in runtime.sh(first, "cat /proc/1/cmdline | tr '\\0' ' '")


def test_container_pid_namespace_is_private(runtime, cri):
    pod_id, config, security = pod_with_namespaces(runtime, cri, pid=cri.v1.CONTAINER)
    first = runtime.run_container(pod_id, config, command=["sleep", "100001"], security=security)
    second = runtime.run_container(pod_id, config, command=["sleep", "100002"], security=security)
    assert "sleep 100001" not in runtime.sh(second, "ps -o args")
    # The container's command is its PID 1.
    assert runtime.sh(first, "cat /proc/1/cmdline | tr '\\0' ' '").strip() == "sleep 100001"


def test_ipc_namespace_and_dev_shm_are_shared_by_the_pod(runtime, cri):
    pod_id, config = runtime.run_pod()
    first = runtime.sleeper(pod_id, config)
    second = runtime.sleeper(pod_id, config)
    host_ipc = os.stat("/proc/self/ns/ipc").st_ino
    ipc = [ns_inode(runtime.sh(c, "readlink /proc/self/ns/ipc")) for c in (first, second)]
    assert ipc[0] == ipc[1] != host_ipc
    uts = [ns_inode(runtime.sh(c, "readlink /proc/self/ns/uts")) for c in (first, second)]
    assert uts[0] == uts[1]
    # POSIX shared memory lives in /dev/shm: one tmpfs for the pod.
    runtime.sh(first, "echo shared-by-pod > /dev/shm/token")
    assert runtime.sh(second, "cat /dev/shm/token") == "shared-by-pod"
    assert "tmpfs" in runtime.sh(second, "grep ' /dev/shm ' /proc/mounts")
    # Another pod has its own.
    other_pod, other_config = runtime.run_pod()
    other = runtime.sleeper(other_pod, other_config)
    assert ns_inode(runtime.sh(other, "readlink /proc/self/ns/ipc")) != ipc[0]
    assert runtime.exec(other, ["cat", "/dev/shm/token"])[2] != 0


def test_pod_cgroup_parent_holds_its_containers(runtime, cri):
    pod_id, config = runtime.run_pod()
    container = runtime.sleeper(pod_id, config)
    memory = runtime.cgroup_dir(container, "memory")
    parent = runtime.cgroup_parent.strip("/")
    assert f"/{parent}/" in f"{memory}/", f"{memory} is not below the pod's cgroup parent {runtime.cgroup_parent}"
    assert str(runtime.host_pid(container)) in (memory / "cgroup.procs").read_text().split()


def same_metadata_pod(runtime, uid, attempt=0, label=None):
    return runtime.pod_config(name="same-metadata", namespace="e2e-same", uid=uid, attempt=attempt,
                              labels={"critest-group": label or uid})


def run_or_error(runtime, config, timeout=10):
    """RunPodSandbox → (id, None) or (None, error); the pod is cleaned up with the runtime."""
    try:
        pod_id = runtime.rs.RunPodSandbox(runtime.cri.v1.RunPodSandboxRequest(config=config), timeout=timeout).pod_sandbox_id
    except grpc.RpcError as error:
        return None, error
    runtime.pods.append(pod_id)
    return pod_id, None


def listed(runtime, label):
    return runtime.list_pods(label_selector={"critest-group": label})


def test_the_same_metadata_does_not_make_a_second_pod(runtime, cri):
    """critest "runtime should not create a second PodSandbox with the same metadata"."""
    uid = "uid-" + secrets.token_hex(6)
    first, _ = runtime.run_pod(same_metadata_pod(runtime, uid))

    def duplicate():
        pod_id, _ = run_or_error(runtime, same_metadata_pod(runtime, uid))
        assert pod_id in (None, first)
        assert [pod.id for pod in listed(runtime, uid)] == [first]
    duplicate()  # while the first is ready
    runtime.stop_pod(first)
    duplicate()  # while it is stopped
    next_attempt, _ = runtime.run_pod(same_metadata_pod(runtime, uid, attempt=1))
    assert next_attempt != first and len(listed(runtime, uid)) == 2
    runtime.remove_pod(first)
    reused, _ = runtime.run_pod(same_metadata_pod(runtime, uid))
    assert reused != first and len(listed(runtime, uid)) == 2


def test_the_same_name_with_a_new_uid_is_another_pod(runtime, cri):
    """critest "runtime should allow a PodSandbox with the same name and namespace but a new UID"."""
    label = "group-" + secrets.token_hex(4)
    first, _ = runtime.run_pod(same_metadata_pod(runtime, "uid-" + secrets.token_hex(6), label=label))
    second, _ = runtime.run_pod(same_metadata_pod(runtime, "uid-" + secrets.token_hex(6), label=label))
    assert second != first and len(listed(runtime, label)) == 2


def test_concurrent_requests_with_the_same_metadata_make_one_pod(runtime, cri):
    """critest "runtime should create at most one PodSandbox for concurrent requests with the same metadata"."""
    import concurrent.futures
    uid = "uid-" + secrets.token_hex(6)
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda _: run_or_error(runtime, same_metadata_pod(runtime, uid)), range(5)))
    succeeded = {pod_id for pod_id, _ in results if pod_id}
    assert len(succeeded) == 1, results
    assert [pod.id for pod in listed(runtime, uid)] == list(succeeded)


def test_retrying_a_timed_out_request_makes_one_pod(runtime, cri):
    """critest "runtime should create at most one PodSandbox when retrying a timed out request":
    the kubelet's client gives up after 100 ms and retries with the same metadata."""
    uid = "uid-" + secrets.token_hex(6)
    run_or_error(runtime, same_metadata_pod(runtime, uid), timeout=0.1)
    deadline = time.time() + 60
    while len(listed(runtime, uid)) == 0 and time.time() < deadline:
        run_or_error(runtime, same_metadata_pod(runtime, uid))
        time.sleep(0.1)
    pods = listed(runtime, uid)
    assert len(pods) == 1, pods
    runtime.pods.append(pods[0].id)
    for _ in range(10):  # and no second one appears later
        time.sleep(0.5)
        assert len(listed(runtime, uid)) == 1
