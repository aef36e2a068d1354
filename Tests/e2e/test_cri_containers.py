"""Containers through the CRI (after critest's pkg/validate/container*.go): lifecycle and status,
list filters, how a container config merges with its image config (entrypoint/cmd, env,
working dir, user), exit codes and reasons (Completed, Error, OOMKilled), stop timeouts,
logs in the CRI format and their reopening, resources and UpdateContainerResources as the
host's cgroup files show them, and hostPath mounts (rw, ro, propagation, recursive ro)."""
import datetime
import os
import pathlib
import subprocess
import time

import grpc
import pytest

import runtimes
from runtimes import BUSYBOX, ENTRYPOINT, log_text, parse_cri_log, wait_for


@pytest.fixture
def pod(runtime):
    return runtime.run_pod()


# -- lifecycle -----------------------------------------------------------------------------

def test_create_start_stop_remove(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.create_container(pod_id, config, command=["sleep", "100000"])
    status = runtime.status(container)
    assert status.state == cri.v1.CONTAINER_CREATED
    assert status.created_at > 0 and status.started_at == 0
    assert [c.id for c in runtime.list_containers(id=container)] == [container]
    runtime.start(container)
    status = runtime.wait_state(container, cri.v1.CONTAINER_RUNNING)
    assert status.started_at >= status.created_at
    runtime.stop_container(container, timeout=10)
    status = runtime.wait_exited(container)
    assert status.finished_at >= status.started_at
    assert status.exit_code in (143, 137)  # SIGTERM, or SIGKILL after the timeout
    runtime.remove_container(container)
    assert runtime.list_containers(id=container) == []
    with pytest.raises(grpc.RpcError) as missing:
        runtime.status(container)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_status_reports_config_attributes(runtime, cri, pod):
    pod_id, config = pod
    labels, annotations = {"app": "e2e", "io.kubernetes.container.name": "attrs"}, {"note": "kept", "json": '{"a": 1}'}
    container_config = runtime.container_config(name="attrs", command=["sleep", "100000"], labels=labels,
                                                annotations=annotations)
    container_config.metadata.attempt = 3
    container = runtime.create_container(pod_id, config, config=container_config)
    runtime.start(container)
    status = runtime.wait_state(container, cri.v1.CONTAINER_RUNNING)
    assert status.id == container
    assert status.metadata.name == "attrs" and status.metadata.attempt == 3
    assert labels.items() <= dict(status.labels).items()
    assert annotations.items() <= dict(status.annotations).items()
    assert status.image.image
    image = runtime.ims.ImageStatus(cri.v1.ImageStatusRequest(image=cri.v1.ImageSpec(image=BUSYBOX))).image
    assert status.image_ref in [image.id, *image.repo_digests], (status.image_ref, image)
    assert status.log_path == str(runtime.log_file(config, container_config))
    listed = runtime.list_containers(id=container)[0]
    assert listed.pod_sandbox_id == pod_id
    assert listed.metadata.name == "attrs" and listed.metadata.attempt == 3
    assert listed.state == cri.v1.CONTAINER_RUNNING
    assert labels.items() <= dict(listed.labels).items()
    assert annotations.items() <= dict(listed.annotations).items()
    assert listed.image_ref == status.image_ref
    assert listed.created_at == status.created_at


def test_list_containers_filters(runtime, cri, pod):
    pod_id, config = pod
    other_pod, other_config = runtime.run_pod()
    running = runtime.sleeper(pod_id, config, labels={"role": "web", "tier": "a"})
    created = runtime.create_container(pod_id, config, command=["sleep", "1"], labels={"role": "web", "tier": "b"})
    elsewhere = runtime.sleeper(other_pod, other_config, labels={"role": "db"})
    v1 = cri.v1

    def ids(**filters):
        return sorted(c.id for c in runtime.list_containers(**filters))

    assert ids() == sorted([running, created, elsewhere])
    assert ids(id=created) == [created]
    assert ids(pod_sandbox_id=pod_id) == sorted([running, created])
    assert ids(pod_sandbox_id=other_pod) == [elsewhere]
    assert ids(state=v1.ContainerStateValue(state=v1.CONTAINER_RUNNING)) == sorted([running, elsewhere])
    assert ids(state=v1.ContainerStateValue(state=v1.CONTAINER_CREATED)) == [created]
    assert ids(label_selector={"role": "web"}) == sorted([running, created])
    assert ids(label_selector={"role": "web", "tier": "b"}) == [created]
    assert ids(label_selector={"role": "web"}, pod_sandbox_id=other_pod) == []
    assert ids(id="no-such-container") == []


def test_create_in_an_unknown_pod_fails(runtime, cri, pod):
    _, config = pod
    with pytest.raises(grpc.RpcError) as failed:
        runtime.create_container("0" * 64, config, command=["true"])
    assert failed.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INVALID_ARGUMENT)
    assert failed.value.code() != grpc.StatusCode.UNIMPLEMENTED


