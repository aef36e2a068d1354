"""CheckpointContainer (runtime.v1 only): a running container dumped with CRIU into an archive laid
out as CRI-O's (checkpoint/ with CRIU's images, config.dump, spec.dump, rootfs-diff.tar, the log);
the container runs on, healthy. The archive is shown restorable with `criu restore` itself: into a
fresh overlay of the image plus rootfs-diff.tar, the pod's files and network namespace, new pipes
and a cgroup of the test's, the counter the container kept in memory goes on from where it was.
Error codes: NOT_FOUND, FAILED_PRECONDITION, INVALID_ARGUMENT. Skipped without a working criu
(hack/install-criu.sh builds one)."""
import json
import os
import pathlib
import secrets
import shutil
import subprocess
import tarfile
import time

import grpc
import pytest

from runtimes import run, wait_for

CONTROLLERS_WITH_FILES = {"cpuset": ("cpuset.cpus", "cpuset.mems")}
COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; echo tick $i; sleep 0.2; done"


def _working_criu():
    for path in ("/usr/local/sbin/criu", shutil.which("criu")):
        if path and os.access(path, os.X_OK):
            check = subprocess.run([path, "check"], capture_output=True, text=True)
            if check.returncode == 0:
                return path
    return None


CRIU = _working_criu()
CRIT = next((p for p in ("/usr/local/bin/crit", shutil.which("crit")) if p and os.access(p, os.X_OK)), None)
pytestmark = pytest.mark.skipif(CRIU is None, reason="no criu that passes `criu check` (hack/install-criu.sh builds one)")


@pytest.fixture
def swiftlet(runtime):
    if runtime.name != "swiftlet":
        pytest.skip("containerd 1.6 does not implement CheckpointContainer")
    return runtime


def checkpoint(runtime, container_id, location, timeout=0):
    v1 = runtime.cri.v1
    runtime.rs.CheckpointContainer(v1.CheckpointContainerRequest(container_id=container_id, location=str(location),
                                                                 timeout=timeout), timeout=600)


def ticks(path):
    return [int(line.rsplit(" ", 1)[1]) for line in pathlib.Path(path).read_text().splitlines() if " tick " in line]


def counter(runtime):
    pod_id, config = runtime.run_pod()
    container = runtime.run_container(pod_id, config, command=["sh", "-c", COUNTER])
    log = runtime.container_log(container)
    wait_for(lambda: log.exists() and len(ticks(log)) >= 3, message="the counter to tick")
    return pod_id, config, container, log


