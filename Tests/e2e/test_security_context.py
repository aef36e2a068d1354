"""Linux security contexts through the CRI (after critest's security_context_linux.go): users
and groups (numeric, by name from the image's /etc/passwd, supplemental), privileged,
capabilities, read-only rootfs, no_new_privs, masked and read-only paths, and seccomp
(RuntimeDefault, Unconfined, a Localhost profile). Every check reads what the kernel says
about the container's process (/proc/<pid>/status, mountinfo) or tries the operation."""
import json
import os
import pathlib

import grpc
import pytest

from runtimes import ENTRYPOINT, wait_for

# The CRI's (containerd's and Docker's) default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL
# SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
DEFAULT_CAPS = 0xa80425fb
# What the kubelet sends for the default procMount (k8s.io/kubernetes pkg/securitycontext):
# the runtime masks and write-protects exactly what the request lists.
KUBELET_MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
KUBELET_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
CAP = {"CHOWN": 0, "NET_ADMIN": 12, "SYS_ADMIN": 21, "SYS_TIME": 25, "MKNOD": 27}


def proc_status(runtime, container, pid="1"):
    """Fields of /proc/<pid>/status of the container's process (PID 1: its command)."""
    text = runtime.sh(container, f"cat /proc/{pid}/status")
    return {key: value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}


def caps(status, kind="CapEff"):
    return int(status[kind], 16)


def host_bounding_set():
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)


def security(cri, **fields):
    return cri.v1.LinuxContainerSecurityContext(**fields)


@pytest.fixture
def pod(runtime):
    return runtime.run_pod()


def test_run_as_user_and_group(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, security=security(
        cri, run_as_user=cri.v1.Int64Value(value=1234), run_as_group=cri.v1.Int64Value(value=5678)))
    status = proc_status(runtime, container)
    assert status["Uid"].split() == ["1234"] * 4
    assert status["Gid"].split() == ["5678"] * 4
    # ExecSync runs as the container's user too, and files it makes are theirs.
    assert runtime.sh(container, "id -u; id -g").split() == ["1234", "5678"]
    assert runtime.sh(container, "touch /tmp/mine && stat -c %u:%g /tmp/mine") == "1234:5678"


def test_run_as_username_resolves_from_the_image_passwd_and_group(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, security=security(cri, run_as_username="app"))
    status = proc_status(runtime, container)
    assert status["Uid"].split() == ["1000"] * 4
    assert status["Gid"].split() == ["1000"] * 4
    assert "2000" in status["Groups"].split(), "the image's /etc/group lists app in group extra (2000)"


def test_image_user_is_used_unless_overridden(runtime, cri, pod):
    pod_id, config = pod
    from_image = runtime.sleeper(pod_id, config, image=ENTRYPOINT)
    assert proc_status(runtime, from_image)["Uid"].split()[0] == "1000"
    overridden = runtime.sleeper(pod_id, config, image=ENTRYPOINT,
                                 security=security(cri, run_as_user=cri.v1.Int64Value(value=0)))
    assert proc_status(runtime, overridden)["Uid"].split()[0] == "0"


def test_supplemental_groups(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, security=security(
        cri, run_as_user=cri.v1.Int64Value(value=1000), supplemental_groups=[3000, 4000]))
    groups = proc_status(runtime, container)["Groups"].split()
    assert "3000" in groups and "4000" in groups
    assert runtime.sh(container, "touch /tmp/f && chgrp 4000 /tmp/f && stat -c %g /tmp/f") == "4000"


def test_default_capabilities(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config)
    status = proc_status(runtime, container)
    expected = DEFAULT_CAPS
    assert caps(status) == expected, hex(caps(status))
    assert caps(status, "CapBnd") == expected
    assert caps(status, "CapPrm") == expected
    assert caps(status, "CapInh") == 0
    out, err, code = runtime.exec(container, ["ip", "addr", "add", "192.0.2.7/32", "dev", "lo"])
    assert code != 0 and "Operation not permitted" in err, "no CAP_NET_ADMIN by default"


def test_capabilities_add_and_drop(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, security=security(
        cri, capabilities=cri.v1.Capability(add_capabilities=["NET_ADMIN", "SYS_TIME"], drop_capabilities=["CHOWN"])))
    effective = caps(proc_status(runtime, container))
    assert effective & (1 << CAP["NET_ADMIN"]) and effective & (1 << CAP["SYS_TIME"])
    assert not effective & (1 << CAP["CHOWN"])
    assert not effective & (1 << CAP["SYS_ADMIN"])
    runtime.sh(container, "ip addr add 192.0.2.7/32 dev lo && ip addr show lo | grep 192.0.2.7")  # NET_ADMIN, pod's netns
    out, err, code = runtime.exec(container, ["sh", "-c", "touch /tmp/f && chown 1000 /tmp/f"])
    assert code != 0 and "Operation not permitted" in err


def test_drop_all_capabilities(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, security=security(
        cri, capabilities=cri.v1.Capability(drop_capabilities=["ALL"])))
    status = proc_status(runtime, container)
    assert caps(status) == 0 and caps(status, "CapBnd") == 0
    out, err, code = runtime.exec(container, ["sh", "-c", "touch /tmp/f && chown 1000 /tmp/f"])
    assert code != 0 and "Operation not permitted" in err


