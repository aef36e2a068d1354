"""Exec, Attach and PortForward end to end: the CRI call returns a URL, and a real SPDY/3.1 or
WebSocket client (streaming_client.py, speaking what kubectl and the kubelet speak) uses it.
The runtime runs in the test's network namespace, so the client runs there too."""
import base64
import json
import pathlib
import subprocess
import sys

import grpc
import pytest

HERE = pathlib.Path(__file__).resolve().parent


def stream(runtime, function, *args, **kwargs):
    """Calls streaming_client.<function> inside the runtime's netns; returns its result
    (bytes come back as bytes), or raises RuntimeError with the client's error."""
    program = (
        "import base64, json, sys; sys.path.insert(0, %r); import streaming_client as c\n"
        "def enc(v):\n"
        "    if isinstance(v, (bytes, bytearray)): return {'b': base64.b64encode(bytes(v)).decode()}\n"
        "    if isinstance(v, (list, tuple)): return [enc(x) for x in v]\n"
        "    return v\n"
        "args, kwargs = json.loads(sys.stdin.read())\n"
        "kwargs = {k: (base64.b64decode(v['b']) if isinstance(v, dict) and 'b' in v else v) for k, v in kwargs.items()}\n"
        "args = [base64.b64decode(a['b']) if isinstance(a, dict) and 'b' in a else a for a in args]\n"
        "try:\n"
        "    print(json.dumps({'ok': enc(getattr(c, %r)(*args, **kwargs))}))\n"
        "except Exception as e:\n"
        "    print(json.dumps({'error': '%%s: %%s' %% (type(e).__name__, e)}))\n"
    ) % (str(HERE), function)

    def encode(value):
        return {"b": base64.b64encode(value).decode()} if isinstance(value, bytes) else value
    payload = json.dumps([[encode(a) for a in args], {k: encode(v) for k, v in kwargs.items()}])
    done = subprocess.run(["ip", "netns", "exec", runtime.netns, sys.executable, "-c", program],
                          input=payload, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in result:
        raise RuntimeError(result["error"])

    def decode(value):
        if isinstance(value, dict) and set(value) == {"b"}:
            return base64.b64decode(value["b"])
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value
    return decode(result["ok"])


def exit_code(status):
    sys.path.insert(0, str(HERE))
    import streaming_client
    return streaming_client.exit_code(status)


@pytest.fixture
def sleeper(runtime):
    pod_id, config = runtime.run_pod()
    return runtime.sleeper(pod_id, config)


def exec_url(runtime, container_id, cmd, stdin=False, tty=False, stderr=True):
    return runtime.rs.Exec(runtime.cri.v1.ExecRequest(container_id=container_id, cmd=cmd, stdin=stdin, stdout=True,
                                                      stderr=stderr and not tty, tty=tty)).url


@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"])
def test_exec_over_spdy_reports_output_and_exit_codes(runtime, sleeper, protocol):
    out, err, status = stream(runtime, "exec_spdy", exec_url(runtime, sleeper, ["sh", "-c", "echo out; echo err >&2; hostname"]),
                              protocol=protocol)
    assert out.startswith(b"out\n") and err == b"err\n"
    assert exit_code(status) == 0 or (protocol != "v4.channel.k8s.io" and status is None)
    out, err, status = stream(runtime, "exec_spdy", exec_url(runtime, sleeper, ["sh", "-c", "exit 3"]), protocol=protocol)
    if protocol == "v4.channel.k8s.io":
        assert exit_code(status) == 3
        assert status["reason"] == "NonZeroExitCode"
    else:
        assert "exit code 3" in status


def test_exec_stdin_reaches_the_process_and_the_url_is_single_use(runtime, sleeper):
    url = exec_url(runtime, sleeper, ["sh", "-c", "cat; echo done"], stdin=True)
    data = b"".join(b"line %d\n" % i for i in range(20000))
    out, err, status = stream(runtime, "exec_spdy", url, stdin_bytes=data)
    assert out == data + b"done\n" and exit_code(status) == 0
    status_code = stream(runtime, "http_request", url, headers=[["X-Stream-Protocol-Version", "v4.channel.k8s.io"]])[0]
    assert status_code == 404


@pytest.mark.xfail_runtime("containerd", reason="containerd 1.6's streaming server has no WebSocket protocols (403)")
def test_exec_over_websocket(runtime, sleeper):
    url = exec_url(runtime, sleeper, ["sh", "-c", "read x; echo got:$x; echo oops >&2; exit 4"], stdin=True)
    out, err, status = stream(runtime, "exec_websocket", url, stdin_bytes=b"hello\n")
    assert (out, err) == (b"got:hello\n", b"oops\n")
    assert exit_code(status) == 4


def test_exec_with_a_tty_is_resized(runtime, sleeper):
    script = 'for i in $(seq 100); do s=$(stty size); [ "$s" = "40 120" ] && break; sleep 0.1; done; echo size=$s; tty'
    url = exec_url(runtime, sleeper, ["sh", "-c", script], tty=True)
    out, _, status = stream(runtime, "exec_spdy", url, stderr=False, tty=True, resizes=[[120, 40]])
    text = out.decode()
    assert "size=40 120" in text and "/dev/pts/" in text, text
    assert exit_code(status) == 0


def test_exec_into_a_stopped_container_is_refused(runtime, cri):
    pod_id, config = runtime.run_pod()
    container = runtime.run_container(pod_id, config, command=["true"], wait_running=False)
    runtime.wait_exited(container)
    with pytest.raises(grpc.RpcError) as failed:
        exec_url(runtime, container, ["true"])
    assert failed.value.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNKNOWN,
                                   grpc.StatusCode.NOT_FOUND)
    with pytest.raises(grpc.RpcError) as failed:
        exec_url(runtime, "no-such-container", ["true"])
    assert failed.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNKNOWN)
    with pytest.raises(grpc.RpcError) as failed:
        runtime.rs.Exec(cri.v1.ExecRequest(container_id=container, cmd=["true"], tty=True, stderr=True))
    assert failed.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                                   grpc.StatusCode.UNKNOWN)


