"""Swiftlet as a Node of a real Kubernetes 1.20 control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler from hack/local-up-cluster.sh). The control plane, the
agent, its kubelet API and its pods share one network namespace made for the module, so every
listener stays on that namespace's loopback and bridge. Driven with kubectl 1.32 as an operator
would: the node registers and is Ready with the machine's capacity, renews its Lease, runs pods
bound to it (status, IPs, logs and exec through the API server), restarts containers whose
liveness probe fails (with backoff), honours grace periods on delete, shows static pods as mirror
pods, rides out an API server outage and its own restart without re-creating pods."""
import json
import os
import re
import secrets
import signal
import subprocess
import time

import pytest

import runtimes
from cluster import Cluster
from node_support import Node, busybox_pod, wait_for


@pytest.fixture(scope="module")
def member(cri, test_image_archives):
    runtime = runtimes.make_runtime("swiftlet", cri, test_image_archives)
    cluster = None
    try:
        runtime._prepare_network()
        runtime._prepare_network = lambda: None  # boot() would make the netns again
        name = f"swl-node-{secrets.token_hex(3)}"
        cluster = Cluster(node_name=name, netns=runtime.netns).up()
        cert, key = serving_certificate(cluster, runtime.dir, name)
        node = Node(runtime, name=name, cluster=cluster, extra_args=[
            "--tls-cert-file", cert, "--tls-private-key-file", key, "--client-ca-file", cluster.ca_cert,
            "--authentication-token-webhook", "true", "--authorization-mode", "Webhook"])
        node.write_manifest("static-web.yaml", busybox_pod("static-web", "exec sleep 3600"))
        runtime.boot()
        node.kubectl = cluster.kubectl
        node.run_kubectl = cluster.run_kubectl
        yield node
    finally:
        try:
            if cluster is not None and runtime.agent.process is not None and runtime.agent.process.poll() is None:
                cluster.run_kubectl("delete", "pods", "--all", "--grace-period=0", "--force", timeout=60)
        finally:
            runtime.cleanup()
            if cluster is not None:
                cluster.down()


def serving_certificate(cluster, directory, name):
    """A kubelet serving certificate for 127.0.0.1 signed by the cluster's CA."""
    key, csr, cert = (str(directory / f"kubelet.{ext}") for ext in ("key", "csr", "crt"))
    ext = directory / "kubelet.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", f"/CN=system:node:{name}/O=system:nodes"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", cluster.ca_cert, "-CAkey", cluster.ca_key, "-CAcreateserial",
                    "-out", cert, "-days", "2", "-extfile", str(ext)], check=True, capture_output=True)
    return cert, key


def get(member, *args):
    return json.loads(member.kubectl("get", *args, "-o", "json"))


def condition(obj, kind):
    return next((c for c in obj["status"].get("conditions", []) if c["type"] == kind), {})


def pod_manifest(member, name, command, **spec):
    pod = busybox_pod(name, command, **spec)
    pod["spec"]["nodeName"] = member.name
    return pod


def create(member, pod):
    member.kubectl("create", "-f", "-", input=json.dumps(pod))


def wait_running(member, name, timeout=90):
    return wait_for(lambda: (lambda p: p if p["status"].get("phase") == "Running" and p["status"].get("podIP") else None)(
        get(member, "pod", name)), timeout=timeout, message=f"pod {name} Running with an IP")