def test_privileged(runtime, cri):
    pod_id, config = runtime.run_pod(security=cri.v1.LinuxSandboxSecurityContext(privileged=True))
    container = runtime.sleeper(pod_id, config, security=security(
        cri, privileged=True, masked_paths=KUBELET_MASKED_PATHS, readonly_paths=KUBELET_READONLY_PATHS))
    status = proc_status(runtime, container)
    assert caps(status) == host_bounding_set(), hex(caps(status))
    assert status["Seccomp"] == "0"
    sys_mount = [line for line in runtime.sh(container, "cat /proc/self/mountinfo").splitlines() if line.split()[4] == "/sys"]
    assert sys_mount and sys_mount[0].split()[5].split(",")[0] == "rw", sys_mount
    # Host devices are there (a privileged container gets the host's /dev).
    host_devices = {p.name for p in pathlib.Path("/dev").iterdir() if p.is_char_device() or p.is_block_device()}
    inside = set(runtime.sh(container, "ls /dev").split())
    assert len(host_devices & inside) > len(host_devices) * 0.8
    # Nothing masked or write-protected, even when the request lists paths.
    assert runtime.sh(container, "stat -c %F /proc/keys") != "character special file"
    runtime.sh(container, "cat /proc/sys/kernel/shm_rmid_forced > /proc/sys/kernel/shm_rmid_forced")
    runtime.sh(container, "ip addr add 192.0.2.7/32 dev lo")


def test_read_only_root_filesystem(runtime, cri, pod):
    pod_id, config = pod
    volume = runtime.dir / "volume"
    volume.mkdir()
    container = runtime.sleeper(pod_id, config, security=security(cri, readonly_rootfs=True),
                                mounts=[cri.v1.Mount(host_path=str(volume), container_path="/volume")])
    out, err, code = runtime.exec(container, ["touch", "/new-file"])
    assert code != 0 and "Read-only file system" in err
    out, err, code = runtime.exec(container, ["sh", "-c", "echo x >> /etc/passwd"])
    assert code != 0 and "Read-only file system" in err
    runtime.sh(container, "echo ok > /volume/written")
    assert (volume / "written").read_text() == "ok\n"
    runtime.sh(container, "echo ok > /dev/shm/written")


@pytest.mark.parametrize("no_new_privs,expected", [(False, "0"), (True, "1")])
def test_no_new_privs(runtime, cri, pod, no_new_privs, expected):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, security=security(cri, no_new_privs=no_new_privs))
    assert proc_status(runtime, container)["NoNewPrivs"] == expected


def test_kubelet_default_masked_and_read_only_paths(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, security=security(
        cri, masked_paths=KUBELET_MASKED_PATHS, readonly_paths=KUBELET_READONLY_PATHS))
    assert runtime.sh(container, "stat -c %F /proc/keys") == "character special file"  # /dev/null over it
    assert runtime.sh(container, "cat /proc/keys | wc -c") == "0"
    if pathlib.Path("/proc/timer_list").exists():
        assert runtime.sh(container, "stat -c %F /proc/timer_list") == "character special file"
    if pathlib.Path("/sys/firmware").exists():
        assert runtime.sh(container, "ls -A /sys/firmware") == ""  # an empty read-only tmpfs
    for path in [p for p in ("/proc/sys/kernel/shm_rmid_forced", "/proc/sysrq-trigger") if os.path.exists(p)]:
        out, err, code = runtime.exec(container, ["sh", "-c", f"echo 0 > {path}"])
        assert code != 0 and "Read-only file system" in err, (path, err)
    proc_sys = [line for line in runtime.sh(container, "cat /proc/self/mountinfo").splitlines() if line.split()[4] == "/proc/sys"]
    assert proc_sys and proc_sys[0].split()[5].startswith("ro"), proc_sys


def test_custom_masked_and_read_only_paths(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, security=security(
        cri, masked_paths=["/data/file", "/home"], readonly_paths=["/tmp"]))
    assert runtime.sh(container, "cat /data/file | wc -c") == "0"   # a file: /dev/null over it
    assert runtime.sh(container, "ls -A /home") == ""               # a directory: an empty tmpfs
    out, err, code = runtime.exec(container, ["touch", "/tmp/x"])
    assert code != 0 and "Read-only file system" in err
    runtime.sh(container, "touch /var/x")                           # the rest stays writable


def test_seccomp_runtime_default(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, security=security(
        cri, seccomp=cri.v1.SecurityProfile(profile_type=cri.v1.SecurityProfile.RuntimeDefault)))
    assert proc_status(runtime, container)["Seccomp"] == "2"
    # Docker's default profile refuses new namespaces to a container without CAP_SYS_ADMIN.
    out, err, code = runtime.exec(container, ["unshare", "-U", "true"])
    assert code != 0, "unshare(CLONE_NEWUSER) must be refused"
    runtime.sh(container, "mkdir /tmp/allowed")


