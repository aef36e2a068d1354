"""Static pods on a standalone node (no API server): manifests in --pod-manifest-path run as
pods through the runtime with the kubelet's names, labels and log layout; changes and removals
are noticed and acted on; restart policy and crash-loop backoff apply; an agent restart adopts
the running pods instead of restarting them."""
import pathlib
import signal
import time

import pytest

from node_support import busybox_pod, make_node, wait_for  # noqa: F401 (fixture)


def running_containers(node, name):
    pods = node.runtime_pods().get(name, [])
    ready = [p for p in pods if p.state == node.runtime.cri.v1.SANDBOX_READY]
    if not ready:
        return []
    return [c for c in node.containers(ready[0].metadata.uid) if c.state == node.runtime.cri.v1.CONTAINER_RUNNING]


def test_a_static_pod_runs_with_the_kubelets_names_and_log_layout(make_node):
    node = make_node()
    node.write_manifest("web.yaml", busybox_pod("web", "echo hello from web; exec sleep 3600"))
    node.start()
    pod_name = f"web-{node.name}"
    containers = wait_for(lambda: running_containers(node, pod_name), message="the static pod running")
    sandbox = node.runtime_pods()[pod_name][0]
    assert sandbox.metadata.namespace == "default"
    assert sandbox.labels["io.kubernetes.pod.name"] == pod_name
    assert sandbox.labels["io.kubernetes.pod.uid"] == sandbox.metadata.uid
    assert containers[0].metadata.name == "main" and containers[0].metadata.attempt == 0
    log = node.pod_logs / f"default_{pod_name}_{sandbox.metadata.uid}" / "main" / "0.log"
    wait_for(lambda: log.exists() and "hello from web" in log.read_text(), message="the container's log")
    status = node.runtime.pod_status(sandbox.id)
    assert status.network.ip.startswith(node.runtime.subnet.rsplit(".", 1)[0])


def test_a_changed_manifest_replaces_the_pod_and_a_removed_one_stops_it(make_node):
    node = make_node()
    path = node.write_manifest("app.json", busybox_pod("app", "exec sleep 3600"))
    node.start()
    name = f"app-{node.name}"
    first = wait_for(lambda: running_containers(node, name), message="the first version running")[0]
    node.write_manifest("app.json", busybox_pod("app", "echo v2; exec sleep 3600"))
    def replaced():
        current = running_containers(node, name)
        return current if current and current[0].labels["io.kubernetes.pod.uid"] != first.labels["io.kubernetes.pod.uid"] else None
    wait_for(replaced, message="the new version running")
    wait_for(lambda: len(node.runtime_pods().get(name, [])) == 1, message="the old pod removed")
    path.unlink()
    wait_for(lambda: name not in node.runtime_pods(), message="the pod removed with its manifest")
    assert node.containers() == []


def test_restart_policy_and_crash_loop_backoff(make_node):
    node = make_node()
    node.write_manifest("crash.yaml", busybox_pod("crash", "echo crashing; exit 3"))
    node.write_manifest("once.yaml", busybox_pod("once", "echo done", restartPolicy="Never"))
    node.start()
    crash, once = f"crash-{node.name}", f"once-{node.name}"

    def attempts(name):
        pods = node.runtime_pods().get(name, [])
        return sorted(c.metadata.attempt for p in pods for c in node.containers(p.metadata.uid))
    # Always: restarted (attempt 1 after the first 10 s backoff), with the previous instance kept.
    wait_for(lambda: max(attempts(crash), default=-1) >= 1, timeout=60, message="a restart of the crashing container")
    # Backoff: no third attempt right after the second (10 s, then 20 s).
    assert max(attempts(crash)) < 3
    # Never: ran once, exited, never restarted; the sandbox stays for its status and logs.
    wait_for(lambda: attempts(once) == [0], message="the run-once pod's container")
    time.sleep(3)
    assert attempts(once) == [0]


def test_an_agent_restart_adopts_running_static_pods(make_node):
    node = make_node()
    node.write_manifest("keep.yaml", busybox_pod("keep", "exec sleep 3600"))
    node.start()
    name = f"keep-{node.name}"
    before = wait_for(lambda: running_containers(node, name), message="the pod running")[0]
    agent = node.runtime.agent
    assert agent.stop() == 0
    agent.start()
    node.runtime._stubs()
    time.sleep(8)  # past the node's first housekeeping (orphans are removed then)
    after = running_containers(node, name)
    assert [c.id for c in after] == [before.id]


def test_the_example_static_pods_run_offline(make_node):
    """What the README's first command runs: manifests/static-pods with the image
    hack/busybox-image.py makes from busybox-static, imported (no registry)."""
    import shutil
    import subprocess
    from conftest import SWIFTLET
    repo = pathlib.Path(__file__).resolve().parents[2]
    node = make_node()
    for manifest in (repo / "manifests" / "static-pods").iterdir():
        shutil.copy(manifest, node.manifests / manifest.name)
    archive = node.runtime.dir / "busybox-example.tar"
    subprocess.run(["python3", str(repo / "hack" / "busybox-image.py"), str(archive)], check=True, capture_output=True)
    subprocess.run([SWIFTLET, "images", "import", "--root", str(node.runtime.agent.root), str(archive)], check=True,
                   capture_output=True)
    node.start()
    page = wait_for(lambda: subprocess.run(node.runtime.wrap(["wget", "-qO-", "http://127.0.0.1:18080/"]), capture_output=True,
                                           text=True).stdout, timeout=60, message="hello-web serving")
    assert page.strip() == f"hello from a Swiftlet static pod on {node.name}"
    ticker = f"ticker-{node.name}"
    sandbox = wait_for(lambda: node.runtime_pods().get(ticker), message="the ticker pod")[0]
    ip = node.runtime.pod_status(sandbox.id).network.ip
    wait_for(lambda: f"pod {ip} on {node.name}" in node.pod_log("default", ticker, sandbox.metadata.uid, "ticker"),
             message="the ticker's log line")