def test_the_node_registers_ready_with_the_machines_capacity(member):
    node = wait_for(lambda: (lambda n: n if condition(n, "Ready").get("status") == "True" else None)(get(member, "node", member.name)),
                    timeout=20, message="the node Ready")
    capacity = node["status"]["capacity"]
    assert capacity["cpu"] == str(os.cpu_count())
    mem_total_ki = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    assert capacity["memory"] == f"{mem_total_ki}Ki"
    assert capacity["pods"] == "110"
    allocatable = node["status"]["allocatable"]
    # allocatable = capacity - the default hard eviction threshold (memory.available<100Mi).
    assert allocatable["memory"] == f"{mem_total_ki - 100 * 1024}Ki"
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("swiftlet://")
    assert info["machineID"] and info["bootID"] and info["kernelVersion"] == os.uname().release
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] and node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
    for kind, reason in (("MemoryPressure", "KubeletHasSufficientMemory"), ("DiskPressure", "KubeletHasNoDiskPressure"),
                         ("PIDPressure", "KubeletHasSufficientPID")):
        assert condition(node, kind)["reason"] == reason


def test_the_lease_is_renewed(member):
    lease = wait_for(lambda: get(member, "lease", "-n", "kube-node-lease", member.name), message="the node lease")
    assert lease["spec"]["holderIdentity"] == member.name and lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"
    first = lease["spec"]["renewTime"]
    wait_for(lambda: get(member, "lease", "-n", "kube-node-lease", member.name)["spec"]["renewTime"] != first,
             timeout=30, message="a renewal")


def test_a_bound_pod_runs_and_reports_its_status(member):
    create(member, pod_manifest(member, "hello", "echo hello from the pod; exec sleep 3600"))
    pod = wait_running(member, "hello")
    assert pod["status"]["podIP"].startswith(member.runtime.subnet.rsplit(".", 1)[0])
    assert pod["status"]["hostIP"] == "127.0.0.1"
    assert pod["status"]["qosClass"] == "BestEffort"
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] and status["restartCount"] == 0 and "running" in status["state"]
    assert status["containerID"].startswith("swiftlet://") and status["imageID"]
    assert condition(pod, "Ready")["status"] == "True" and condition(pod, "Initialized")["status"] == "True"
    # Logs and exec through the API server, which calls the node's kubelet API.
    assert "hello from the pod" in member.kubectl("logs", "hello")
    assert member.kubectl("logs", "hello", "--timestamps").split(" ", 1)[0].startswith("20")
    assert member.kubectl("exec", "hello", "--", "sh", "-c", "echo exec says $((6*7))").strip() == "exec says 42"
    result = member.run_kubectl("exec", "hello", "--", "sh", "-c", "exit 3")
    assert result.returncode == 3
    summary = json.loads(member.kubectl("get", "--raw", f"/api/v1/nodes/{member.name}/proxy/stats/summary"))
    assert summary["node"]["nodeName"] == member.name
    assert "hello" in [p["podRef"]["name"] for p in summary["pods"]]
    pods = json.loads(member.kubectl("get", "--raw", f"/api/v1/nodes/{member.name}/proxy/pods"))
    assert "hello" in [p["metadata"]["name"] for p in pods["items"]]


def test_the_kubelet_api_authenticates_and_authorizes(member):
    # A service account's token is authenticated (TokenReview) but may not read nodes/proxy.
    member.kubectl("create", "serviceaccount", "reader")
    secret = wait_for(lambda: get(member, "serviceaccount", "reader").get("secrets"), message="the token secret")[0]["name"]
    import base64
    token = base64.b64decode(get(member, "secret", secret)["data"]["token"]).decode()
    def curl(*headers):
        return subprocess.run(member.cluster.wrap(["curl", "-sk", "-o", "-", "-w", "\n%{http_code}", *headers,
                                                   "https://127.0.0.1:10250/pods"]), capture_output=True, text=True).stdout
    assert curl().endswith("401")
    denied = curl("-H", f"Authorization: Bearer {token}")
    assert denied.endswith("403") and "user=system:serviceaccount:default:reader" in denied and "subresource=proxy" in denied
    assert curl("-H", "Authorization: Bearer not-a-token").endswith("401")
    # The healthz endpoint is plain HTTP on loopback.
    assert subprocess.run(member.cluster.wrap(["curl", "-s", "http://127.0.0.1:10248/healthz"]), capture_output=True,
                          text=True).stdout == "ok"