def test_seccomp_unconfined(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, security=security(
        cri, seccomp=cri.v1.SecurityProfile(profile_type=cri.v1.SecurityProfile.Unconfined)))
    assert proc_status(runtime, container)["Seccomp"] == "0"
    if int(pathlib.Path("/proc/sys/user/max_user_namespaces").read_text()) > 0:
        runtime.sh(container, "unshare -U true")


def test_seccomp_localhost_profile(runtime, cri, pod):
    pod_id, config = pod
    profile = runtime.dir / "deny-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    container = runtime.sleeper(pod_id, config, security=security(
        cri, seccomp=cri.v1.SecurityProfile(profile_type=cri.v1.SecurityProfile.Localhost, localhost_ref=str(profile))))
    assert proc_status(runtime, container)["Seccomp"] == "2"
    out, err, code = runtime.exec(container, ["mkdir", "/tmp/denied"])
    assert code != 0 and "Operation not permitted" in err
    runtime.sh(container, "touch /tmp/allowed")


@pytest.mark.xfail_runtime("containerd", reason="containerd 1.6 predates SupplementalGroupsPolicy and ContainerStatus.user")
@pytest.mark.parametrize("policy", ["Merge", "Strict"])
def test_supplemental_groups_policy(runtime, cri, pod, policy):
    """critest "SupplementalGroupsPolicy": Merge (the default) adds the groups the image's
    /etc/group gives the user (app, 1000, is in extra, 2000); Strict only the config's. The
    status reports the first process's identity, its primary group among its groups."""
    v1 = cri.v1
    assert runtime.rs.Status(v1.StatusRequest()).features.supplemental_groups_policy
    pod_id, config = pod
    fields = dict(run_as_user=v1.Int64Value(value=1000), supplemental_groups=[1234])
    if policy == "Strict":
        fields["supplemental_groups_policy"] = v1.SupplementalGroupsPolicy.Value("Strict")
    container = runtime.run_container(pod_id, config, command=["sh", "-c", "id -G; exec sleep 100000"],
                                      security=security(cri, **fields))
    expected = [1000, 1234, 2000] if policy == "Merge" else [1000, 1234]
    user = runtime.status(container).user.linux
    assert (user.uid, user.gid, sorted(user.supplemental_groups)) == (1000, 1000, expected)
    line = " ".join(str(group) for group in expected)
    wait_for(lambda: line in runtime.container_log(container).read_text(), message="the container's id -G")
    assert runtime.sh(container, "id -G") == line


def test_adding_all_capabilities(runtime, cri, pod):
    """critest "runtime should support adding ALL capabilities"."""
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, security=security(cri, capabilities=cri.v1.Capability(add_capabilities=["ALL"])))
    status = proc_status(runtime, container)
    assert caps(status, "CapBnd") != 0 and caps(status) & (1 << CAP["SYS_ADMIN"])


def test_dropping_net_raw_stops_ping(runtime, cri, pod):
    """critest "runtime should support dropping capability": NET_RAW dropped, ping is refused."""
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, security=security(cri, capabilities=cri.v1.Capability(drop_capabilities=["NET_RAW"])))
    out, err, code = runtime.exec(container, ["ping", "-c", "1", "127.0.0.1"])
    assert code != 0 and "permission denied" in err.lower(), (out, err)


def test_run_as_group_without_run_as_user_is_refused(runtime, cri, pod):
    """critest "runtime should return error if RunAsGroup is set without RunAsUser"."""
    pod_id, config = pod
    with pytest.raises(grpc.RpcError) as refused:
        runtime.create_container(pod_id, config, command=["true"], security=security(cri, run_as_group=cri.v1.Int64Value(value=1002)))
    assert refused.value.code() != grpc.StatusCode.UNIMPLEMENTED


def test_no_seccomp_profile_is_unconfined(runtime, cri, pod):
    """critest "should support nil profile, which is unconfined"."""
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config)
    assert proc_status(runtime, container)["Seccomp"] == "0"


def test_unconfined_seccomp_and_sys_admin_can_set_the_hostname(runtime, cri, pod):
    """critest "runtime should not block setting host name with unconfined seccomp and SYS_ADMIN"."""
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, security=security(
        cri, seccomp=cri.v1.SecurityProfile(profile_type=cri.v1.SecurityProfile.Unconfined),
        capabilities=cri.v1.Capability(add_capabilities=["SYS_ADMIN"])))
    runtime.sh(container, "hostname ANewHostName")
    assert runtime.sh(container, "hostname") == "ANewHostName"


@pytest.mark.xfail_runtime("containerd", reason="containerd 1.6 predates image volumes (Mount.image) and ignores the field")
def test_an_image_volume_is_refused_clearly(runtime, cri, pod):
    """Image volumes (Mount.image, critest image_volume.go) are not supported: CreateContainer says so."""
    from runtimes import BUSYBOX
    pod_id, config = pod
    mount = cri.v1.Mount(container_path="/image", image=cri.v1.ImageSpec(image=BUSYBOX), readonly=True)
    with pytest.raises(grpc.RpcError) as refused:
        runtime.create_container(pod_id, config, command=["true"], mounts=[mount])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "image volume" in refused.value.details()