def test_the_kubelet_api_serves_with_a_self_signed_certificate(make_node):
    """Without --tls-cert-file the kubelet API serves a self-signed pair made under <root>/pki
    (anonymous requests refused: the default is authentication required)."""
    import subprocess
    node = make_node()
    node.start()
    pki = node.runtime.agent.root / "pki"
    wait_for(lambda: (pki / "kubelet.crt").exists(), message="the self-signed pair")
    def curl(*args):
        return subprocess.run(node.runtime.wrap(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *args]),
                              capture_output=True, text=True).stdout
    assert wait_for(lambda: curl("--cacert", str(pki / "kubelet.crt"), "https://127.0.0.1:10250/pods") == "401",
                    message="TLS verified against the self-signed CA, anonymous refused")
    assert curl("http://127.0.0.1:10248/healthz") == "200"


HEALTH_SERVER = r"""
import sys, grpc, concurrent.futures
state = {"status": 1}  # SERVING
def check(request, context):
    return bytes([0x08, state["status"]])
handler = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
    "Check": grpc.unary_unary_rpc_method_handler(check)})
server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
server.add_generic_rpc_handlers((handler,))
server.add_insecure_port(f"127.0.0.1:{sys.argv[1]}")
server.start()
print("ready", flush=True)
for line in sys.stdin:
    state["status"] = int(line)
"""


def test_grpc_readiness_probe_of_a_static_pod(make_node):
    """gRPC probes (Kubernetes 1.23+: a 1.20 API server drops the field, a static pod keeps it):
    the gRPC health protocol on the pod's IP (here the host network's 127.0.0.1), its verdict in
    the pod's readiness as the kubelet API's /pods reports it."""
    import json
    import secrets
    import subprocess
    import sys
    node = make_node(extra_args=["--anonymous-auth", "true"])
    port = 19000 + secrets.randbelow(500)
    pod = busybox_pod("grpc", "exec sleep 3600", hostNetwork=True)
    pod["spec"]["containers"][0]["readinessProbe"] = {"grpc": {"port": port}, "periodSeconds": 1, "failureThreshold": 1}
    node.write_manifest("grpc.json", pod)
    node.start()
    server = subprocess.Popen(node.runtime.wrap([sys.executable, "-c", HEALTH_SERVER, str(port)]), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"

        def ready():
            text = subprocess.run(node.runtime.wrap(["curl", "-sk", "https://127.0.0.1:10250/pods"]), capture_output=True,
                                  text=True).stdout
            pods = {p["metadata"]["name"]: p for p in json.loads(text)["items"]}
            statuses = pods[f"grpc-{node.name}"].get("status", {}).get("containerStatuses") or [{}]
            return statuses[0].get("ready")
        wait_for(lambda: ready() is True, timeout=60, message="ready through the gRPC probe")
        server.stdin.write("2\n")  # NOT_SERVING
        server.stdin.flush()
        wait_for(lambda: ready() is False, timeout=30, message="not ready once the server is NOT_SERVING")
    finally:
        server.kill()
        server.wait()


def test_a_pod_with_host_users_false_gets_a_user_namespace_of_its_own(make_node):
    """The kubelet's hostUsers: false: 65536 ids from 65536 × n, recorded in the pod's
    directory, the pod's volumes idmapped (its root owns what the host's root made)."""
    import os
    node = make_node()
    spec = {"hostUsers": False, "volumes": [{"name": "scratch", "emptyDir": {}}]}
    pod = busybox_pod("mapped", "cat /proc/self/uid_map; echo made > /scratch/file; stat -c %u /scratch; exec sleep 3600", **spec)
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "scratch", "mountPath": "/scratch"}]
    node.write_manifest("mapped.yaml", pod)
    node.write_manifest("plain.yaml", busybox_pod("plain", "cat /proc/self/uid_map; exec sleep 3600"))
    node.start()
    mapped, plain = f"mapped-{node.name}", f"plain-{node.name}"
    wait_for(lambda: running_containers(node, mapped) and running_containers(node, plain), message="both pods running")
    uid = node.runtime_pods()[mapped][0].metadata.uid
    log = node.pod_logs / f"default_{mapped}_{uid}" / "main" / "0.log"
    wait_for(lambda: log.exists() and "\n" in log.read_text() and log.read_text().count("\n") >= 2, message="the mapped pod's output")
    lines = [line.split(" ", 3)[3] for line in log.read_text().splitlines()]
    assert lines[0].split() == ["0", "65536", "65536"], lines
    assert lines[1] == "0", "the emptyDir (the host's root's) is the pod's root's"
    record = node.runtime.agent.root / "pods" / uid / "userns"
    assert '"hostId":65536' in record.read_text()
    scratch = node.runtime.agent.root / "pods" / uid / "volumes" / "kubernetes.io~empty-dir" / "scratch" / "file"
    assert os.stat(scratch).st_uid == 0 and scratch.read_text() == "made\n"
    plain_uid = node.runtime_pods()[plain][0].metadata.uid
    plain_log = node.pod_logs / f"default_{plain}_{plain_uid}" / "main" / "0.log"
    wait_for(lambda: plain_log.exists() and plain_log.read_text(), message="the plain pod's output")
    assert plain_log.read_text().split(" ", 3)[3].split() == ["0", "0", "4294967295"], "hostUsers unset: the host's"