def test_start_of_a_missing_executable_fails_with_its_name(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.create_container(pod_id, config, command=["/bin/no-such-binary"])
    with pytest.raises(grpc.RpcError) as failed:
        runtime.start(container)
    assert "no-such-binary" in failed.value.details()
    assert failed.value.code() != grpc.StatusCode.UNIMPLEMENTED
    assert runtime.status(container).state != cri.v1.CONTAINER_RUNNING


def test_remove_of_a_running_container_forces_it(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config)
    pid = runtime.host_pid(container)
    runtime.remove_container(container)
    assert runtime.list_containers(id=container) == []
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), message=f"process {pid} of a removed container to end")


# -- exit codes and stop ---------------------------------------------------------------------

@pytest.mark.parametrize("script,code,reason", [("true", 0, "Completed"), ("exit 7", 7, "Error")])
def test_exit_code_and_reason(runtime, cri, pod, script, code, reason):
    pod_id, config = pod
    container = runtime.run_container(pod_id, config, wait_running=False, command=["sh", "-c", script])
    status = runtime.wait_exited(container)
    assert status.exit_code == code
    assert status.reason == reason
    # (No order between started_at and finished_at here: containerd too stamps started_at after
    # the start returns, which can be after an instant exit.)
    assert status.finished_at >= status.created_at and status.started_at > 0


def test_oom_killed(runtime, cri, pod):
    pod_id, config = pod
    resources = cri.v1.LinuxContainerResources(memory_limit_in_bytes=32 << 20)
    container = runtime.run_container(pod_id, config, wait_running=False, resources=resources,
                                      command=["awk", 'BEGIN { s = "x"; while (1) s = s s }'])
    status = runtime.wait_exited(container)
    assert status.exit_code == 137, status
    # containerd records the OOM from a separate event that may land just after the exit.
    status = wait_for(lambda: (s := runtime.status(container)).reason == "OOMKilled" and s, timeout=30,
                      message="reason OOMKilled")
    assert status.exit_code == 137


