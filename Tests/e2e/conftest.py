"""End-to-end fixtures: the real `swiftlet run` process and a real gRPC client (grpcio) whose
stubs are generated from proto/ at session start."""
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types

import grpc
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SWIFTLET = os.environ.get("SWIFTLET_BIN", str(REPO / ".build/debug/swiftlet"))


def generate_stubs(out: pathlib.Path) -> pathlib.Path:
    """Python stubs and a descriptor set for both CRI versions, from the vendored protos."""
    from grpc_tools import protoc
    import grpc_tools

    proto = out / "proto"
    subprocess.run([str(REPO / "hack/strip-proto-options.sh"), str(REPO / "proto"), str(proto)], check=True)
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{proto}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
            "--include_source_info", f"--descriptor_set_out={out / 'cri.desc'}",
            "runtime/v1/api.proto", "runtime/v1alpha2/api.proto"]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on proto/")
    return out


@pytest.fixture(scope="session")
def cri(tmp_path_factory):
    """The generated modules: cri.v1, cri.v1_grpc, cri.v1alpha2, cri.v1alpha2_grpc, cri.descriptor_set."""
    out = generate_stubs(tmp_path_factory.mktemp("stubs"))
    sys.path.insert(0, str(out))
    from runtime.v1 import api_pb2 as v1, api_pb2_grpc as v1_grpc
    from runtime.v1alpha2 import api_pb2 as v1alpha2, api_pb2_grpc as v1alpha2_grpc
    return types.SimpleNamespace(v1=v1, v1_grpc=v1_grpc, v1alpha2=v1alpha2, v1alpha2_grpc=v1alpha2_grpc,
                                 descriptor_set=out / "cri.desc")


class Agent:
    """One `swiftlet run` with its own socket, root, state and CNI dirs under a fresh /tmp dir."""

    def __init__(self, extra_args=(), grace="2s"):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="swl-", dir="/tmp"))
        self.socket = self.dir / "cri.sock"
        self.root = self.dir / "root"
        self.state = self.dir / "state"
        self.cni_conf = self.dir / "net.d"
        self.cni_bin = self.dir / "cni-bin"
        self.cni_conf.mkdir()
        self.cni_bin.mkdir()
        self.config = self.dir / "config.yaml"
        self.config.write_text("")
        self.log_path = self.dir / "swiftlet.log"
        self.args = [SWIFTLET, "run", "--config", str(self.config), "--cri-socket", str(self.socket),
                     "--root", str(self.root), "--state", str(self.state), "--cni-conf-dir", str(self.cni_conf),
                     "--cni-bin-dir", str(self.cni_bin), "--log-level", "debug",
                     "--shutdown-grace-period", grace, *extra_args]
        self.process = None
        self.channels = []

    @property
    def target(self):
        return f"unix://{self.socket}"

    def start(self, timeout=30):
        self.log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.args, stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"swiftlet exited with {self.process.returncode}:\n{self.log()}")
            if self.socket.exists():
                try:
                    channel = grpc.insecure_channel(self.target)
                    grpc.channel_ready_future(channel).result(timeout=1)
                    channel.close()
                    return self
                except grpc.FutureTimeoutError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"swiftlet did not serve within {timeout}s:\n{self.log()}")

    def channel(self, **options):
        channel = grpc.insecure_channel(self.target, options=list(options.items()))
        self.channels.append(channel)
        return channel

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log():
                return True
            time.sleep(0.05)
        return False

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the agent and returns its exit code."""
        for channel in self.channels:
            channel.close()
        self.channels = []
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"swiftlet did not exit within {timeout}s of {sig!r}:\n{self.log()}")

    def cleanup(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if getattr(self, "log_file", None):
            self.log_file.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def make_agent():
    """Starts agents for a test; every one is stopped and its directories removed after it."""
    agents = []

    def make(extra_args=(), grace="2s", start=True):
        agent = Agent(extra_args, grace)
        agents.append(agent)
        return agent.start() if start else agent

    yield make
    for agent in agents:
        agent.cleanup()


@pytest.fixture
def agent(make_agent):
    running = make_agent()
    yield running
    code = running.stop()
    assert code == 0, f"swiftlet exited {code} on SIGTERM:\n{running.log()}"
    assert not running.socket.exists(), "the socket must be removed on shutdown"


# ---------------------------------------------------------------------------------------------
# Pods and containers through the CRI, against either runtime (see runtimes.py):
#   pytest Tests/e2e --runtime=swiftlet            (the default)
#   pytest Tests/e2e --runtime=containerd          (the differential peer)
#   pytest Tests/e2e --runtime=swiftlet,containerd (both, test ids say which)
# A test marked `@pytest.mark.xfail_runtime("containerd", reason=...)` is a strict xfail on
# that runtime only.

def pytest_addoption(parser):
    parser.addoption("--runtime", default="swiftlet",
                     help="CRI runtime(s) for the pod/container tests: swiftlet, containerd, or both comma-separated")


def pytest_configure(config):
    config.addinivalue_line("markers", "xfail_runtime(name, reason): expected to fail on that runtime (strict)")


def pytest_generate_tests(metafunc):
    if "runtime_name" in metafunc.fixturenames:
        names = [name.strip() for name in metafunc.config.getoption("--runtime").split(",") if name.strip()]
        unknown = [name for name in names if name not in ("swiftlet", "containerd")]
        if unknown:
            raise pytest.UsageError(f"--runtime: unknown runtime(s) {unknown}; use swiftlet and/or containerd")
        metafunc.parametrize("runtime_name", names)


def pytest_collection_modifyitems(config, items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "runtime_name" not in callspec.params:
            continue
        for mark in item.iter_markers("xfail_runtime"):
            if callspec.params["runtime_name"] in (mark.args[0] if isinstance(mark.args[0], (list, tuple)) else [mark.args[0]]):
                item.add_marker(pytest.mark.xfail(reason=mark.kwargs.get("reason", ""), strict=True))


@pytest.fixture(scope="session")
def test_image_archives(tmp_path_factory):
    """OCI archives of the busybox test images every runtime imports (runtimes.BUSYBOX, …)."""
    import runtimes
    return runtimes.build_test_images(tmp_path_factory.mktemp("cri-images"))


@pytest.fixture
def make_runtime(runtime_name, cri, test_image_archives):
    """Boots runtimes (of --runtime's kind) for a test; each is torn down after it, even on failure."""
    import runtimes
    made = []

    def make(network=True):
        runtime = runtimes.make_runtime(runtime_name, cri, test_image_archives, network=network)
        made.append(runtime)
        return runtime.boot()

    yield make
    for runtime in made:
        runtime.cleanup()


@pytest.fixture
def runtime(make_runtime):
    """A booted runtime (swiftlet or containerd, per --runtime) in a network namespace of its own,
    with a bridge CNI network, the test images, and a cgroup parent of its own."""
    return make_runtime()
