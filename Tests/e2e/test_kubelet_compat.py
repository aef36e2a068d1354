"""The real kubelet 1.20 runs pods on Swiftlet: CRI `runtime.v1alpha2` end to end.

Layout. The test makes one network namespace (runtimes.SwiftletRuntime's, `swl-e2e-<token>`),
which plays the node, and runs everything that listens or touches networks inside it:

    netns swl-e2e-<token>                                   (host: only its mounts and cgroups)
      etcd, kube-apiserver, -controller-manager, -scheduler   127.0.0.1:<free ports>
      kubelet 1.20          --hostname-override=127.0.0.1, serving 127.0.0.1:10250
      swiftlet run          CRI on <dir>/cri.sock, streaming server on 127.0.0.1:<free port>,
                            CNI bridge swlbr<token> + host-local 10.88.7.0/24
      kubectl (1.32)        as admin, against the API server on the namespace's loopback

Who talks to whom: kubelet -> API server (loopback, node kubeconfig); API server -> kubelet at
the node's InternalIP:10250 for logs and exec (the node is named by the IP 127.0.0.1, which
the kubelet takes as its InternalIP from --hostname-override; it refuses a loopback --node-ip);
kubelet -> Swiftlet over the CRI unix socket (v1alpha2), and -> Swiftlet's streaming URL
(127.0.0.1) to proxy exec. A kubelet on the host's network could not reach that URL inside
Swiftlet's namespace, and would put port 10250 and the API server on the machine's loopback;
in one namespace every listener is private to the test (no port clashes with parallel runs,
nothing on the machine's network). nsenter joins only the network namespace, so the kubelet
sees the machine's cgroups, /proc and mounts as on a node.

What stays on the machine, kept private or restored: the kubelet's --root-dir, --cert-dir and
--volume-plugin-dir live under the test's directory; its cgroups under a cgroupRoot of the
test's own (`/swl-kubelet-<token>`, kubepods below it, Swiftlet's containers below those); the
kernel tunables it rewrites (vm.overcommit_memory, vm.panic_on_oom, kernel.panic,
kernel.panic_on_oops, kernel.keys.root_maxkeys/root_maxbytes) are saved and restored; what it
writes in /var/log/pods and /var/log/containers for the test's pods is removed (and the
directories, if it made them).

Pods use the busybox test image, imported into Swiftlet's store before it starts, with
`imagePullPolicy: Never`: one runs (IP, logs, exec), one runs to completion (exit code,
termination message); both are deleted and Swiftlet must end with no sandbox or container.
The Kubernetes binaries come from hack/local-up-cluster.sh (built once from Debian's source,
cached): if they cannot be built the test is skipped with the reason (and a warning).
"""
import contextlib
import fcntl
import ipaddress
import json
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import tempfile
import types
import warnings

import grpc
import pytest

import runtimes
from cluster import SCRIPT, Cluster
from runtimes import wait_for

NODE = "127.0.0.1"
KUBELET_PORT = 10250
# What kubelet 1.20's container manager sets (setupKernelTunables) unless protectKernelDefaults.
KERNEL_TUNABLES = ["vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
                   "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"]
POD_LOGS = pathlib.Path("/var/log/pods")
CONTAINER_LOGS = pathlib.Path("/var/log/containers")


