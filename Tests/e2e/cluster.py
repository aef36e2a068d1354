"""A real Kubernetes 1.20 control plane on loopback for the node tests: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler, built from Debian's source package and started by
hack/local-up-cluster.sh.

    from cluster import Cluster
    with Cluster("/tmp/my-cluster", node_name="127.0.0.1") as c:
        c.kubectl("get", "--raw", "/healthz")                  # as system:masters
        c.kubectl("get", "nodes", kubeconfig=c.node_kubeconfig)  # as system:node:127.0.0.1

With `netns="NAME"` (a namespace under /run/netns) the control plane and kubectl run inside that
network namespace (`nsenter --net`: only the network namespace, mounts and cgroups stay the
machine's), so its loopback listeners are that namespace's, e.g. beside a kubelet run there.

or as a pytest fixture (session scope), imported into a test module:

    from cluster import k8s_cluster  # noqa: F401

The first `up` on a fresh machine builds the binaries (minutes; cached in
/var/cache/swiftlet-k8s/<source package version>/bin). `python3 Tests/e2e/cluster.py` runs a self-test.
"""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack" / "local-up-cluster.sh"
KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")


class KubectlError(RuntimeError):
    def __init__(self, args, result):
        self.result = result
        super().__init__(f"kubectl {' '.join(args)} exited with {result.returncode}:\n"
                         f"{result.stderr.strip()}\n{result.stdout.strip()}".rstrip())


class Cluster:
    """One control plane whose state, logs and pidfiles live in `dir` (made if missing; it must be
    empty at `up`). `down` stops it and removes `dir`."""

    COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")

    def __init__(self, dir=None, node_name="127.0.0.1", script=SCRIPT, netns=None):
        self.dir = pathlib.Path(dir) if dir is not None else pathlib.Path(tempfile.mkdtemp(prefix="k8s-", dir="/tmp"))
        self.node_name = node_name
        self.script = pathlib.Path(script)
        self.netns = netns
        self.env = {}

    def wrap(self, args):
        """A command line that runs in the cluster's network namespace (as is without one)."""
        args = [str(arg) for arg in args]
        return ["nsenter", f"--net=/run/netns/{self.netns}", *args] if self.netns else args

    # --- lifecycle ------------------------------------------------------------------------------

    def up(self, timeout=1800, attempts=2):
        """Builds if needed (the timeout covers a cold build), starts the control plane, waits until
        it is ready. A start that fails (on a loaded machine a component has been seen to exit
        before it logged anything) is tried once more in a fresh directory; both failures are
        raised with the script's output and the components' log tails."""
        failures = []
        for attempt in range(attempts):
            if attempt:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir.mkdir(parents=True)
            result = subprocess.run(self.wrap([self.script, "up", "--dir", self.dir, "--node-name", self.node_name]),
                                    capture_output=True, text=True, timeout=timeout)
            if result.returncode == 0:
                self.env = self.read_env(self.dir / "env")
                return self
            failures.append(f"local-up-cluster.sh up failed ({result.returncode}):\n{result.stderr}{result.stdout}"
                            f"{self.log_tails()}")
        raise RuntimeError("\n\n".join(failures))

    def down(self):
        """Stops every component and removes the directory; safe to call twice."""
        if not self.dir.exists():
            return
        result = subprocess.run([str(self.script), "down", "--dir", str(self.dir)], capture_output=True, text=True,
                                timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"local-up-cluster.sh down failed ({result.returncode}):\n{result.stderr}{result.stdout}")

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        self.down()

    @staticmethod
    def read_env(path):
        env = {}
        for line in pathlib.Path(path).read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                env[key] = value
        return env

    # --- what tests use -------------------------------------------------------------------------

    @property
    def server(self):
        """https://127.0.0.1:<port>"""
        return self.env["SERVER"]

    @property
    def admin_kubeconfig(self):
        """A kubeconfig for kubernetes-admin in system:masters (certificates embedded)."""
        return self.env["ADMIN_KUBECONFIG"]

    @property
    def node_kubeconfig(self):
        """A kubeconfig for system:node:<node_name> in system:nodes (Node authorizer, NodeRestriction)."""
        return self.env["NODE_KUBECONFIG"]

    @property
    def ca_cert(self):
        return self.env["CA_CERT"]

    @property
    def ca_key(self):
        """The CA's key, to sign e.g. a kubelet serving certificate the tests need."""
        return self.env["CA_KEY"]

    @property
    def bin_dir(self):
        """Where kube-apiserver, kube-controller-manager, kube-scheduler and kubelet (1.20) are."""
        return self.env["KUBE_BIN_DIR"]

    @property
    def ports(self):
        return {name: int(self.env[key]) for name, key in (
            ("etcd", "ETCD_PORT"), ("etcd-peer", "ETCD_PEER_PORT"), ("kube-apiserver", "APISERVER_PORT"),
            ("kube-controller-manager", "CONTROLLER_MANAGER_PORT"), ("kube-scheduler", "SCHEDULER_PORT"))}

    def pids(self):
        """{component: pid} from the pidfiles (whether or not the process still lives)."""
        pids = {}
        for name in self.COMPONENTS:
            pidfile = self.dir / f"{name}.pid"
            if pidfile.exists():
                pids[name] = int(pidfile.read_text().strip())
        return pids

    def run_kubectl(self, *args, kubeconfig=None, input=None, timeout=60):
        """kubectl 1.32 (it warns about the skew with 1.20 on stderr) as admin unless another kubeconfig
        is given; returns the CompletedProcess (text), never raises on a non-zero exit."""
        cmd = self.wrap([KUBECTL, "--kubeconfig", kubeconfig or self.admin_kubeconfig, *args])
        return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)

    def kubectl(self, *args, kubeconfig=None, input=None, timeout=60):
        """kubectl's stdout; raises KubectlError (with stderr) on a non-zero exit."""
        result = self.run_kubectl(*args, kubeconfig=kubeconfig, input=input, timeout=timeout)
        if result.returncode != 0:
            raise KubectlError(args, result)
        return result.stdout

    def kubectl_json(self, *args, **kwargs):
        return json.loads(self.kubectl(*args, "-o", "json", **kwargs))

    def apply(self, obj, kubeconfig=None):
        """Creates an object given as a dict; returns it as the API server stored it."""
        return json.loads(self.kubectl("create", "-o", "json", "-f", "-", kubeconfig=kubeconfig, input=json.dumps(obj)))

    def log_tails(self, lines=20):
        out = []
        for name in self.COMPONENTS:
            log = self.dir / f"{name}.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {log} (last {len(tail)} lines)\n" + "\n".join(tail))
        return ("\n" + "\n".join(out)) if out else ""