def test_init_containers_run_first_and_env_comes_from_the_downward_api(member):
    pod = pod_manifest(member, "with-init", "cat /work/from-init; echo name=$MY_NAME ns=$MY_NS ip=$MY_IP; exec sleep 3600")
    pod["spec"]["volumes"] = [{"name": "work", "emptyDir": {}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "work", "mountPath": "/work"}]
    pod["spec"]["containers"][0]["env"] = [
        {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    pod["spec"]["initContainers"] = [{"name": "init", "image": runtimes.BUSYBOX, "imagePullPolicy": "Never",
                                      "command": ["sh", "-c", "echo written-by-init > /work/from-init"],
                                      "volumeMounts": [{"name": "work", "mountPath": "/work"}]}]
    create(member, pod)
    running = wait_running(member, "with-init")
    init = running["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["exitCode"] == 0 and init["state"]["terminated"]["reason"] == "Completed"
    ip = running["status"]["podIP"]
    log = wait_for(lambda: (lambda text: text if "name=" in text else None)(
        member.pod_log("default", "with-init", running["metadata"]["uid"], "main")), message="the container's output")
    assert "written-by-init" in log and f"name=with-init ns=default ip={ip}" in log


def test_a_failing_liveness_probe_restarts_the_container_with_backoff(member):
    pod = pod_manifest(member, "unhealthy", "touch /tmp/healthy; sleep 4; rm /tmp/healthy; exec sleep 3600")
    pod["spec"]["containers"][0]["livenessProbe"] = {"exec": {"command": ["cat", "/tmp/healthy"]},
                                                     "periodSeconds": 1, "failureThreshold": 1}
    create(member, pod)
    wait_running(member, "unhealthy")
    restarted = wait_for(lambda: (lambda p: p if p["status"]["containerStatuses"][0]["restartCount"] >= 1 else None)(
        get(member, "pod", "unhealthy")), timeout=60, message="a restart after the probe failed")
    last = restarted["status"]["containerStatuses"][0].get("lastState", {}).get("terminated", {})
    assert last.get("exitCode") == 137
    assert member.run_kubectl("logs", "unhealthy", "--previous").returncode == 0
    events = json.loads(member.kubectl("get", "events", "--field-selector", "involvedObject.name=unhealthy", "-o", "json"))["items"]
    reasons = {e["reason"] for e in events}
    assert {"Pulled", "Created", "Started", "Unhealthy", "Killing"} <= reasons, reasons
    unhealthy = next(e for e in events if e["reason"] == "Unhealthy")
    assert unhealthy["type"] == "Warning" and unhealthy["message"].startswith("Liveness probe failed")
    assert unhealthy["source"] == {"component": "kubelet", "host": member.name}
    assert unhealthy["involvedObject"]["fieldPath"] == "spec.containers{main}"
    # The second restart waits for the crash-loop backoff (10 s after the first restart), in
    # which the pod reports CrashLoopBackOff.
    waiting = wait_for(lambda: (lambda s: s if s["restartCount"] >= 2 or
                                "waiting" in s["state"] and s["state"]["waiting"]["reason"] == "CrashLoopBackOff" else None)(
        get(member, "pod", "unhealthy")["status"]["containerStatuses"][0]), timeout=60, message="backoff or a second restart")
    assert waiting


def test_delete_honours_the_grace_period_then_the_pod_is_gone(member):
    script = "trap 'echo got TERM; sleep 2; echo bye; exit 0' TERM; echo started; while true; do sleep 0.2; done"
    pod = pod_manifest(member, "graceful", script, terminationGracePeriodSeconds=20)
    create(member, pod)
    running = wait_running(member, "graceful")
    uid = running["metadata"]["uid"]
    wait_for(lambda: "started" in member.pod_log("default", "graceful", uid, "main"), message="the trap installed")
    member.kubectl("delete", "pod", "graceful", "--wait=false")
    wait_for(lambda: member.run_kubectl("get", "pod", "graceful").returncode != 0, timeout=60, message="the pod gone from the API")
    log = member.pod_log("default", "graceful", uid, "main")
    assert "got TERM" in log and "bye" in log  # stopped by SIGTERM within the grace period, not killed
    wait_for(lambda: not [p for p in member.runtime_pods().get("graceful", [])], message="the sandbox removed")


def test_a_static_pod_has_a_mirror_pod(member):
    name = f"static-web-{member.name}"
    mirror = wait_for(lambda: get(member, "pod", name), message="the mirror pod")
    annotations = mirror["metadata"]["annotations"]
    assert annotations["kubernetes.io/config.source"] == "file"
    assert annotations["kubernetes.io/config.mirror"] == annotations["kubernetes.io/config.hash"]
    assert mirror["metadata"]["ownerReferences"][0]["kind"] == "Node"
    wait_for(lambda: get(member, "pod", name)["status"].get("phase") == "Running", message="the mirror pod's status Running")
    # Deleting a mirror pod does not stop the static pod; the mirror comes back.
    member.kubectl("delete", "pod", name, "--wait=false")
    wait_for(lambda: get(member, "pod", name)["metadata"]["uid"] != mirror["metadata"]["uid"], timeout=60,
             message="the mirror pod made again")
    wait_for(lambda: get(member, "pod", name)["status"].get("phase") == "Running", message="the new mirror pod's status")


def test_pods_survive_an_api_server_outage_and_an_agent_restart(member):
    create(member, pod_manifest(member, "steady", "exec sleep 3600"))
    before = wait_running(member, "steady")["status"]["containerStatuses"][0]["containerID"]
    apiserver = member.cluster.pids()["kube-apiserver"]
    os.kill(apiserver, signal.SIGSTOP)  # unreachable, as a partition would make it
    try:
        time.sleep(60)
        ids = [c.id for c in member.containers() if c.state == member.runtime.cri.v1.CONTAINER_RUNNING]
        assert before.removeprefix("swiftlet://") in ids
    finally:
        os.kill(apiserver, signal.SIGCONT)
    wait_for(lambda: condition(get(member, "node", member.name), "Ready").get("status") == "True", timeout=60,
             message="the node Ready again")
    assert get(member, "pod", "steady")["status"]["containerStatuses"][0]["containerID"] == before
    # An agent restart adopts the pod: same container, no restart.
    agent = member.runtime.agent
    assert agent.stop() == 0
    agent.start()
    member.runtime._stubs()
    time.sleep(15)
    status = get(member, "pod", "steady")["status"]["containerStatuses"][0]
    assert status["containerID"] == before and status["restartCount"] == 0
    assert before.removeprefix("swiftlet://") in [c.id for c in member.containers()]


def test_volumes_env_sources_and_the_service_account_token(member):
    member.kubectl("create", "configmap", "app-config", "--from-literal=greeting=hi-from-configmap", "--from-literal=mode=test")
    member.kubectl("create", "secret", "generic", "app-secret", "--from-literal=password=s3cr3t")
    pod = pod_manifest(member, "volumes", "exec sleep 3600")
    container = pod["spec"]["containers"][0]
    pod["spec"]["volumes"] = [
        {"name": "config", "configMap": {"name": "app-config"}},
        {"name": "secret", "secret": {"secretName": "app-secret", "defaultMode": 0o400}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "scratch", "emptyDir": {"medium": "Memory"}},
    ]
    pod["metadata"]["labels"] = {"tier": "backend"}
    container["volumeMounts"] = [{"name": "config", "mountPath": "/etc/config"}, {"name": "secret", "mountPath": "/etc/secret"},
                                 {"name": "info", "mountPath": "/etc/info"}, {"name": "scratch", "mountPath": "/scratch"}]
    container["env"] = [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "greeting"}}},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}}},
                        {"name": "COMBINED", "value": "$(GREETING)/$(PASSWORD)"}]
    container["envFrom"] = [{"prefix": "CFG_", "configMapRef": {"name": "app-config"}}]
    container["resources"] = {"limits": {"cpu": "500m", "memory": "64Mi"}}
    create(member, pod)
    running = wait_running(member, "volumes")
    assert running["status"]["qosClass"] == "Guaranteed"

    def sh(script):
        return member.kubectl("exec", "volumes", "--", "sh", "-c", script).strip()
    assert sh("cat /etc/config/greeting") == "hi-from-configmap"
    assert sh("cat /etc/secret/password; echo; stat -L -c %a /etc/secret/password") == "s3cr3t\n400"
    assert sh("cat /etc/info/labels") == 'tier="backend"'
    assert sh("grep ' /scratch ' /proc/mounts | cut -d' ' -f3") == "tmpfs"
    assert sh("echo $GREETING $PASSWORD $COMBINED $CFG_mode") == "hi-from-configmap s3cr3t hi-from-configmap/s3cr3t test"
    assert sh("echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT").endswith(":443")
    # Limits reach the container's cgroups.
    assert sh("cat /sys/fs/cgroup/memory/memory.limit_in_bytes") == str(64 * 1024 * 1024)
    assert sh("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us") == "50000\n100000"
    # The service account token the admission plugin mounted is a token the API server accepts.
    token = sh("cat /var/run/secrets/kubernetes.io/serviceaccount/token")
    review = json.loads(member.kubectl("create", "-o", "json", "-f", "-", input=json.dumps({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})))
    assert review["status"]["authenticated"] and review["status"]["user"]["username"] == "system:serviceaccount:default:default"
    # A config map change reaches the volume (refreshed within a minute, atomically).
    member.kubectl("patch", "configmap", "app-config", "-p", json.dumps({"data": {"greeting": "changed"}}))
    wait_for(lambda: sh("cat /etc/config/greeting") == "changed", timeout=120, interval=2, message="the config map update")


