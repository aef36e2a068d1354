"""Pods in user namespaces (the kubelet's `hostUsers: false`; after critest's "UserNamespaces"
specs in security_context_linux.go): the pod's user namespace with the one mapping it asks
for, its containers' root filesystems through idmapped layers, idmapped volume mounts, and the
refusals critest expects. Every check reads what the kernel says (/proc/<pid>/uid_map and
status, file owners on both sides) or tries the operation.

containerd 1.6 has no user namespace support (it ignores the options), so the tests of it are
expected to fail there."""
import os
import pathlib
import re

import grpc
import pytest

NO_USERNS_IN_CONTAINERD = pytest.mark.xfail_runtime("containerd", reason="containerd 1.6 has no user namespace support")
# critest's mapping: container ids 0… are host ids 1000… (100000 of them).
HOST_ID, LENGTH = 1000, 100000


def userns_pod(runtime, cri, uids=None, gids=None, mode=None, **namespaces):
    v1 = cri.v1
    mapping = [v1.IDMapping(container_id=0, host_id=HOST_ID, length=LENGTH)]
    options = runtime.default_namespaces()
    for key, value in namespaces.items():
        setattr(options, key, value)
    options.userns_options.CopyFrom(v1.UserNamespace(
        mode=v1.POD if mode is None else mode, uids=mapping if uids is None else uids, gids=mapping if gids is None else gids))
    return runtime.pod_config(security=v1.LinuxSandboxSecurityContext(namespace_options=options))


def container_security(cri, pod_config, **fields):
    """The kubelet gives every container its pod's namespace options, user namespace included."""
    security = cri.v1.LinuxContainerSecurityContext(**fields)
    security.namespace_options.CopyFrom(pod_config.linux.security_context.namespace_options)
    return security