@pytest.mark.xfail_runtime("containerd", reason="containerd 1.6 ends an attach's output when the client's stdin ends "
                                                 "(output-only attach works there: see the next test)")
def test_attach_streams_output_and_feeds_stdin(runtime, cri):
    pod_id, config = runtime.run_pod()
    container = runtime.run_container(
        pod_id, config, command=["sh", "-c", "echo ready; while read line; do echo got:$line; done; echo bye"], stdin=True)
    # stdin_once is false: the first client's end of input does not end the container's.
    # Over SPDY: send two lines and end this client's stdin, then stop the container to end
    # the session (attach lasts as long as the container).
    url = runtime.rs.Attach(cri.v1.AttachRequest(container_id=container, stdin=True, stdout=True, stderr=True)).url
    import threading
    result = {}

    def attach():
        try:
            result["value"] = stream(runtime, "exec_spdy", url, stdin_bytes=b"one\ntwo\n")
        except Exception as error:  # noqa: BLE001 - reported below
            result["error"] = error
    thread = threading.Thread(target=attach)
    thread.start()
    for _ in range(100):
        if "got:two" in runtime.container_log(container).read_text():
            break
        thread.join(0.1)
    runtime.stop_container(container, timeout=0)
    thread.join(60)
    assert "error" not in result, result
    out, err, status = result["value"]
    assert b"got:one\ngot:two\n" in out
    assert exit_code(status) == 0


def test_attach_without_stdin_follows_the_output_until_the_container_stops(runtime, cri):
    pod_id, config = runtime.run_pod()
    container = runtime.run_container(
        pod_id, config, command=["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"])
    url = runtime.rs.Attach(cri.v1.AttachRequest(container_id=container, stdout=True, stderr=True)).url
    import threading
    result = {}

    def attach():
        try:
            result["value"] = stream(runtime, "exec_spdy", url)
        except Exception as error:  # noqa: BLE001 - reported below
            result["error"] = error
    thread = threading.Thread(target=attach)
    thread.start()
    log = runtime.container_log(container)
    start = log.read_text().count("tick")
    for _ in range(200):
        if log.read_text().count("tick") >= start + 10:
            break
        thread.join(0.1)
    runtime.stop_container(container, timeout=0)
    thread.join(60)
    assert "error" not in result, result
    out, _, _ = result["value"]
    assert out.count(b"tick") >= 3, out