def test_readiness_gates_the_ready_condition(member):
    pod = pod_manifest(member, "not-ready-yet", "exec sleep 3600")
    pod["spec"]["containers"][0]["readinessProbe"] = {"exec": {"command": ["test", "-e", "/tmp/ready"]}, "periodSeconds": 1}
    create(member, pod)
    running = wait_running(member, "not-ready-yet")
    assert condition(running, "Ready")["status"] == "False"
    assert condition(running, "Ready")["reason"] == "ContainersNotReady"
    member.kubectl("exec", "not-ready-yet", "--", "touch", "/tmp/ready")
    wait_for(lambda: condition(get(member, "pod", "not-ready-yet"), "Ready")["status"] == "True", timeout=30,
             message="Ready once the probe passes")


def test_pods_the_node_cannot_take_are_rejected(member):
    too_big = pod_manifest(member, "too-big", "exec sleep 3600")
    too_big["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "64"}}
    create(member, too_big)
    rejected = wait_for(lambda: (lambda p: p if p["status"].get("phase") == "Failed" else None)(get(member, "pod", "too-big")),
                        message="the pod rejected")
    assert rejected["status"]["reason"] == "OutOfcpu"
    assert re.match(r"Pod Node didn't have enough resource: cpu, requested: 64000, used: \d+, capacity: \d+$", rejected["status"]["message"])
    assert "too-big" not in member.runtime_pods()
    member.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                                          "metadata": {"name": "sandboxed"}, "handler": "kata"}))
    create(member, pod_manifest(member, "other-runtime", "exec sleep 3600", runtimeClassName="sandboxed"))
    rejected = wait_for(lambda: (lambda p: p if p["status"].get("phase") == "Failed" else None)(get(member, "pod", "other-runtime")),
                        message="the pod rejected")
    assert "sandboxed" in rejected["status"]["message"]