try:
    import pytest
except ImportError:  # the self-test below needs no pytest
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="session")
    def k8s_cluster():
        """One control plane for the session (node name 127.0.0.1); import it into a test module."""
        cluster = Cluster(node_name=os.environ.get("SWIFTLET_TEST_NODE_NAME", "127.0.0.1"))
        cluster.up()
        try:
            yield cluster
        finally:
            cluster.down()


# --- self-test: python3 Tests/e2e/cluster.py ---------------------------------------------------

def _port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _process_alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return False


def self_test():
    import time
    base = pathlib.Path(tempfile.mkdtemp(prefix="k8s-selftest-", dir="/tmp"))
    node = "swiftlet-selftest-node"
    cluster = Cluster(base / "cluster", node_name=node)
    started = time.time()
    pids, ports = {}, {}
    try:
        cluster.up()
        print(f"up in {time.time() - started:.1f} s: {cluster.server}, binaries in {cluster.bin_dir}")
        pids, ports = cluster.pids(), cluster.ports
        assert all(_process_alive(pid) for pid in pids.values()), pids
        assert all(_port_open(port) for port in ports.values()), ports

        assert cluster.kubectl("get", "--raw", "/healthz").strip() == "ok", "healthz"
        assert cluster.kubectl("get", "--raw", "/readyz").strip() == "ok", "readyz"
        version = json.loads(cluster.kubectl("get", "--raw", "/version"))
        assert version["gitVersion"] == "v1.20.2", version

        # A ConfigMap round trip (JSON map decoding is what reflect2 1.0.1 broke).
        cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "selftest", "namespace": "default"},
                       "data": {"greeting": "hello", "nested.json": json.dumps({"a": {"b": [1, 2]}})}})
        cm = cluster.kubectl_json("get", "configmap", "selftest", "-n", "default")
        assert cm["data"] == {"greeting": "hello", "nested.json": '{"a": {"b": [1, 2]}}'}, cm["data"]

        # The node's credentials: its own Node and Lease, as a kubelet registers them.
        created = cluster.apply({"apiVersion": "v1", "kind": "Node",
                                 "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}}},
                                kubeconfig=cluster.node_kubeconfig)
        assert created["metadata"]["name"] == node
        lease = cluster.apply({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                               "metadata": {"name": node, "namespace": "kube-node-lease"},
                               "spec": {"holderIdentity": node, "leaseDurationSeconds": 40}},
                              kubeconfig=cluster.node_kubeconfig)
        assert lease["spec"]["holderIdentity"] == node
        seen = cluster.kubectl_json("get", "node", node, kubeconfig=cluster.node_kubeconfig)
        assert seen["metadata"]["name"] == node
        cluster.kubectl_json("get", "lease", node, "-n", "kube-node-lease")

        # The Node authorizer and NodeRestriction are on: another node's objects are refused.
        other = cluster.run_kubectl("create", "-f", "-", kubeconfig=cluster.node_kubeconfig, input=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "someone-else"}}))
        assert other.returncode != 0 and "forbidden" in other.stderr.lower(), other
        secrets = cluster.run_kubectl("get", "secrets", "-A", kubeconfig=cluster.node_kubeconfig)
        assert secrets.returncode != 0 and "forbidden" in secrets.stderr.lower(), secrets

        # The controller manager runs: it gives the node a pod CIDR.
        deadline = time.time() + 30
        while not cluster.kubectl_json("get", "node", node)["spec"].get("podCIDR"):
            assert time.time() < deadline, "no podCIDR from kube-controller-manager"
            time.sleep(0.5)
        print("verified: healthz, readyz, version, ConfigMap round trip, node's Node and Lease, "
              "Node authorizer and NodeRestriction, controller manager")
    except BaseException:
        print(cluster.log_tails(40))
        raise
    finally:
        cluster.down()
    time.sleep(0.2)
    left = {name: pid for name, pid in pids.items() if _process_alive(pid)}
    assert not left, f"processes left after down: {left}"
    open_ports = {name: port for name, port in ports.items() if _port_open(port)}
    assert not open_ports, f"ports still open after down: {open_ports}"
    assert not cluster.dir.exists(), f"{cluster.dir} left after down"
    base.rmdir()
    print(f"self-test passed in {time.time() - started:.1f} s; down left no processes, ports or files")


if __name__ == "__main__":
    self_test()