def test_attach_with_stdin_once_ends_with_the_client(runtime, cri):
    pod_id, config = runtime.run_pod()
    cfg = runtime.container_config(command=["sh", "-c", "while read line; do echo got:$line; done; echo bye"], stdin=True)
    cfg.stdin_once = True
    container = runtime.create_container(pod_id, config, config=cfg)
    runtime.start(container)
    runtime.wait_state(container, cri.v1.CONTAINER_RUNNING)
    url = runtime.rs.Attach(cri.v1.AttachRequest(container_id=container, stdin=True, stdout=True, stderr=True)).url
    out, err, status = stream(runtime, "exec_spdy", url, stdin_bytes=b"a\nb\n")
    assert out == b"got:a\ngot:b\nbye\n"
    runtime.wait_exited(container)
    assert runtime.status(container).exit_code == 0


@pytest.mark.xfail_runtime("containerd", reason="containerd 1.6 hands out the URL and ignores stdin")
def test_attach_needs_a_container_with_stdin(runtime, cri, sleeper):
    with pytest.raises(grpc.RpcError) as failed:
        runtime.rs.Attach(cri.v1.AttachRequest(container_id=sleeper, stdin=True, stdout=True))
    assert failed.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNKNOWN)


@pytest.fixture
def web_pod(runtime):
    pod_id, config = runtime.run_pod()
    runtime.run_container(pod_id, config, command=[
        "sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"])
    for _ in range(100):
        if runtime.exec(runtime.list_containers(pod_sandbox_id=pod_id)[0].id,
                        ["sh", "-c", "netstat -ltn | grep -q :8080"])[2] == 0:
            break
    return pod_id


def test_port_forward_over_spdy_reaches_the_pod_loopback(runtime, cri, web_pod):
    url = runtime.rs.PortForward(cri.v1.PortForwardRequest(pod_sandbox_id=web_pod, port=[8080])).url
    answer = stream(runtime, "port_forward_spdy", url, 8080, b"GET /index.html HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.") and b"hello-from-pod" in answer


def test_port_forward_over_websocket(runtime, cri, web_pod):
    url = runtime.rs.PortForward(cri.v1.PortForwardRequest(pod_sandbox_id=web_pod, port=[8080])).url
    answer = stream(runtime, "port_forward_websocket", url, 8080, b"GET /index.html HTTP/1.0\r\n\r\n", 12)
    assert answer.startswith(b"HTTP/1.")


def test_port_forward_to_a_closed_port_reports_an_error(runtime, cri, web_pod):
    url = runtime.rs.PortForward(cri.v1.PortForwardRequest(pod_sandbox_id=web_pod, port=[9999])).url
    with pytest.raises(RuntimeError) as failed:
        stream(runtime, "port_forward_spdy", url, 9999, b"x")
    assert "9999" in str(failed.value)


def test_port_forward_in_host_network(runtime, cri):
    """critest "runtime should support portforward in host network": the pod's loopback is the
    runtime's (the test's network namespace here)."""
    v1 = cri.v1
    namespaces = runtime.default_namespaces()
    namespaces.network = v1.NODE
    pod_id, config = runtime.run_pod(security=v1.LinuxSandboxSecurityContext(namespace_options=namespaces))
    security = v1.LinuxContainerSecurityContext()
    security.namespace_options.CopyFrom(namespaces)
    container = runtime.run_container(pod_id, config, security=security, command=[
        "sh", "-c", "mkdir -p /www && echo hello-from-host-network > /www/index.html && exec httpd -f -p 127.0.0.1:18181 -h /www"])
    for _ in range(100):
        if runtime.exec(container, ["sh", "-c", "netstat -ltn | grep -q :18181"])[2] == 0:
            break
    url = runtime.rs.PortForward(v1.PortForwardRequest(pod_sandbox_id=pod_id, port=[18181])).url
    answer = stream(runtime, "port_forward_spdy", url, 18181, b"GET /index.html HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.") and b"hello-from-host-network" in answer