def host_ids(runtime, container):
    status = pathlib.Path(f"/proc/{runtime.host_pid(container)}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return [int(x) for x in fields["Uid"].split()], [int(x) for x in fields["Gid"].split()]


def refused(runtime, config):
    with pytest.raises(grpc.RpcError) as error:
        runtime.run_pod(config)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    return error.value.details()


@NO_USERNS_IN_CONTAINERD
def test_status_says_the_default_handler_supports_user_namespaces(runtime, cri):
    status = runtime.rs.Status(cri.v1.StatusRequest(verbose=False))
    default = [handler for handler in status.runtime_handlers if handler.name == ""]
    assert default and default[0].features.user_namespaces
    assert default[0].features.recursive_read_only_mounts


@NO_USERNS_IN_CONTAINERD
def test_pod_mode_maps_the_pods_ids_as_asked(runtime, cri):
    """critest "runtime should support NamespaceMode_POD": the container prints its uid_map."""
    pod_id, config = runtime.run_pod(userns_pod(runtime, cri))
    container = runtime.create_container(pod_id, config, command=["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map"],
                                         security=container_security(cri, config))
    runtime.start(container)
    assert runtime.wait_exited(container).exit_code == 0
    log = runtime.container_log(container).read_text()
    assert len(re.findall(rf"\s+0\s+{HOST_ID}\s+{LENGTH}\n", log)) == 2, log


@NO_USERNS_IN_CONTAINERD
def test_the_containers_root_is_the_mapped_host_id_and_owns_its_image(runtime, cri):
    pod_id, config = runtime.run_pod(userns_pod(runtime, cri))
    container = runtime.sleeper(pod_id, config, security=container_security(cri, config))
    uids, gids = host_ids(runtime, container)
    assert uids == [HOST_ID] * 4 and gids == [HOST_ID] * 4, "the container's root is host id 1000"
    # Inside: root, owning the image's files, with the CRI's default capabilities in its namespace.
    assert runtime.sh(container, "id -u; id -g").split() == ["0", "0"]
    assert runtime.sh(container, "stat -c %u:%g /bin /etc/passwd") == "0:0\n0:0"
    runtime.sh(container, "echo hello > /written && mkdir -p /var/made && chown 7:7 /var/made")
    assert runtime.sh(container, "stat -c %u:%g /written /var/made") == "0:0\n7:7"
    # Outside, the same files are the mapped host ids.
    root = pathlib.Path(f"/proc/{runtime.host_pid(container)}/root")
    assert (os.stat(root / "written").st_uid, os.stat(root / "var/made").st_uid) == (HOST_ID, HOST_ID + 7)
    assert (root / "written").read_text() == "hello\n"
    assert runtime.sh(container, "cat /proc/self/uid_map").split() == ["0", str(HOST_ID), str(LENGTH)]


@NO_USERNS_IN_CONTAINERD
def test_run_as_user_and_supplemental_groups_are_mapped(runtime, cri):
    pod_id, config = runtime.run_pod(userns_pod(runtime, cri))
    security = container_security(cri, config, run_as_user=cri.v1.Int64Value(value=1001),
                                  run_as_group=cri.v1.Int64Value(value=1002), supplemental_groups=[1234])
    container = runtime.sleeper(pod_id, config, security=security)
    uids, gids = host_ids(runtime, container)
    assert uids == [HOST_ID + 1001] * 4 and gids == [HOST_ID + 1002] * 4
    assert runtime.sh(container, "id -u; id -g").split() == ["1001", "1002"]
    assert "1234" in runtime.sh(container, "id -G").split()


@NO_USERNS_IN_CONTAINERD
def test_volumes_are_idmapped_when_the_mount_carries_the_pods_mapping(runtime, cri, tmp_path):
    v1 = cri.v1
    pod_id, config = runtime.run_pod(userns_pod(runtime, cri))
    mapped, plain = tmp_path / "mapped", tmp_path / "plain"
    for directory in (mapped, plain):
        directory.mkdir()
        (directory / "data").write_text("from the host\n")
        os.chown(directory, 0, 0)
    mapping = [v1.IDMapping(container_id=0, host_id=HOST_ID, length=LENGTH)]
    mounts = [v1.Mount(host_path=str(mapped), container_path="/mapped", uidMappings=mapping, gidMappings=mapping),
              v1.Mount(host_path=str(plain), container_path="/plain")]
    container = runtime.sleeper(pod_id, config, mounts=mounts, security=container_security(cri, config))
    # Through the idmapped mount the host's root is the container's root: its files are its own.
    assert runtime.sh(container, "stat -c %u:%g /mapped/data") == "0:0"
    runtime.sh(container, "echo new > /mapped/new && chown 5:6 /mapped/data")
    new, data = os.stat(mapped / "new"), os.stat(mapped / "data")
    assert (new.st_uid, new.st_gid) == (0, 0), "written as the container's root: stored as the host's 0"
    assert (data.st_uid, data.st_gid) == (5, 6)
    # A plain bind shows the host's root as nobody, and is not the container's to write.
    assert runtime.sh(container, "stat -c %u:%g /plain/data") == "65534:65534"
    _, _, code = runtime.exec(container, ["sh", "-c", "echo no > /plain/new"])
    assert code != 0 and not (plain / "new").exists()


@NO_USERNS_IN_CONTAINERD
def test_a_mount_mapping_other_than_the_pods_is_refused(runtime, cri, tmp_path):
    v1 = cri.v1
    pod_id, config = runtime.run_pod(userns_pod(runtime, cri))
    other = [v1.IDMapping(container_id=0, host_id=5000, length=LENGTH)]
    mounts = [v1.Mount(host_path=str(tmp_path), container_path="/data", uidMappings=other, gidMappings=other)]
    with pytest.raises(grpc.RpcError) as error:
        runtime.create_container(pod_id, config, command=["true"], mounts=mounts, security=container_security(cri, config))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "mapping" in error.value.details()


@NO_USERNS_IN_CONTAINERD
def test_exec_runs_in_the_pods_user_namespace(runtime, cri):
    pod_id, config = runtime.run_pod(userns_pod(runtime, cri))
    container = runtime.sleeper(pod_id, config, security=container_security(cri, config))
    assert runtime.sh(container, "cat /proc/self/uid_map; id -u").split() == ["0", str(HOST_ID), str(LENGTH), "0"]
    # Two containers of the pod share its user namespace (and its network namespace, which it owns).
    second = runtime.sleeper(pod_id, config, security=container_security(cri, config))
    first_ns = os.readlink(f"/proc/{runtime.host_pid(container)}/ns/user")
    assert first_ns == os.readlink(f"/proc/{runtime.host_pid(second)}/ns/user")
    assert first_ns != os.readlink("/proc/self/ns/user")


def test_node_mode_uses_the_hosts_user_namespace(runtime, cri):
    """critest "runtime should support NamespaceMode_NODE"."""
    pod_id, config = runtime.run_pod(userns_pod(runtime, cri, mode=cri.v1.NODE, uids=[], gids=[]))
    container = runtime.create_container(pod_id, config, command=["cat", "/proc/self/uid_map"],
                                         security=container_security(cri, config))
    runtime.start(container)
    runtime.wait_exited(container)
    log = runtime.container_log(container).read_text()
    for line in pathlib.Path("/proc/self/uid_map").read_text().splitlines():
        inside, outside, length = line.split()
        assert re.search(rf"\s+{inside}\s+{outside}\s+{length}", log), log


@NO_USERNS_IN_CONTAINERD
@pytest.mark.parametrize("case", ["two mappings", "container id 0 unmapped", "CONTAINER mode", "TARGET mode",
                                  "host network", "host root mapped"])
def test_what_cannot_be_done_is_invalid_argument(runtime, cri, case):
    """critest: more than one mapping, container id 0 not mapped, CONTAINER and TARGET modes."""
    v1 = cri.v1
    if case == "two mappings":
        two = [v1.IDMapping(container_id=0, host_id=1000, length=LENGTH), v1.IDMapping(container_id=0, host_id=2000, length=LENGTH)]
        config = userns_pod(runtime, cri, uids=two, gids=two)
    elif case == "container id 0 unmapped":
        from_one = [v1.IDMapping(container_id=1, host_id=1000, length=LENGTH)]
        config = userns_pod(runtime, cri, uids=from_one, gids=from_one)
    elif case == "CONTAINER mode":
        config = userns_pod(runtime, cri, mode=v1.CONTAINER)
    elif case == "TARGET mode":
        config = userns_pod(runtime, cri, mode=v1.TARGET)
    elif case == "host network":
        config = userns_pod(runtime, cri, network=v1.NODE)
    else:
        root = [v1.IDMapping(container_id=0, host_id=0, length=LENGTH)]
        config = userns_pod(runtime, cri, uids=root, gids=root)
    details = refused(runtime, config)
    assert "user namespace" in details
    assert not runtime.list_pods(), "a refused pod leaves nothing behind"


@NO_USERNS_IN_CONTAINERD
def test_the_pods_namespaces_are_set_up_in_it(runtime, cri):
    """Hostname, namespaced sysctls and a shared PID namespace work in a pod with a user
    namespace, which owns its network, IPC and UTS namespaces."""
    v1 = cri.v1
    config = userns_pod(runtime, cri, pid=v1.POD)
    config.hostname = "mapped-pod"
    config.linux.sysctls["net.ipv4.ip_unprivileged_port_start"] = "80"
    config.linux.sysctls["kernel.shm_rmid_forced"] = "1"
    pod_id, config = runtime.run_pod(config)
    container = runtime.sleeper(pod_id, config, security=container_security(cri, config))
    second = runtime.sleeper(pod_id, config, security=container_security(cri, config), command=["sleep", "99999"])
    assert runtime.sh(container, "hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced") \
        == "mapped-pod\n80\n1"
    assert "sleep 99999" in runtime.sh(container, "ps -o args"), "the pod's containers share its PID namespace"
    pid = runtime.host_pid(container)
    user = os.readlink(f"/proc/{pid}/ns/user")
    assert user != os.readlink("/proc/self/ns/user"), "the pod has a user namespace of its own"
    # The pod's network namespace is owned by its user namespace (NS_GET_USERNS = 0xb701).
    import fcntl
    with open(f"/proc/{pid}/ns/net") as net:
        owner = fcntl.ioctl(net.fileno(), 0xb701)
    try:
        assert os.readlink(f"/proc/self/fd/{owner}") == user
    finally:
        os.close(owner)
    assert runtime.pod_status(pod_id).linux.namespaces.options.userns_options.mode == v1.POD


@NO_USERNS_IN_CONTAINERD
def test_a_read_only_root_and_a_tty_work_in_it(runtime, cri):
    pod_id, config = runtime.run_pod(userns_pod(runtime, cri))
    container = runtime.sleeper(pod_id, config, tty=True, security=container_security(cri, config, readonly_rootfs=True))
    assert runtime.sh(container, "cat /proc/self/uid_map").split()[:2] == ["0", str(HOST_ID)]
    _, _, code = runtime.exec(container, ["touch", "/nope"])
    assert code != 0, "the root filesystem is read-only"
    # The container's terminal and its /dev belong to its root.
    assert runtime.sh(container, "touch /dev/shm/yes && readlink /proc/1/fd/0 && stat -c %u:%g /dev /dev/null /dev/pts/0") \
        == "/dev/pts/0\n0:0\n0:0\n0:5"


@NO_USERNS_IN_CONTAINERD
def test_an_agent_restart_keeps_the_pod_and_its_user_namespace(runtime, cri):
    if runtime.name != "swiftlet":
        pytest.skip("restarts are swiftlet's")
    import signal
    pod_id, config = runtime.run_pod(userns_pod(runtime, cri))
    container = runtime.sleeper(pod_id, config, security=container_security(cri, config))
    pid = runtime.host_pid(container)
    runtime.agent.stop(sig=signal.SIGKILL)
    runtime.agent.log_file.close()
    runtime.agent.start()
    runtime._stubs()
    assert runtime.host_pid(container) == pid
    assert runtime.sh(container, "cat /proc/self/uid_map").split() == ["0", str(HOST_ID), str(LENGTH)]
    # A container made after the restart joins the same user namespace.
    later = runtime.sleeper(pod_id, config, security=container_security(cri, config))
    assert os.readlink(f"/proc/{runtime.host_pid(later)}/ns/user") == os.readlink(f"/proc/{pid}/ns/user")
    runtime.stop_pod(pod_id)
    runtime.remove_pod(pod_id)
    assert runtime.list_pods() == []