@pytest.fixture(scope="module")
def kube_bin_dir():
    """The cached (or freshly built) Kubernetes 1.20 binaries; skips, saying why, if they cannot be built."""
    try:
        result = subprocess.run([str(SCRIPT), "bin-dir"], capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        reason = "kubelet compatibility: building Kubernetes 1.20 (hack/local-up-cluster.sh bin-dir) timed out"
        warnings.warn(reason)
        pytest.skip(reason)
    if result.returncode != 0:
        tail = "\n".join((result.stderr + result.stdout).strip().splitlines()[-15:])
        reason = (f"kubelet compatibility: the Kubernetes 1.20 binaries could not be built "
                  f"(hack/local-up-cluster.sh bin-dir exited {result.returncode}):\n{tail}")
        warnings.warn(reason)  # listed in the warnings summary even under -q
        pytest.skip(reason)
    bin_dir = pathlib.Path(result.stdout.strip().splitlines()[-1])
    assert (bin_dir / "kubelet").is_file(), f"no kubelet in {bin_dir}"
    return bin_dir


def read_tunables():
    return {name: pathlib.Path("/proc/sys", name).read_text() for name in KERNEL_TUNABLES}


# The tunables are the machine's: with two of these tests at once (two sessions, or a session and
# CI) the second would save the first kubelet's values. The first holder saves the machine's
# values in a file under /run; the last one out (dead holders do not count) restores them.
TUNABLES_FILE = pathlib.Path("/run/swiftlet-e2e-kubelet-tunables.json")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@contextlib.contextmanager
def _tunables_lock():
    """The state file's contents ([state or None], holders alive only) under a lock on its
    directory (no lock file to leave behind); what the block leaves in the box is written back."""
    directory = os.open(TUNABLES_FILE.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(directory, fcntl.LOCK_EX)
        state = json.loads(TUNABLES_FILE.read_text()) if TUNABLES_FILE.exists() else None
        if state is not None:
            state["holders"] = {token: pid for token, pid in state["holders"].items() if _pid_alive(pid)}
        box = [state]
        yield box
        if box[0] is None:
            TUNABLES_FILE.unlink(missing_ok=True)
        else:
            TUNABLES_FILE.write_text(json.dumps(box[0]))
    finally:
        os.close(directory)


def hold_tunables(token):
    with _tunables_lock() as box:
        if box[0] is None or not box[0]["holders"]:
            box[0] = {"values": box[0]["values"] if box[0] else read_tunables(), "holders": {}}
        box[0]["holders"][token] = os.getpid()


def release_tunables(token):
    with _tunables_lock() as box:
        if box[0] is None:
            return
        box[0]["holders"].pop(token, None)
        if not box[0]["holders"]:
            for name, value in box[0]["values"].items():
                path = pathlib.Path("/proc/sys", name)
                if path.read_text() != value:
                    path.write_text(value)
            box[0] = None


class Kubelet:
    """kubelet 1.20 in the node's network namespace, pointed at Swiftlet's socket."""

    def __init__(self, bin_dir, netns, cluster, socket, token):
        self.binary = pathlib.Path(bin_dir) / "kubelet"
        self.netns = netns
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="swl-kubelet-", dir="/tmp"))
        self.root = self.dir / "root"
        self.log_path = self.dir / "kubelet.log"
        self.cgroup_root = f"/swl-kubelet-{token}"
        self.config = self.dir / "config.yaml"
        self.config.write_text(json.dumps({
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": NODE, "port": KUBELET_PORT, "readOnlyPort": 0,
            "healthzBindAddress": NODE, "healthzPort": 10248,
            # The API server presents a client certificate of the cluster's CA (system:masters).
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": cluster.ca_cert}},
            "authorization": {"mode": "AlwaysAllow"},
            "cgroupDriver": "cgroupfs", "cgroupRoot": self.cgroup_root, "cgroupsPerQOS": True,
            "failSwapOn": False, "makeIPTablesUtilChains": False,
            "oomScoreAdj": 0,  # these hosts refuse a negative oom_score_adj
            # The machine's disk is shared: no image GC of the test image, no evictions.
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
            "syncFrequency": "10s", "fileCheckFrequency": "10s", "nodeStatusUpdateFrequency": "5s",
            "serializeImagePulls": False, "resolvConf": "/etc/resolv.conf",
        }, indent=1))
        self.args = [
            str(self.binary), "--config", str(self.config), "--kubeconfig", cluster.node_kubeconfig,
            "--root-dir", str(self.root), "--cert-dir", str(self.dir / "pki"),
            "--volume-plugin-dir", str(self.dir / "volume-plugins"),
            "--hostname-override", NODE,
            "--container-runtime", "remote", "--container-runtime-endpoint", f"unix://{socket}",
            "--image-service-endpoint", f"unix://{socket}", "--runtime-request-timeout", "2m",
            "--v", "3",
        ]
        self.process = None

    def start(self):
        # kubelet checks that its cgroupRoot exists in every controller it uses.
        for hierarchy in pathlib.Path("/sys/fs/cgroup").iterdir():
            if hierarchy.name != "unified" and (hierarchy / "cgroup.procs").exists():
                (hierarchy / self.cgroup_root.lstrip("/")).mkdir(exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(["nsenter", f"--net=/run/netns/{self.netns}", *self.args],
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def log(self, lines=80):
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self):
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def cleanup(self):
        self.stop()
        runtimes.unmount_below(self.dir)  # secret/projected volumes, the rshared root dir
        runtimes.remove_cgroup_tree(self.cgroup_root)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def node(kube_bin_dir, cri, test_image_archives):
    """A node: Swiftlet, a control plane and a kubelet in one network namespace (see the module doc)."""
    had_logs = {path: path.exists() for path in (POD_LOGS, CONTAINER_LOGS)}
    token = secrets.token_hex(4)
    swiftlet = runtimes.make_runtime("swiftlet", cri, test_image_archives)
    node = types.SimpleNamespace(swiftlet=swiftlet, cluster=None, kubelet=None, cri=cri, token=token, pod_names=[])
    try:
        hold_tunables(token)
        swiftlet.boot()
        node.cluster = Cluster(node_name=NODE, netns=swiftlet.netns)
        node.cluster.up()
        node.kubelet = Kubelet(kube_bin_dir, swiftlet.netns, node.cluster, swiftlet.socket, token)
        node.kubelet.start()
        yield node
    finally:
        errors = []
        for step in (lambda: node.kubelet and node.kubelet.stop(),  # first: it would restart what goes
                     swiftlet.cleanup,
                     lambda: node.kubelet and node.kubelet.cleanup(),
                     lambda: node.cluster and node.cluster.down(),
                     lambda: release_tunables(token),
                     lambda: remove_pod_logs(node.pod_names, had_logs)):
            try:
                step()
            except Exception as error:  # every step runs; the first failure is reported
                errors.append(error)
        if errors:
            raise errors[0]


def remove_pod_logs(pod_names, had_logs):
    """What the kubelet wrote for the test's pods in /var/log/pods and /var/log/containers."""
    for name in pod_names:
        for path in POD_LOGS.glob(f"*_{name}_*"):
            shutil.rmtree(path, ignore_errors=True)
        for path in CONTAINER_LOGS.glob(f"{name}_*"):
            path.unlink(missing_ok=True)
    for path, existed in had_logs.items():
        if not existed and path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def diagnostics(node):
    return (f"\n--- kubelet log (tail)\n{node.kubelet.log()}\n--- swiftlet log (tail)\n"
            + "\n".join(node.swiftlet.log().splitlines()[-60:]) + node.cluster.log_tails(10))


def node_ready(node):
    """The Node object once it is Ready, else None."""
    result = node.cluster.run_kubectl("get", "node", NODE, "-o", "json")
    if result.returncode != 0:
        return None
    obj = json.loads(result.stdout)
    conditions = {c["type"]: c for c in obj["status"].get("conditions", [])}
    return obj if conditions.get("Ready", {}).get("status") == "True" else None


def pod_json(node, name):
    result = node.cluster.run_kubectl("get", "pod", name, "-n", "default", "-o", "json")
    return json.loads(result.stdout) if result.returncode == 0 else None


def pod_manifest(name, container, script, **spec):
    """A busybox pod bound to the node (no scheduler), its image only from Swiftlet's store."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 2, **spec, "containers": [{
                "name": container, "image": runtimes.BUSYBOX, "imagePullPolicy": "Never",
                "command": ["sh", "-c", script]}]}}


def v1alpha2_lists(node):
    """(sandboxes, containers) as a kubelet 1.20 sees them."""
    cri = node.cri
    channel = grpc.insecure_channel(node.swiftlet.target)
    try:
        stub = cri.v1alpha2_grpc.RuntimeServiceStub(channel)
        pods = stub.ListPodSandbox(cri.v1alpha2.ListPodSandboxRequest(), timeout=30).items
        containers = stub.ListContainers(cri.v1alpha2.ListContainersRequest(), timeout=30).containers
        return list(pods), list(containers)
    finally:
        channel.close()


def test_kubelet_1_20_runs_a_pod_on_swiftlet(node):
    cluster, kubelet, swiftlet = node.cluster, node.kubelet, node.swiftlet
    try:
        # The node registers and becomes Ready (RuntimeReady and NetworkReady through v1alpha2 Status).
        def ready():
            assert kubelet.alive(), f"kubelet exited with {kubelet.process.returncode}"
            return node_ready(node)
        obj = wait_for(ready, timeout=180, interval=1, message="node 127.0.0.1 Ready")
        info = obj["status"]["nodeInfo"]
        assert info["containerRuntimeVersion"].startswith("swiftlet://"), info
        assert info["kubeletVersion"] == "v1.20.2", info
        addresses = {a["type"]: a["address"] for a in obj["status"]["addresses"]}
        assert addresses.get("InternalIP") == NODE, addresses
        assert obj["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == KUBELET_PORT

        # A pod bound to the node: it runs, with an IP from the bridge network's range. Beside it a
        # pod that runs to completion (its exit code and termination message reach the API).
        name, job = f"compat-{node.token}", f"compat-job-{node.token}"
        node.pod_names += [name, job]
        greeting = f"hello from {name}"
        cluster.apply(pod_manifest(name, "main", f"echo '{greeting}'; exec sleep 100000"))
        cluster.apply(pod_manifest(job, "job", "echo job-output; echo job-done > /dev/termination-log; exit 3",
                          restartPolicy="Never"))

        def running():
            pod = pod_json(node, name)
            if pod and pod["status"].get("phase") == "Running" and pod["status"].get("podIP"):
                return pod
            return None
        pod = wait_for(running, timeout=180, interval=1, message=f"pod {name} Running")
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(swiftlet.subnet), pod["status"]
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"] and "running" in status["state"], status
        assert status["containerID"].startswith("swiftlet://"), status
        # The kubelet creates containers by image id; the status names the image by its tag.
        assert status["image"] == runtimes.BUSYBOX, status

        # The same pod through the CRI: one ready sandbox, one running container.
        sandboxes, containers = v1alpha2_lists(node)
        ours = [s for s in sandboxes if s.metadata.name == name]
        assert len(ours) == 1 and ours[0].state == node.cri.v1alpha2.SANDBOX_READY, sandboxes
        assert [c.metadata.name for c in containers if c.pod_sandbox_id == ours[0].id] == ["main"], containers

        # kubectl logs: API server → kubelet (127.0.0.1:10250) → the CRI log file Swiftlet writes.
        def logged():
            result = cluster.run_kubectl("logs", name, "-n", "default")
            return result.stdout if result.returncode == 0 and greeting in result.stdout else None
        logs = wait_for(logged, timeout=60, interval=1, message="kubectl logs")
        assert logs.strip().splitlines() == [greeting], logs

        # kubectl exec: API server → kubelet → Swiftlet's streaming server (SPDY).
        result = cluster.run_kubectl("exec", name, "-n", "default", "--", "sh", "-c",
                                     "echo exec-ok; cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; id -u")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.strip().splitlines()
        assert lines[0] == "exec-ok", result.stdout
        assert lines[1].strip() == "sleep 100000", result.stdout
        assert lines[2] == name and lines[3] == "0", result.stdout
        failed = cluster.run_kubectl("exec", name, "-n", "default", "--", "sh", "-c", "exit 3")
        assert failed.returncode == 3, (failed.returncode, failed.stderr)

        # The finished pod: exit code, reason and termination message through ContainerStatus.
        def finished():
            obj = pod_json(node, job)
            return obj if obj and obj["status"].get("phase") == "Failed" else None
        done = wait_for(finished, timeout=180, interval=1, message=f"pod {job} Failed")
        terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
        assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (3, "Error", "job-done\n"), terminated
        assert cluster.kubectl("logs", job, "-n", "default").splitlines() == ["job-output"]
        # The kubelet removes a finished pod's cgroup tree (its container cgroups with it) once
        # the pod's volumes are gone, and removes the containers only later (container GC).
        pod_cgroup = (pathlib.Path("/sys/fs/cgroup/memory") / kubelet.cgroup_root.lstrip("/") / "kubepods" / "besteffort"
                      / f"pod{done['metadata']['uid']}")
        wait_for(lambda: not pod_cgroup.exists(), timeout=180, interval=1, message=f"the kubelet to remove {pod_cgroup}")

        # kubectl delete: the kubelet stops and removes everything; Swiftlet ends with nothing.
        # The finished pod's containers go last: the kubelet's container GC removes them after
        # it removed the pod's cgroup tree, container cgroups included.
        cluster.kubectl("delete", "pod", name, job, "-n", "default", "--wait=true", timeout=240)

        def empty():
            sandboxes, containers = v1alpha2_lists(node)
            return not sandboxes and not containers
        wait_for(empty, timeout=300, interval=2, message="Swiftlet without sandboxes and containers after delete")
        assert not list(swiftlet.rs.ListPodSandbox(node.cri.v1.ListPodSandboxRequest()).items)
        assert kubelet.alive(), f"kubelet exited with {kubelet.process.returncode}"
    except BaseException as error:
        raise AssertionError(f"{error}{diagnostics(node)}") from error
