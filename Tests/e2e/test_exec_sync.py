"""ExecSync (after critest's container.go execSync specs): output and exit codes, the
container's namespaces, cgroup, user, env and working dir for the exec'd process, timeouts
that kill the exec'd process but not the container, and errors for containers that are not
running."""
import hashlib

import grpc
import pytest

from runtimes import ENTRYPOINT, wait_for


@pytest.fixture
def sleeper(runtime):
    pod_id, config = runtime.run_pod()
    return runtime.sleeper(pod_id, config, env={"FROM_CONFIG": "yes"})


def test_stdout_stderr_and_exit_code(runtime, cri, sleeper):
    out, err, code = runtime.exec(sleeper, ["sh", "-c", "echo out; echo err >&2; echo more; exit 3"])
    assert (out, err, code) == ("out\nmore\n", "err\n", 3)
    assert runtime.exec(sleeper, ["echo", "hello world"]) == ("hello world\n", "", 0)
    assert runtime.exec(sleeper, ["true"]) == ("", "", 0)
    assert runtime.exec(sleeper, ["false"])[2] == 1


def test_large_output_is_complete(runtime, cri, sleeper):
    out = runtime.rs.ExecSync(cri.v1.ExecSyncRequest(
        container_id=sleeper, cmd=["sh", "-c", "seq 1 200000"], timeout=60)).stdout
    assert len(out) > 1_000_000
    assert hashlib.sha256(out).hexdigest() == hashlib.sha256(
        "".join(f"{i}\n" for i in range(1, 200001)).encode()).hexdigest()


def test_exec_joins_the_container(runtime, cri, sleeper):
    """The exec'd process is in the container's namespaces and cgroup."""
    for ns in ("mnt", "net", "pid", "ipc", "uts"):
        mine, init = runtime.sh(sleeper, f"readlink /proc/self/ns/{ns}; readlink /proc/1/ns/{ns}").split()
        assert mine == init, ns
    assert runtime.sh(sleeper, "cat /proc/self/cgroup") == runtime.sh(sleeper, "cat /proc/1/cgroup")
    # It sees the container's root filesystem, and changes to it.
    runtime.sh(sleeper, "echo written-by-exec > /tmp/exec-file")
    assert runtime.sh(sleeper, "cat /tmp/exec-file") == "written-by-exec"


def test_exec_has_the_container_env_user_and_working_dir(runtime, cri):
    pod_id, config = runtime.run_pod()
    container = runtime.sleeper(pod_id, config, image=ENTRYPOINT, command=["sleep", "100000"],
                                env={"FROM_CONFIG": "yes"}, working_dir="/tmp")
    env = dict(line.split("=", 1) for line in runtime.sh(container, "env").splitlines() if "=" in line)
    assert env["FROM_CONFIG"] == "yes"
    assert env["IMAGE_ONLY"] == "from-image"
    assert runtime.sh(container, "id -u") == "1000"
    assert runtime.sh(container, "pwd") == "/tmp"


def test_timeout_kills_the_exec_process_not_the_container(runtime, cri, sleeper):
    with pytest.raises(grpc.RpcError) as timed_out:
        runtime.rs.ExecSync(cri.v1.ExecSyncRequest(container_id=sleeper, cmd=["sleep", "4242"], timeout=2), timeout=120)
    assert timed_out.value.code() != grpc.StatusCode.UNIMPLEMENTED
    assert "timeout" in timed_out.value.details().lower() or timed_out.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_for(lambda: "4242" not in runtime.sh(sleeper, "ps -o args | grep -v grep"), timeout=30,
             message="the timed-out exec process to be killed")
    assert runtime.status(sleeper).state == cri.v1.CONTAINER_RUNNING
    assert runtime.exec(sleeper, ["echo", "still here"]) == ("still here\n", "", 0)


def test_a_cancelled_call_kills_the_exec_process(runtime, cri, sleeper):
    """The client gives up (its deadline passes before the exec's own timeout): the process the
    call started is killed, not left running in the container."""
    with pytest.raises(grpc.RpcError) as gone:
        runtime.rs.ExecSync(cri.v1.ExecSyncRequest(container_id=sleeper, cmd=["sleep", "4343"], timeout=0), timeout=1)
    assert gone.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_for(lambda: "4343" not in runtime.sh(sleeper, "ps -o args | grep -v grep"), timeout=30,
             message="the abandoned exec process to be killed")
    assert runtime.status(sleeper).state == cri.v1.CONTAINER_RUNNING


def test_missing_executable_fails(runtime, cri, sleeper):
    try:
        out, err, code = runtime.exec(sleeper, ["/bin/no-such-binary"])
    except grpc.RpcError as failed:
        assert failed.code() != grpc.StatusCode.UNIMPLEMENTED
        assert "no-such-binary" in failed.details()
    else:
        assert code in (126, 127) and "no-such-binary" in err


def test_exec_in_an_exited_container_fails(runtime, cri):
    pod_id, config = runtime.run_pod()
    container = runtime.run_container(pod_id, config, wait_running=False, command=["true"])
    runtime.wait_exited(container)
    with pytest.raises(grpc.RpcError) as failed:
        runtime.exec(container, ["echo", "nope"])
    assert failed.value.code() != grpc.StatusCode.UNIMPLEMENTED


def test_exec_in_an_unknown_container_is_not_found(runtime, cri):
    with pytest.raises(grpc.RpcError) as failed:
        runtime.exec("0123456789abcdef" * 4, ["echo", "nope"])
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND


def test_concurrent_execs(runtime, cri, sleeper):
    futures = [runtime.rs.ExecSync.future(cri.v1.ExecSyncRequest(
        container_id=sleeper, cmd=["sh", "-c", f"sleep 1; echo {i}"], timeout=60), timeout=120) for i in range(8)]
    assert [f.result().stdout.decode().strip() for f in futures] == [str(i) for i in range(8)]
