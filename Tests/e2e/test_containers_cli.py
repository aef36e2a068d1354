"""`swiftlet containers` end to end: the commands an operator uses, and the containerizer's
recovery when the process supervising containers is killed with SIGKILL."""
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import SWIFTLET


@pytest.fixture
def sandbox():
    """A busybox rootfs, a state root and a cgroups root of this test's own, all removed after."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="swl-ctr-", dir="/tmp"))
    rootfs = base / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "etc").mkdir()
    busybox = shutil.which("busybox") or "/bin/busybox"
    shutil.copy2(busybox, rootfs / "bin/busybox")
    for applet in subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split():
        if applet != "busybox":
            (rootfs / "bin" / applet).symlink_to("busybox")
    cgroups_root = f"swiftlet-e2e-{os.getpid()}-{base.name[-6:]}"
    common = ["--state", str(base / "state"), "--cgroups-root", cgroups_root]

    def cli(*args, check=True, **kwargs):
        return subprocess.run([SWIFTLET, "containers", args[0], *common, *args[1:]], capture_output=True, text=True,
                              check=check, timeout=60, **kwargs)

    yield rootfs, common, cli
    ids = cli("list", "-q", check=False).stdout.split()
    if ids:
        cli("rm", *ids, check=False)
    for hierarchy in pathlib.Path("/sys/fs/cgroup").iterdir():
        leftover = hierarchy / cgroups_root
        if leftover.exists():
            leftover.rmdir()
    shutil.rmtree(base, ignore_errors=True)


def test_run_list_kill_rm(sandbox):
    rootfs, _, cli = sandbox
    done = cli("run", "--rootfs", str(rootfs), "--memory", "64m", "--cpus", "0.5", "once", "--", "sh", "-c", "exit 5", check=False)
    assert done.returncode == 5 and "exit_code=5 reason=Error" in done.stdout
    pid = int(cli("run", "--rootfs", str(rootfs), "-d", "sleeper", "--", "sleep", "300").stdout)
    assert os.path.exists(f"/proc/{pid}")
    listing = cli("list").stdout
    assert "once" in listing and "sleeper" in listing and "running" in listing
    cli("kill", "--signal", "KILL", "sleeper")
    assert "exit_code=137" in cli("wait", "sleeper").stdout
    missing = cli("run", "--rootfs", str(rootfs), "bad", "--", "/bin/nope", check=False)
    assert missing.returncode != 0 and "exec /bin/nope: No such file or directory" in missing.stderr
    cli("rm", "once", "sleeper")
    assert cli("list", "-q").stdout.strip() == ""


def test_kill_9_of_the_supervising_process_with_20_containers(sandbox):
    """Twenty `containers run` processes wait on their containers; all are SIGKILLed; some
    containers exit while nothing watches; a new process recovers all twenty, with the exits."""
    rootfs, common, cli = sandbox
    waiting = []
    for index in range(20):
        script = f"sleep 1; exit {index}" if index % 4 == 0 else "sleep 300"
        waiting.append(subprocess.Popen([SWIFTLET, "containers", "run", *common, "--rootfs", str(rootfs), f"c{index}",
                                         "--", "sh", "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    deadline = time.time() + 30
    while time.time() < deadline and len(cli("list", "-q").stdout.split()) < 20:
        time.sleep(0.1)
    for process in waiting:
        process.send_signal(signal.SIGKILL)
        process.wait()
    failed = [process.stderr.read().decode() for process in waiting if process.returncode not in (-9, None)]
    assert not failed, failed
    # The short ones exit while no swiftlet process is running; wait until they have (each
    # `list` is a fresh process that recovers from the checkpoints alone).
    def listing():
        return {line.split()[0]: line.split()[1:] for line in cli("list").stdout.splitlines()[1:]}
    deadline = time.time() + 20
    rows = listing()
    while time.time() < deadline and sum(row[1] == "exited" for row in rows.values()) < 5:
        time.sleep(0.2)
        rows = listing()
    assert len(rows) == 20, rows
    for index in range(20):
        state = rows[f"c{index}"][1]
        if index % 4 == 0:
            assert state == "exited" and rows[f"c{index}"][2] == str(index), rows[f"c{index}"]
        else:
            assert state == "running", rows[f"c{index}"]
    cli("rm", *rows)
    assert cli("list", "-q").stdout.strip() == ""