def test_orphans_are_cleaned_up_at_start(member):
    create(member, pod_manifest(member, "orphan", "exec sleep 3600"))
    uid = wait_running(member, "orphan")["metadata"]["uid"]
    agent = member.runtime.agent
    assert agent.stop() == 0
    member.kubectl("delete", "pod", "orphan", "--grace-period=0", "--force")
    agent.start()
    member.runtime._stubs()
    wait_for(lambda: "orphan" not in member.runtime_pods(), timeout=60, message="the orphaned pod removed")
    assert member.containers(uid) == []


def test_port_forward_through_the_api_server(member):
    pod = pod_manifest(member, "web", "mkdir -p /www && echo forwarded-page > /www/index.html && exec httpd -f -p 8080 -h /www")
    create(member, pod)
    wait_running(member, "web")
    local = 18000 + secrets.randbelow(1000)
    forward = subprocess.Popen(member.cluster.wrap(["kubectl", "--kubeconfig", member.cluster.admin_kubeconfig, "port-forward",
                                                    "pod/web", f"{local}:8080"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        page = wait_for(lambda: subprocess.run(member.cluster.wrap(["wget", "-qO-", f"http://127.0.0.1:{local}/"]),
                                               capture_output=True, text=True).stdout, timeout=30, message="the forwarded page")
        assert page.strip() == "forwarded-page"
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_http_and_tcp_probes_and_the_prestop_hook(member):
    shared = member.runtime.dir / "prestop"
    shared.mkdir()
    pod = pod_manifest(member, "hooked", "mkdir -p /www && echo ok > /www/healthz && exec httpd -f -p 8080 -h /www",
                       terminationGracePeriodSeconds=30)
    container = pod["spec"]["containers"][0]
    container["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
    container["livenessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    container["lifecycle"] = {"preStop": {"exec": {"command": ["sh", "-c", "echo prestop-ran > /shared/marker"]}},
                              "postStart": {"exec": {"command": ["sh", "-c", "echo poststart-ran > /shared/started"]}}}
    container["volumeMounts"] = [{"name": "shared", "mountPath": "/shared"}]
    pod["spec"]["volumes"] = [{"name": "shared", "hostPath": {"path": str(shared), "type": "Directory"}}]
    create(member, pod)
    wait_running(member, "hooked")
    wait_for(lambda: condition(get(member, "pod", "hooked"), "Ready")["status"] == "True", timeout=30,
             message="Ready through the HTTP probe")
    assert (shared / "started").read_text() == "poststart-ran\n"
    time.sleep(3)
    assert get(member, "pod", "hooked")["status"]["containerStatuses"][0]["restartCount"] == 0  # the TCP probe passes
    member.kubectl("delete", "pod", "hooked", "--wait=false")
    wait_for(lambda: member.run_kubectl("get", "pod", "hooked").returncode != 0, timeout=60, message="the pod gone")
    assert (shared / "marker").read_text() == "prestop-ran\n"


def test_a_bootstrapped_node_reports_the_cgroup_it_runs_in_as_capacity(cri, test_image_archives):
    """A node with only a bootstrap token (--bootstrap-kubeconfig) gets its client certificate
    through a CSR the controller manager approves, writes --kubeconfig, and registers. Started
    inside a cgroup with 1.5 CPUs and 3 GiB (as inside a Mesos or Kubernetes container), it
    reports that share as its capacity."""
    runtime = runtimes.make_runtime("swiftlet", cri, test_image_archives)
    cluster = None
    group = f"swl-e2e-limit-{secrets.token_hex(3)}"
    try:
        runtime._prepare_network()
        runtime._prepare_network = lambda: None
        name = f"swl-small-{secrets.token_hex(3)}"
        cluster = Cluster(node_name=name, netns=runtime.netns).up()
        for controller in ("cpu", "memory"):
            os.makedirs(f"/sys/fs/cgroup/{controller}/{group}", exist_ok=True)
        with open(f"/sys/fs/cgroup/cpu/{group}/cpu.cfs_quota_us", "w") as f:
            f.write("150000")
        with open(f"/sys/fs/cgroup/memory/{group}/memory.limit_in_bytes", "w") as f:
            f.write(str(3 << 30))
        kubeconfig = runtime.dir / "kubelet.kubeconfig"
        node = Node(runtime, name=name, extra_args=["--bootstrap-kubeconfig", cluster.env["BOOTSTRAP_KUBECONFIG"],
                                                    "--kubeconfig", str(kubeconfig), "--rotate-certificates", "true"])
        enter = (f"echo $$ > /sys/fs/cgroup/cpu/{group}/cgroup.procs && "
                 f"echo $$ > /sys/fs/cgroup/memory/{group}/cgroup.procs && exec \"$@\"")
        runtime.agent.args = ["sh", "-c", enter, "sh", *runtime.agent.args]
        runtime.boot()
        registered = wait_for(lambda: json.loads(cluster.kubectl("get", "node", name, "-o", "json")), timeout=30,
                              message="the node registered")
        assert registered["status"]["capacity"]["cpu"] == "1500m"
        assert registered["status"]["capacity"]["memory"] == "3Gi"
        assert registered["status"]["allocatable"]["memory"] == f"{3 * 1024 - 100}Mi"
        # The certificate came through a CSR made with the bootstrap token, auto-approved.
        current = runtime.agent.root / "pki" / "kubelet-client-current.pem"
        assert current.is_symlink() and kubeconfig.exists() and str(current) in kubeconfig.read_text()
        csrs = json.loads(cluster.kubectl("get", "csr", "-o", "json"))["items"]
        mine = [c for c in csrs if c["spec"]["username"].startswith("system:bootstrap:")]
        assert mine and any(cond["type"] == "Approved" for cond in mine[0]["status"]["conditions"])
    finally:
        runtime.cleanup()
        if cluster is not None:
            cluster.down()
        for controller in ("cpu", "memory"):
            try:
                os.rmdir(f"/sys/fs/cgroup/{controller}/{group}")
            except OSError:
                pass


def test_run_as_non_root_fs_group_and_sub_path_expr(member):
    refused = pod_manifest(member, "as-root", "exec sleep 3600")
    refused["spec"]["securityContext"] = {"runAsNonRoot": True}
    create(member, refused)
    waiting = wait_for(lambda: (lambda s: s if s.get("state", {}).get("waiting", {}).get("reason") == "CreateContainerConfigError" else None)(
        (get(member, "pod", "as-root")["status"].get("containerStatuses") or [{}])[0]), message="the container refused")
    assert "container has runAsNonRoot and image will run as root" in waiting["state"]["waiting"]["message"]

    pod = pod_manifest(member, "grouped", "id -G; ls -ldn /data /data/$(POD_NAME_DIR); exec sleep 3600")
    pod["spec"]["securityContext"] = {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 2345}
    pod["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    container = pod["spec"]["containers"][0]
    container["command"] = ["sh", "-c", "id -G; touch /data/written && ls -ln /data; exec sleep 3600"]
    container["env"] = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    container["volumeMounts"] = [{"name": "data", "mountPath": "/data", "subPathExpr": "$(POD_NAME)"}]
    create(member, pod)
    running = wait_running(member, "grouped")
    log = wait_for(lambda: (lambda t: t if "written" in t else None)(
        member.pod_log("default", "grouped", running["metadata"]["uid"], "main")), message="the container's output")
    assert "2345" in log.splitlines()[0].split()  # the fsGroup is a supplemental group
    assert " 1000 " in log and " 2345 " in log  # the file written by uid 1000 in a group-owned volume
    volume = member.runtime.agent.root / "pods" / running["metadata"]["uid"] / "volumes" / "kubernetes.io~empty-dir" / "data"
    assert (volume / "grouped" / "written").exists()  # the subPathExpr named the directory
    assert os.stat(volume).st_gid == 2345