def test_checkpoint_writes_the_archive_and_the_container_runs_on(swiftlet, cri, tmp_path):
    pod_id, config, container, log = counter(swiftlet)
    swiftlet.sh(container, "echo kept > /marker")
    pid = swiftlet.host_pid(container)
    location = tmp_path / "checkpoint.tar"
    checkpoint(swiftlet, container, location)

    with tarfile.open(location) as archive:
        names = set(archive.getnames())
        for member in ["./checkpoint/pstree.img", "./checkpoint/inventory.img", "./checkpoint/core-1.img",
                       "./checkpoint/dump.log", "./checkpoint/swiftlet-dump.json", "./config.dump", "./spec.dump",
                       "./cri-config.pb", "./rootfs-diff.tar", "./container.log"]:
            assert member in names, f"{member} missing from {sorted(names)}"
        archive.extractall(tmp_path / "x")
    extracted = tmp_path / "x"
    metadata = json.loads((extracted / "config.dump").read_text())
    assert metadata["id"] == container and metadata["runtime"] == "swiftlet"
    assert metadata["rootfsImageName"] and metadata["checkpointedTime"].endswith("Z")
    spec = json.loads((extracted / "spec.dump").read_text())
    assert spec["args"] == ["sh", "-c", COUNTER]
    dump = json.loads((extracted / "checkpoint/swiftlet-dump.json").read_text())
    assert dump["pid"] == pid
    assert {m["mountpoint"] for m in dump["mounts"]} >= {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/dev/shm"}
    assert [p["fd"] for p in dump["pipes"]] == [1, 2]
    assert [n["kind"] for n in dump["namespaces"]] == ["net"]
    with tarfile.open(extracted / "rootfs-diff.tar") as diff:
        assert {"./marker", "./tmp/count"} <= set(diff.getnames())
        assert diff.extractfile("./marker").read() == b"kept\n"
    assert "tick" in (extracted / "container.log").read_text()
    if CRIT:
        ps = run(CRIT, "x", str(extracted / "checkpoint"), "ps").stdout
        assert [line.split()[-1] for line in ps.splitlines()[1:]][0] == "sh", ps
        assert json.loads(run(CRIT, "show", str(extracted / "checkpoint/pstree.img")).stdout)["entries"][0]["pid"] == 1

    # The same process runs on, thawed: it counts, logs, and answers an exec.
    assert swiftlet.status(container).state == cri.v1.CONTAINER_RUNNING
    assert os.path.exists(f"/proc/{pid}") and swiftlet.host_pid(container) == pid
    before = ticks(log)[-1]
    wait_for(lambda: ticks(log)[-1] > before + 2, message="the log to grow after the checkpoint")
    assert int(swiftlet.sh(container, "cat /tmp/count")) > before
    assert swiftlet.sh(container, "cat /marker") == "kept"
    # A second checkpoint over the first archive replaces it.
    checkpoint(swiftlet, container, location, timeout=60)
    assert tarfile.is_tarfile(location)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging files left behind"


def test_the_checkpoint_restores_with_criu_and_counts_on(swiftlet, cri, tmp_path):
    """`criu restore` of the archive's images, as a CRI restore would set it up: a fresh rootfs
    (the image's layers under an upper directory made from rootfs-diff.tar), the pod's files for
    the external mounts, its network namespace, new pipes for stdout and stderr, /dev/null for
    stdin, and a cgroup of the test's own."""
    pod_id, config, container, log = counter(swiftlet)
    location = tmp_path / "checkpoint.tar"
    checkpoint(swiftlet, container, location)
    at_checkpoint = ticks(log)[-1]
    extracted = tmp_path / "x"
    with tarfile.open(location) as archive:
        archive.extractall(extracted)
    dump = json.loads((extracted / "checkpoint/swiftlet-dump.json").read_text())

    # The rootfs: the image's layers (the running container's lowerdir) and the diff.
    rootfs_options = next(line.split(" - ", 1)[1].split()[2] for line in open("/proc/self/mountinfo")
                          if line.split()[4] == dump["rootfs"])
    lowerdir = next(o for o in rootfs_options.split(",") if o.startswith("lowerdir="))
    restore_dir = swiftlet.dir / f"restore-{secrets.token_hex(3)}"
    for name in ("upper", "work", "rootfs"):
        (restore_dir / name).mkdir(parents=True)
    run("tar", "--extract", "--numeric-owner", "--xattrs", "--file", str(extracted / "rootfs-diff.tar"),
        "--directory", str(restore_dir / "upper"))
    run("mount", "-t", "overlay", "overlay", "-o",
        f"{lowerdir},upperdir={restore_dir / 'upper'},workdir={restore_dir / 'work'}", str(restore_dir / "rootfs"))

    cgroup = f"{swiftlet.cgroup_parent}/criu-restore-{secrets.token_hex(3)}"
    controllers = {}
    for mount in dump["mounts"]:
        if mount["mountpoint"].startswith("/sys/fs/cgroup/"):
            hierarchy = pathlib.Path(mount["source"]).parts[:5]  # /sys/fs/cgroup/<hierarchy>
            controllers[mount["key"]] = pathlib.Path(*hierarchy)
    fds, pids = [], []
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        args = [CRIU, "restore", "--images-dir", str(extracted / "checkpoint"), "--log-file", "restore.log", "-v4",
                "--restore-detached", "--root", str(restore_dir / "rootfs"), "--manage-cgroups=soft",
                "--pidfile", str(restore_dir / "pid"), "--ext-unix-sk", "--file-locks"]
        for key, hierarchy in controllers.items():
            directory = hierarchy / cgroup.lstrip("/")
            directory.mkdir(parents=True, exist_ok=True)
            for name in CONTROLLERS_WITH_FILES.get(hierarchy.name, ()):
                (directory / name).write_text((directory.parent / name).read_text())
            # Only the container's own hierarchies move (blkio, name=systemd and the unified
            # one stay where the dump found them: the root).
            args += ["--external", f"mnt[{key}]:{directory}", "--cgroup-root", f"{hierarchy.name}:{cgroup}"]
        for mount in dump["mounts"]:
            if mount["key"] not in controllers:
                args += ["--external", f"mnt[{mount['key']}]:{mount['source']}"]
        for namespace in dump["namespaces"]:
            fd = os.open(namespace["path"], os.O_RDONLY)
            fds.append(fd)
            args += ["--inherit-fd", f"fd[{fd}]:{namespace['key']}"]
        for file in dump["files"]:
            fd = os.open(file["path"], os.O_RDWR)
            fds.append(fd)
            args += ["--inherit-fd", f"fd[{fd}]:{file['key']}"]
        ends = {1: out_w, 2: err_w}
        for pipe in dump["pipes"]:
            args += ["--inherit-fd", f"fd[{ends[pipe['fd']]}]:{pipe['key']}"]
        restored = subprocess.run(args, pass_fds=fds + [out_w, err_w], capture_output=True, text=True)
        restore_log = (extracted / "checkpoint/restore.log").read_text()
        assert restored.returncode == 0, [line for line in restore_log.splitlines() if "Error" in line] + restore_log.splitlines()[-5:]
        pids.append(int((restore_dir / "pid").read_text()))
        os.close(out_w), os.close(err_w)
        out_w = err_w = None

        # The restored counter goes on from its memory: its first tick follows one from before
        # the checkpoint, not 1.
        os.set_blocking(out_r, True)
        output = b""
        while output.count(b"\n") < 3:
            chunk = os.read(out_r, 4096)
            assert chunk, f"the restored counter's stdout ended: {output!r}"
            output += chunk
        restored_ticks = [int(line.split()[1]) for line in output.decode().splitlines() if line.startswith("tick ")]
        assert restored_ticks[0] > 3 and restored_ticks[0] <= at_checkpoint + 2, (restored_ticks, at_checkpoint)
        assert restored_ticks == list(range(restored_ticks[0], restored_ticks[0] + len(restored_ticks)))
        assert open(f"/proc/{pids[0]}/cmdline").read().split("\0")[:3] == ["sh", "-c", COUNTER]
        assert any(line.endswith(":" + cgroup) for line in open(f"/proc/{pids[0]}/cgroup").read().splitlines())
        assert (restore_dir / "upper/tmp/count").exists()
        # The original is untouched and still counting.
        assert swiftlet.status(container).state == cri.v1.CONTAINER_RUNNING
        before = ticks(log)[-1]
        wait_for(lambda: ticks(log)[-1] > before, message="the original container to count on")
    finally:
        for fd in fds + [out_r] + [f for f in (out_w, err_w) if f is not None] + [err_r]:
            os.close(fd)
        for hierarchy in set(controllers.values()):
            procs = hierarchy / cgroup.lstrip("/") / "cgroup.procs"
            if procs.exists():
                for pid in procs.read_text().split():
                    try:
                        os.kill(int(pid), 9)
                    except ProcessLookupError:
                        pass
        for pid in pids:
            wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
                     open(f"/proc/{pid}/stat").read().split(") ")[1].startswith("Z"), message="the restored counter to die")
        subprocess.run(["umount", str(restore_dir / "rootfs")], capture_output=True)
        for hierarchy in set(controllers.values()):
            directory = hierarchy / cgroup.lstrip("/")
            for _ in range(50):
                try:
                    if directory.exists():
                        directory.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def test_checkpoint_errors(swiftlet, cri, tmp_path):
    pod_id, config = swiftlet.run_pod()
    running = swiftlet.sleeper(pod_id, config)
    exited = swiftlet.run_container(pod_id, config, wait_running=False, command=["true"])
    swiftlet.wait_exited(exited)

    def code(container_id, location):
        with pytest.raises(grpc.RpcError) as failed:
            checkpoint(swiftlet, container_id, location)
        return failed.value.code(), failed.value.details()

    assert code("0" * 64, tmp_path / "a.tar")[0] == grpc.StatusCode.NOT_FOUND
    assert code(exited, tmp_path / "b.tar")[0] == grpc.StatusCode.FAILED_PRECONDITION
    assert code(running, "")[0] == grpc.StatusCode.INVALID_ARGUMENT
    status, details = code(running, tmp_path / "no-such-dir" / "c.tar")
    assert status == grpc.StatusCode.INVALID_ARGUMENT and "does not exist" in details
    assert code(running, tmp_path)[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert code(running, "relative.tar")[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert list(tmp_path.iterdir()) == []
    assert swiftlet.status(running).state == cri.v1.CONTAINER_RUNNING


def test_checkpoint_with_a_failing_criu_reports_its_log(runtime_name, cri, test_image_archives, tmp_path):
    """A criu that fails (here a script standing in for one) is reported with its output, and
    the container is unharmed."""
    if runtime_name != "swiftlet":
        pytest.skip("containerd 1.6 does not implement CheckpointContainer")
    fake = tmp_path / "fake-criu"
    fake.write_text("#!/bin/sh\n[ \"$1\" = --version ] && { echo 'Version: 0.0'; exit 0; }\n"
                    "echo 'Error (criu/fake.c:1): no dumping today' >&2; exit 1\n")
    fake.chmod(0o755)
    import runtimes
    swiftlet = runtimes.make_runtime("swiftlet", cri, test_image_archives, network=True)
    swiftlet.agent.args += ["--criu-path", str(fake)]
    try:
        swiftlet.boot()
        pod_id, config = swiftlet.run_pod()
        running = swiftlet.sleeper(pod_id, config)
        with pytest.raises(grpc.RpcError) as failed:
            checkpoint(swiftlet, running, tmp_path / "x.tar")
        assert failed.value.code() == grpc.StatusCode.INTERNAL
        assert "no dumping today" in failed.value.details()
        assert swiftlet.status(running).state == cri.v1.CONTAINER_RUNNING
        assert not (tmp_path / "x.tar").exists()
    finally:
        swiftlet.cleanup()


def test_a_container_in_a_user_namespace_is_refused_clearly(swiftlet, cri, tmp_path):
    """A pod with its own user namespace (hostUsers: false): CRIU cannot dump it (its mount and
    PID namespaces are the host's), and the call says so; the container runs on."""
    from test_user_namespaces import container_security, userns_pod
    pod_id, config = swiftlet.run_pod(userns_pod(swiftlet, cri))
    container = swiftlet.sleeper(pod_id, config, security=container_security(cri, config))
    with pytest.raises(grpc.RpcError) as error:
        checkpoint(swiftlet, container, tmp_path / "mapped.tar")
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "user namespace" in error.value.details()
    assert not (tmp_path / "mapped.tar").exists()
    assert swiftlet.status(container).state == cri.v1.CONTAINER_RUNNING
