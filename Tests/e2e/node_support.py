"""Shared set-up of the node tests: a Swiftlet runtime (its own netns, bridge CNI network, test
images, cgroups root) started as a node — standalone with a static pod directory, or joined to a
real control plane running in the same network namespace (so the API server, the kubelet API on
10250 and the pods' network all stay inside it)."""
import json
import pathlib
import secrets
import time

import runtimes


class Node:
    """A `swiftlet run` node. `cluster` (a cluster.Cluster started in `runtime.netns`) makes it a
    cluster member; `manifests` is its static pod directory (made here)."""

    def __init__(self, runtime, name=None, cluster=None, extra_args=()):
        self.runtime = runtime
        self.name = name or f"node-{secrets.token_hex(3)}"
        self.cluster = cluster
        self.kubectl = cluster.kubectl if cluster else None
        self.run_kubectl = cluster.run_kubectl if cluster else None
        self.manifests = runtime.dir / "manifests"
        self.manifests.mkdir(exist_ok=True)
        self.pod_logs = runtime.dir / "pod-logs"
        args = ["--pod-manifest-path", str(self.manifests), "--hostname-override", self.name, "--node-ip", "127.0.0.1",
                "--pod-logs-dir", str(self.pod_logs)]
        if cluster is not None:
            args += ["--kubeconfig", cluster.node_kubeconfig]
        runtime.agent.args += [*args, *extra_args]

    def pod_log(self, namespace, name, uid, container, attempt=None):
        """The text of a container's CRI log file (the newest attempt unless one is given)."""
        directory = self.pod_logs / f"{namespace}_{name}_{uid}" / container
        if not directory.exists():
            return ""
        files = sorted(directory.glob("*.log"), key=lambda p: int(p.stem))
        if attempt is not None:
            files = [directory / f"{attempt}.log"]
        if not files or not files[-1].exists():
            return ""
        return "\n".join(record[3] for record in runtimes.parse_cri_log(files[-1]))

    def write_manifest(self, name, pod):
        path = self.manifests / name
        tmp = self.manifests / f".{name}.tmp"
        tmp.write_text(json.dumps(pod) if name.endswith(".json") else _yaml(pod))
        tmp.rename(path)
        return path

    def runtime_pods(self):
        """{pod name: [sandbox]} of the node's sandboxes, through the CRI."""
        v1 = self.runtime.cri.v1
        pods = {}
        for sandbox in self.runtime.rs.ListPodSandbox(v1.ListPodSandboxRequest()).items:
            pods.setdefault(sandbox.metadata.name, []).append(sandbox)
        return pods

    def containers(self, pod_uid=None):
        v1 = self.runtime.cri.v1
        selector = {"io.kubernetes.pod.uid": pod_uid} if pod_uid else {}
        return list(self.runtime.rs.ListContainers(v1.ListContainersRequest(
            filter=v1.ContainerFilter(label_selector=selector))).containers)


def _yaml(value, indent=0):
    """A small YAML writer for manifests (maps, lists, scalars), so the tests also feed YAML."""
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines.append(_yaml(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {json.dumps(item)}")
        return "\n".join(lines)
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, dict) and item:
                text = _yaml(item, indent + 1).lstrip()
                lines.append(f"{pad}- {text}")
            else:
                lines.append(f"{pad}- {json.dumps(item)}")
        return "\n".join(lines)
    return pad + json.dumps(value)


def wait_for(condition, timeout=60, interval=0.2, message="condition"):
    """Polls until `condition()` returns something truthy (returned); fails after `timeout`."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = condition()
            if last:
                return last
        except Exception as error:  # the API or the agent may be restarting
            last = error
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message} (last: {last!r})")


def busybox_pod(name, command, namespace="default", **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "main", "image": runtimes.BUSYBOX, "imagePullPolicy": "Never",
                                     "command": ["sh", "-c", command]}], **spec}}


import pytest  # noqa: E402


@pytest.fixture
def make_node(cri, test_image_archives):
    """Starts nodes for a test (`make_node(cluster=None, extra_args=())`); each is torn down after
    it (pods, netns, cgroups, dirs), even on failure."""
    made = []

    def make(cluster=None, name=None, extra_args=(), runtime=None):
        if runtime is None:
            runtime = runtimes.make_runtime("swiftlet", cri, test_image_archives)
            made.append(runtime)
        node = Node(runtime, name=name, cluster=cluster, extra_args=extra_args)
        node.start = lambda: runtime.boot()
        return node

    yield make
    for runtime in made:
        runtime.cleanup()
