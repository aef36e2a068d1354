"""The agent's process life: the socket it makes, a stale socket from a crash, a second agent on
the same socket, bad configuration, and SIGTERM/SIGINT with calls in flight."""
import os
import signal
import socket
import stat
import subprocess
import threading
import time

import grpc
import pytest

from conftest import SWIFTLET


def test_socket_is_mode_0660(agent):
    mode = os.stat(agent.socket).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660


def test_stale_socket_from_a_crash_is_replaced(make_agent, cri):
    agent = make_agent(start=False)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(agent.socket))  # bound, never listening: what a killed server leaves
    stale.close()
    assert agent.socket.exists()
    agent.start()
    stub = cri.v1_grpc.RuntimeServiceStub(agent.channel())
    assert stub.Version(cri.v1.VersionRequest()).runtime_name == "swiftlet"
    assert agent.stop() == 0


def test_kill_9_leaves_a_socket_the_next_start_replaces(make_agent, cri):
    agent = make_agent()
    agent.process.kill()
    agent.process.wait()
    assert agent.socket.exists()
    agent.start()
    assert cri.v1_grpc.RuntimeServiceStub(agent.channel()).Version(cri.v1.VersionRequest()).runtime_name == "swiftlet"
    assert agent.stop() == 0


def test_a_live_server_socket_is_not_taken_over(agent):
    second = subprocess.run(agent.args, capture_output=True, text=True, timeout=30)
    assert second.returncode != 0
    assert f"CRI socket {agent.socket} is in use by a running server" in second.stderr
    assert agent.socket.exists()


def test_a_path_that_is_not_a_socket_is_not_replaced(make_agent):
    agent = make_agent(start=False)
    agent.socket.write_text("precious")
    result = subprocess.run(agent.args, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "exists and is not a socket" in result.stderr
    assert agent.socket.read_text() == "precious"


@pytest.mark.parametrize("config,message", [
    ("critSocket: /tmp/x.sock\n", 'unknown key "critSocket"'),
    ("cgroupDriver: cgroupv3\n", "invalid cgroupDriver"),
    ("root: relative\n", "invalid root"),
])
def test_bad_config_files_are_refused_with_a_clear_message(make_agent, config, message):
    agent = make_agent(start=False)
    agent.config.write_text(config)
    result = subprocess.run(agent.args, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert message in result.stderr
    assert str(agent.config) in result.stderr


def test_flags_override_the_config_file(make_agent, cri):
    agent = make_agent(start=False)
    agent.config.write_text("cgroupDriver: systemd\nlogLevel: info\n")
    agent.start()
    stub = cri.v1_grpc.RuntimeServiceStub(agent.channel())
    assert stub.RuntimeConfig(cri.v1.RuntimeConfigRequest()).linux.cgroup_driver == cri.v1.SYSTEMD
    assert 'level=debug' in agent.log()  # --log-level debug from the flags wins over the file
    assert agent.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_with_a_stream_in_flight_waits_for_the_grace_period(make_agent, cri, sig):
    agent = make_agent(grace="1500ms")
    stub = cri.v1_grpc.RuntimeServiceStub(agent.channel())
    stream = stub.GetContainerEvents(cri.v1.GetEventsRequest())
    assert agent.wait_for_log("container event stream opened")
    started = time.monotonic()
    agent.process.send_signal(sig)
    with pytest.raises(grpc.RpcError) as ended:
        list(stream)
    assert ended.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
    code = agent.process.wait(timeout=30)
    assert code == 0, f"exit {code}:\n{agent.log()}"
    elapsed = time.monotonic() - started
    assert elapsed >= 1.0, f"the in-flight stream was cut after {elapsed:.2f}s, before the grace period"
    assert not agent.socket.exists()
    assert "shutting down" in agent.log() and "CRI server stopped" in agent.log()


def test_sigterm_under_load_every_call_completes_or_is_refused_cleanly(make_agent, cri):
    """Calls the server accepted before SIGTERM complete. A call racing the shutdown (sent as
    it begins) is refused by the gRPC core: CANCELLED if it reached the server after the
    shutdown began, UNAVAILABLE once the socket is gone. Nothing else, and no hang."""
    agent = make_agent()
    lock = threading.Lock()
    outcomes = []  # (started, ended, code)
    stop = threading.Event()

    def client():
        channel = grpc.insecure_channel(agent.target)
        stub = cri.v1_grpc.RuntimeServiceStub(channel)
        while not stop.is_set():
            started = time.monotonic()
            try:
                stub.Status(cri.v1.StatusRequest(verbose=True), timeout=10)
                code = grpc.StatusCode.OK
            except grpc.RpcError as error:
                code = error.code()
            with lock:
                outcomes.append((started, time.monotonic(), code))
            if code == grpc.StatusCode.UNAVAILABLE:
                break
        channel.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    signalled = time.monotonic()
    agent.process.send_signal(signal.SIGTERM)
    assert agent.process.wait(timeout=30) == 0
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    codes = {code for _, _, code in outcomes}
    assert codes <= {grpc.StatusCode.OK, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE}, codes
    assert sum(code == grpc.StatusCode.OK for _, _, code in outcomes) > 10
    # Every call that failed was still in flight when the signal was sent (or began after it),
    # and none that had been answered before the signal failed.
    for started, ended, code in outcomes:
        if code != grpc.StatusCode.OK:
            assert ended >= signalled, (started - signalled, ended - signalled, code)
    assert not agent.socket.exists()


def test_second_signal_exits_at_once(make_agent, cri):
    agent = make_agent(grace="60s")
    stream = cri.v1_grpc.RuntimeServiceStub(agent.channel()).GetContainerEvents(cri.v1.GetEventsRequest())
    assert agent.wait_for_log("container event stream opened")
    agent.process.send_signal(signal.SIGTERM)
    assert agent.wait_for_log("shutting down")
    agent.process.send_signal(signal.SIGTERM)
    assert agent.process.wait(timeout=10) == 1
    assert "second signal" in agent.log()
    stream.cancel()


def test_version_and_help_commands():
    assert subprocess.run([SWIFTLET, "--version"], capture_output=True, text=True).stdout.strip().count(".") == 2
    helptext = subprocess.run([SWIFTLET, "run", "--help"], capture_output=True, text=True).stdout
    for flag in ["--cri-socket", "--root", "--state", "--log-level", "--config", "--cgroup-driver", "--cni-conf-dir"]:
        assert flag in helptext
    defaults = subprocess.run([SWIFTLET, "config", "default"], capture_output=True, text=True, check=True).stdout
    assert "criSocket: /run/swiftlet/swiftlet.sock" in defaults