def test_stop_sends_sigterm_first(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.run_container(pod_id, config, command=[
        "sh", "-c", "trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.1; done"])
    log = runtime.container_log(container)
    wait_for(lambda: "ready" in log_text(log), message="the container to install its trap")
    runtime.stop_container(container, timeout=60)
    status = runtime.wait_exited(container)
    assert status.exit_code == 3
    assert "got-term" in log_text(log, "stdout")


def test_stop_timeout_ends_with_sigkill(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.run_container(pod_id, config, command=[
        "sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"])
    log = runtime.container_log(container)
    wait_for(lambda: "ready" in log_text(log), message="the container to ignore SIGTERM")
    runtime.stop_container(container, timeout=2)
    status = runtime.wait_exited(container)
    assert status.exit_code == 137
    assert runtime.pod_status(pod_id).state == cri.v1.SANDBOX_READY


def test_double_start_fails(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config)
    with pytest.raises(grpc.RpcError) as failed:
        runtime.start(container)
    assert failed.value.code() != grpc.StatusCode.UNIMPLEMENTED


# -- image config merge ---------------------------------------------------------------------

@pytest.mark.parametrize("command,args,expected", [
    ([], [], "image-entrypoint image-cmd"),
    ([], ["a1", "a2"], "image-entrypoint a1 a2"),
    (["/bin/echo", "c1"], [], "c1"),
    (["/bin/echo", "c1"], ["a1"], "c1 a1"),
], ids=["image-defaults", "args-replace-cmd", "command-replaces-both", "command-and-args"])
def test_command_and_args_merge_with_entrypoint_and_cmd(runtime, cri, pod, command, args, expected):
    pod_id, config = pod
    container_config = runtime.container_config(image=ENTRYPOINT, command=command, args=args)
    container = runtime.create_container(pod_id, config, config=container_config)
    runtime.start(container)
    assert runtime.wait_exited(container).exit_code == 0
    assert log_text(runtime.log_file(config, container_config), "stdout") == [expected]


def test_env_merges_over_the_image_env(runtime, cri, pod):
    pod_id, config = pod
    container_config = runtime.container_config(image=ENTRYPOINT, command=["env"],
                                                env={"OVERRIDE": "from-container", "NEW": "a b=c", "EMPTY": ""})
    container = runtime.create_container(pod_id, config, config=container_config)
    runtime.start(container)
    assert runtime.wait_exited(container).exit_code == 0
    env = dict(line.split("=", 1) for line in log_text(runtime.log_file(config, container_config), "stdout") if "=" in line)
    assert env["IMAGE_ONLY"] == "from-image"
    assert env["OVERRIDE"] == "from-container"
    assert env["NEW"] == "a b=c"
    assert env["EMPTY"] == ""
    assert env["PATH"] == "/bin"
    assert env["HOSTNAME"]


def test_working_dir_from_image_config_or_container(runtime, cri, pod):
    pod_id, config = pod
    for working_dir, expected in [("", "/data"), ("/tmp", "/tmp"), ("/not/yet/there", "/not/yet/there")]:
        container_config = runtime.container_config(image=ENTRYPOINT, command=["pwd"], working_dir=working_dir)
        container = runtime.create_container(pod_id, config, config=container_config)
        runtime.start(container)
        assert runtime.wait_exited(container).exit_code == 0, working_dir
        assert log_text(runtime.log_file(config, container_config), "stdout") == [expected]


def test_user_from_the_image_config(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.sleeper(pod_id, config, image=ENTRYPOINT, command=["sleep", "100000"])
    assert runtime.sh(container, "id -u") == "1000"
    assert runtime.sh(container, "id -g") == "1000"
    assert runtime.sh(container, "echo $HOME") == "/home/app"


def test_tty_container(runtime, cri, pod):
    pod_id, config = pod
    container_config = runtime.container_config(tty=True, command=[
        "sh", "-c", "if [ -t 1 ]; then echo is-a-tty; else echo not-a-tty; fi"])
    container = runtime.create_container(pod_id, config, config=container_config)
    runtime.start(container)
    assert runtime.wait_exited(container).exit_code == 0
    assert [line.strip() for line in log_text(runtime.log_file(config, container_config), "stdout")] == ["is-a-tty"]


# -- logs -----------------------------------------------------------------------------------

def test_logs_are_written_in_the_cri_format(runtime, cri, pod):
    pod_id, config = pod
    container_config = runtime.container_config(command=["sh", "-c", "echo hello; echo oops >&2; echo 'with  spaces '"])
    container = runtime.create_container(pod_id, config, config=container_config)
    runtime.start(container)
    status = runtime.wait_exited(container)
    path = runtime.log_file(config, container_config)
    assert path.parent == pathlib.Path(config.log_directory)
    records = parse_cri_log(path)
    assert [(stream, tag, text) for _, stream, tag, text in records if stream == "stdout"] == [
        ("stdout", "F", "hello"), ("stdout", "F", "with  spaces ")]
    assert [(stream, tag, text) for _, stream, tag, text in records if stream == "stderr"] == [("stderr", "F", "oops")]
    for timestamp, *_ in records:
        parsed = datetime.datetime.fromisoformat(timestamp[:26].rstrip("Z") + ("+00:00" if timestamp.endswith("Z") else timestamp[-6:]))
        started = datetime.datetime.fromtimestamp(status.started_at / 1e9, datetime.timezone.utc)
        assert abs((parsed - started).total_seconds()) < 300


def test_long_lines_are_split_into_partial_records(runtime, cri, pod):
    pod_id, config = pod
    container_config = runtime.container_config(command=["sh", "-c", "head -c 40000 /dev/zero | tr '\\0' x; echo; echo after"])
    container = runtime.create_container(pod_id, config, config=container_config)
    runtime.start(container)
    runtime.wait_exited(container)
    records = [r for r in parse_cri_log(runtime.log_file(config, container_config)) if r[1] == "stdout"]
    assert records[-1][2:] == ("F", "after")
    long = records[:-1]
    assert len(long) >= 3, "a 40000-byte line is split into records of at most 16 KiB"
    assert all(tag == "P" for _, _, tag, _ in long[:-1]) and long[-1][2] == "F"
    assert all(len(text) <= 16384 for *_, text in long)
    assert "".join(text for *_, text in long) == "x" * 40000


def test_reopen_container_log(runtime, cri, pod):
    pod_id, config = pod
    container_config = runtime.container_config(command=["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done"])
    container = runtime.create_container(pod_id, config, config=container_config)
    runtime.start(container)
    path = runtime.log_file(config, container_config)
    wait_for(lambda: log_text(path), message="the first log lines")
    rotated = path.with_name(path.name + ".1")
    path.rename(rotated)
    runtime.rs.ReopenContainerLog(cri.v1.ReopenContainerLogRequest(container_id=container))
    assert path.exists(), "ReopenContainerLog creates the log file anew before it returns"
    wait_for(lambda: len(log_text(path)) >= 3, message="lines in the reopened log")
    old_lines = log_text(rotated)
    wait_for(lambda: len(log_text(path)) >= 6, message="more lines in the reopened log")
    assert log_text(rotated) == old_lines, "nothing more goes to the rotated file"
    first_new = int(log_text(path)[0].split()[1])
    assert first_new > int(old_lines[-1].split()[1]), "no line is repeated across the rotation"


def test_reopen_log_of_a_stopped_container_fails(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.run_container(pod_id, config, wait_running=False, command=["true"])
    runtime.wait_exited(container)
    with pytest.raises(grpc.RpcError) as failed:
        runtime.rs.ReopenContainerLog(cri.v1.ReopenContainerLogRequest(container_id=container))
    assert failed.value.code() != grpc.StatusCode.UNIMPLEMENTED


# -- resources ------------------------------------------------------------------------------

def cgroup_limits(runtime, container):
    """(memory limit bytes, cfs quota, cfs period, cpu shares) from the host's cgroup files."""
    memory = runtime.cgroup_dir(container, "memory")
    cpu = runtime.cgroup_dir(container, "cpu")
    if (memory / "memory.limit_in_bytes").exists():
        return (int((memory / "memory.limit_in_bytes").read_text()), int((cpu / "cpu.cfs_quota_us").read_text()),
                int((cpu / "cpu.cfs_period_us").read_text()), int((cpu / "cpu.shares").read_text()))
    limit = (memory / "memory.max").read_text().strip()
    quota, period = (cpu / "cpu.max").read_text().split()
    weight = int((cpu / "cpu.weight").read_text())
    shares = int(2 + ((weight - 1) * 262142) / 9999)  # inverse of the kubelet's shares → weight
    return (None if limit == "max" else int(limit), -1 if quota == "max" else int(quota), int(period), shares)


def test_resources_are_the_container_cgroup_limits(runtime, cri, pod):
    pod_id, config = pod
    resources = cri.v1.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_period=100000, cpu_quota=20000,
                                               cpu_shares=256)
    container = runtime.sleeper(pod_id, config, resources=resources)
    memory, quota, period, shares = cgroup_limits(runtime, container)
    assert memory == 64 << 20
    assert (quota, period) == (20000, 100000)
    assert shares in (256, 255, 257)  # v2's weight conversion rounds


def test_container_sees_its_own_cgroup_limits(runtime, cri, pod):
    """/sys/fs/cgroup inside shows the container's own cgroup (what JVMs and Go's automaxprocs read)."""
    pod_id, config = pod
    resources = cri.v1.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_period=100000, cpu_quota=20000)
    container = runtime.sleeper(pod_id, config, resources=resources)
    memory = runtime.sh(container, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
    assert memory == str(64 << 20)
    cpu = runtime.sh(container, "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max")
    assert cpu.split()[0] == "20000"
    out, err, code = runtime.exec(container, ["sh", "-c", "echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes"])
    assert code != 0, "the container cannot raise its own limit"


def test_update_container_resources_changes_the_cgroup(runtime, cri, pod):
    pod_id, config = pod
    resources = cri.v1.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_period=100000, cpu_quota=20000,
                                               cpu_shares=256)
    container = runtime.sleeper(pod_id, config, resources=resources)
    updated = cri.v1.LinuxContainerResources(memory_limit_in_bytes=96 << 20, cpu_period=50000, cpu_quota=40000,
                                             cpu_shares=512)
    runtime.rs.UpdateContainerResources(cri.v1.UpdateContainerResourcesRequest(container_id=container, linux=updated))
    memory, quota, period, shares = cgroup_limits(runtime, container)
    assert memory == 96 << 20
    assert (quota, period) == (40000, 50000)
    assert shares in (511, 512, 513)
    assert runtime.status(container).state == cri.v1.CONTAINER_RUNNING


def test_update_resources_of_a_created_container_applies_at_start(runtime, cri, pod):
    pod_id, config = pod
    container = runtime.create_container(pod_id, config, command=["sleep", "100000"],
                                         resources=cri.v1.LinuxContainerResources(memory_limit_in_bytes=64 << 20))
    runtime.rs.UpdateContainerResources(cri.v1.UpdateContainerResourcesRequest(
        container_id=container, linux=cri.v1.LinuxContainerResources(memory_limit_in_bytes=80 << 20)))
    runtime.start(container)
    runtime.wait_state(container, cri.v1.CONTAINER_RUNNING)
    assert cgroup_limits(runtime, container)[0] == 80 << 20


# -- mounts ---------------------------------------------------------------------------------

def host_dir(runtime, name):
    path = runtime.dir / name
    path.mkdir(parents=True)
    (path / "from-host").write_text("host data\n")
    return path


def mount(cri, host, container_path, **fields):
    return cri.v1.Mount(host_path=str(host), container_path=container_path, **fields)


def test_host_path_read_write(runtime, cri, pod):
    pod_id, config = pod
    host = host_dir(runtime, "rw")
    container = runtime.sleeper(pod_id, config, mounts=[mount(cri, host, "/mnt/rw")])
    assert runtime.sh(container, "cat /mnt/rw/from-host") == "host data"
    runtime.sh(container, "echo from container > /mnt/rw/from-container")
    assert (host / "from-container").read_text() == "from container\n"
    (host / "later").write_text("later\n")
    assert runtime.sh(container, "cat /mnt/rw/later") == "later"


def test_host_path_read_only(runtime, cri, pod):
    pod_id, config = pod
    host = host_dir(runtime, "ro")
    container = runtime.sleeper(pod_id, config, mounts=[mount(cri, host, "/mnt/ro", readonly=True)])
    assert runtime.sh(container, "cat /mnt/ro/from-host") == "host data"
    out, err, code = runtime.exec(container, ["sh", "-c", "echo x > /mnt/ro/new"])
    assert code != 0 and "Read-only file system" in err
    assert not (host / "new").exists()


def test_host_path_file_and_symlink_sources(runtime, cri, pod):
    pod_id, config = pod
    host = host_dir(runtime, "src")
    link = runtime.dir / "src-link"
    link.symlink_to(host)
    container = runtime.sleeper(pod_id, config, mounts=[
        mount(cri, host / "from-host", "/etc/single-file", readonly=True),
        mount(cri, link, "/mnt/via-symlink")])
    assert runtime.sh(container, "cat /etc/single-file") == "host data"
    assert runtime.sh(container, "cat /mnt/via-symlink/from-host") == "host data"


def shared_source(runtime):
    """A tmpfs of this test's own, made a shared mount (the machine's / is private)."""
    source = runtime.dir / "shared-src"
    source.mkdir()
    runtimes.run("mount", "-t", "tmpfs", "-o", "size=1m", "swl-e2e-src", str(source))
    runtimes.run("mount", "--make-shared", str(source))
    (source / "marker").write_text("top\n")
    (source / "sub").mkdir()
    return source


def test_mount_propagation_private_hides_later_host_mounts(runtime, cri, pod):
    pod_id, config = pod
    source = shared_source(runtime)
    container = runtime.sleeper(pod_id, config, mounts=[
        mount(cri, source, "/mnt/private", propagation=cri.v1.PROPAGATION_PRIVATE)])
    runtimes.run("mount", "-t", "tmpfs", "-o", "size=1m", "swl-e2e-sub", str(source / "sub"))
    (source / "sub/later").write_text("later mount\n")
    assert runtime.sh(container, "cat /mnt/private/marker") == "top"
    assert runtime.exec(container, ["cat", "/mnt/private/sub/later"])[2] != 0
    assert "/mnt/private " in runtime.sh(container, "cat /proc/self/mountinfo")
    info = [line for line in runtime.sh(container, "cat /proc/self/mountinfo").splitlines() if " /mnt/private " in line]
    assert info and "shared:" not in info[0] and "master:" not in info[0], info


def test_mount_propagation_host_to_container(runtime, cri, pod):
    pod_id, config = pod
    source = shared_source(runtime)
    container = runtime.sleeper(pod_id, config, mounts=[
        mount(cri, source, "/mnt/slave", propagation=cri.v1.PROPAGATION_HOST_TO_CONTAINER)])
    runtimes.run("mount", "-t", "tmpfs", "-o", "size=1m", "swl-e2e-sub", str(source / "sub"))
    (source / "sub/later").write_text("later mount\n")
    assert wait_for(lambda: runtime.exec(container, ["cat", "/mnt/slave/sub/later"])[0].strip() == "later mount",
                    timeout=30, message="the host's new mount to propagate into the container")


def test_mount_propagation_bidirectional(runtime, cri):
    """critest "mount with 'rshared' should support propagation from host to container and vice
    versa" (what CSI node plugins rely on): a privileged container's mount appears on the host."""
    pod_id, config = runtime.run_pod(security=cri.v1.LinuxSandboxSecurityContext(privileged=True))
    source = shared_source(runtime)
    (source / "from-container").mkdir()
    container = runtime.sleeper(pod_id, config, security=cri.v1.LinuxContainerSecurityContext(privileged=True), mounts=[
        mount(cri, source, "/mnt/shared", propagation=cri.v1.PROPAGATION_BIDIRECTIONAL)])
    runtimes.run("mount", "-t", "tmpfs", "-o", "size=1m", "swl-e2e-sub", str(source / "sub"))
    (source / "sub/later").write_text("from the host\n")
    wait_for(lambda: runtime.exec(container, ["cat", "/mnt/shared/sub/later"])[0].strip() == "from the host",
             timeout=30, message="the host's mount to propagate into the container")
    runtime.sh(container, "mount -t tmpfs -o size=1m swl-e2e-ctr /mnt/shared/from-container && echo from the container > /mnt/shared/from-container/made")
    try:
        wait_for(lambda: (source / "from-container/made").exists(), timeout=30, message="the container's mount to propagate to the host")
        assert (source / "from-container/made").read_text() == "from the container\n"
    finally:
        subprocess.run(["umount", "-l", str(source / "from-container")], check=False)


@pytest.mark.xfail_runtime("containerd", reason="containerd 1.6 predates CRI recursive_read_only (containerd 2.0)")
def test_recursive_read_only_mount(runtime, cri, pod):
    pod_id, config = pod
    source = shared_source(runtime)
    runtimes.run("mount", "--make-private", str(source))
    runtimes.run("mount", "-t", "tmpfs", "-o", "size=1m", "swl-e2e-sub", str(source / "sub"))
    container = runtime.sleeper(pod_id, config, mounts=[
        mount(cri, source, "/mnt/rro", readonly=True, recursive_read_only=True, propagation=cri.v1.PROPAGATION_PRIVATE)])
    for path in ("/mnt/rro/x", "/mnt/rro/sub/x"):
        out, err, code = runtime.exec(container, ["sh", "-c", f"echo x > {path}"])
        assert code != 0 and "Read-only file system" in err, (path, err)


@pytest.mark.xfail_runtime("containerd", reason="containerd 1.6 predates CRI recursive_read_only (containerd 2.0)")
@pytest.mark.parametrize("case", ["host-to-container", "bidirectional", "not read-only"])
def test_recursive_read_only_mounts_that_cannot_be_are_refused(runtime, cri, pod, tmp_path, case):
    """critest "should reject a recursive readonly mount with PROPAGATION_HOST_TO_CONTAINER",
    "… with PROPAGATION_BIDIRECTIONAL" and "… with ReadOnly: false"."""
    v1 = cri.v1
    pod_id, config = pod
    propagation = {"host-to-container": v1.PROPAGATION_HOST_TO_CONTAINER, "bidirectional": v1.PROPAGATION_BIDIRECTIONAL,
                   "not read-only": v1.PROPAGATION_PRIVATE}[case]
    bad = v1.Mount(host_path=str(tmp_path), container_path="/mnt/rro", readonly=case != "not read-only",
                   recursive_read_only=True, propagation=propagation)
    with pytest.raises(grpc.RpcError) as refused:
        runtime.create_container(pod_id, config, command=["true"], mounts=[bad])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "recursive read-only" in refused.value.details()
