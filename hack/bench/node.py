#!/usr/bin/env python3
"""Node benchmark (driven by hack/bench-node.sh): Swiftlet as a Node beside the real kubelet 1.20
+ containerd 1.6, each joined to its own fresh Kubernetes 1.20 control plane
(hack/local-up-cluster.sh) inside a network namespace of its own, one after the other, with the
same pod spec and the same offline busybox image. Python's standard library only.

  node.py images DIR                       the busybox pod image (hack/busybox-image.py, OCI) and
                                           containerd's pause image (hack/bench/pods.py's)
  node.py tunables hold|release --token T [--pid P]
                                           save (first holder) / restore (last holder) the kernel
                                           tunables kubelet 1.20 rewrites; the same state file and
                                           protocol as Tests/e2e/test_kubelet_compat.py, so a
                                           concurrent e2e run and this benchmark restore once
  node.py measure --side S ...             (inside the side's netns) one JSON object of results
  node.py report RESULTS.jsonl [--json F]  the table, Swiftlet beside kubelet+containerd, ratios
  node.py cleanup --work DIR ...           remove what a failed run left on the machine

Measured on each side, against the API server (client side, this process, inside the netns):
  start    a pod bound to the node (spec.nodeName, no scheduler) POSTed, until a watch already
           open on the namespace delivers it with phase Running; one pod at a time (each waited
           for) over --start-samples pods after one untimed warm-up pod; then all deleted.
  burst    --pods pods POSTed back to back, until all are Running (informational);
  steady   with those pods running, after --settle seconds: the agent's CPU (utime+stime deltas
           from /proc/<pid>/stat, over --steady-seconds) and memory (Pss and Rss from
           /proc/<pid>/smaps_rollup, sampled every 5 s, averaged), summed over the agent's
           processes: kubelet + containerd + every containerd-shim-runc-v2 of this containerd;
           `swiftlet run` + every swiftlet-monitor it started (one per container). containerd's
           pause processes are reported beside, not in the sum;
  idle     the same at 0 pods (after the warm-up pod is gone), over 15 s;
  delete   all pods of a phase DELETEd at once, until the watch saw every one of them go.
"""
import argparse
import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import pathlib
import queue
import signal
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

REPO = pathlib.Path(__file__).resolve().parents[2]
IMAGE = "swiftlet.bench/busybox:node"
PAUSE_ARGV = ["/bin/sleep", "2147483647"]  # hack/bench/pods.py's pause image
TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# Images

def build_images(directory):
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(REPO / "hack/busybox-image.py"), str(directory / "busybox.oci.tar"),
                    "--name", IMAGE], check=True, capture_output=True)
    sys.path.insert(0, str(REPO / "hack/bench"))
    import pods  # noqa: E402  (its pause image: busybox-static `sleep` as PID 1)
    (directory / "pods").mkdir()
    pods.build_images(directory / "pods")
    (directory / "pods/pause.tar").rename(directory / "pause.tar")
    (directory / "pods/busybox.tar").unlink()
    (directory / "pods").rmdir()
    print(json.dumps({"image": IMAGE, "pause": pods.PAUSE}))


# ---------------------------------------------------------------------------------------------
# Kernel tunables (kubelet 1.20's setupKernelTunables), shared with Tests/e2e/test_kubelet_compat.py

KERNEL_TUNABLES = ["vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
                   "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"]
TUNABLES_FILE = pathlib.Path("/run/swiftlet-e2e-kubelet-tunables.json")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@contextlib.contextmanager
def _tunables_lock():
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


def tunables(args):
    with _tunables_lock() as box:
        if args.action == "hold":
            if box[0] is None or not box[0]["holders"]:
                values = box[0]["values"] if box[0] else {n: pathlib.Path("/proc/sys", n).read_text() for n in KERNEL_TUNABLES}
                box[0] = {"values": values, "holders": {}}
            box[0]["holders"][args.token] = args.pid
        elif box[0] is not None:
            box[0]["holders"].pop(args.token, None)
            if not box[0]["holders"]:
                for name, value in box[0]["values"].items():
                    path = pathlib.Path("/proc/sys", name)
                    if path.read_text() != value:
                        path.write_text(value)
                box[0] = None


# ---------------------------------------------------------------------------------------------
# Processes

def cmdline(pid):
    try:
        return [a.decode(errors="replace") for a in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]]
    except OSError:
        return []


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def all_pids():
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def agent_processes(daemons, helper, marker):
    """{role: [pids]}: each daemon by name; `helpers` (argv[0] named `helper`, `marker` in an
    argument: containerd's shims of this containerd, Swiftlet's monitors from its bin dir);
    `pause` (containerd's pause processes: children of those shims running PAUSE_ARGV)."""
    roles = {name: [pid] for name, pid in daemons.items()}
    helpers, parents = [], {}
    own = {os.getpid(), *daemons.values()}
    for pid in all_pids():
        if pid in own:
            continue
        line = cmdline(pid)
        if not line:
            continue
        try:
            parents[pid] = int(stat_fields(pid)[1])
        except (OSError, IndexError, ValueError):
            continue
        if os.path.basename(line[0]) == helper and any(marker in arg for arg in line):
            helpers.append(pid)
    helper_set = set(helpers)
    roles["helpers"] = helpers
    roles["pause"] = [pid for pid, parent in parents.items() if parent in helper_set and cmdline(pid) == PAUSE_ARGV]
    return roles


def cpu_ticks(pid):
    """(own utime+stime, + reaped children's) in ticks, or None if gone."""
    try:
        fields = stat_fields(pid)
    except OSError:
        return None
    own = int(fields[11]) + int(fields[12])
    return own, own + int(fields[13]) + int(fields[14])


def memory_kib(pid):
    """(Pss, Rss) KiB from smaps_rollup, or (0, 0) if gone."""
    pss = rss = 0
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def window(find, seconds, extra_pids=None):
    """Samples the agent over `seconds`: CPU % of one core per role (with and without reaped
    children) from the processes present at the start, PSS/RSS per role averaged over samples
    every 5 s (processes found again at each sample)."""
    roles = find()
    start = {pid: cpu_ticks(pid) for pids in roles.values() for pid in pids}
    extra_start = {pid: cpu_ticks(pid) for pid in (extra_pids or {}).values()}
    began = time.monotonic()
    samples = []
    while True:
        current = find()
        samples.append({role: [memory_kib(pid) for pid in pids] for role, pids in current.items()})
        left = began + seconds - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(5.0, left))
    elapsed = time.monotonic() - began
    end = {pid: cpu_ticks(pid) for pid in start}
    result = {"seconds": elapsed, "processes": {role: len(pids) for role, pids in roles.items()}, "roles": {}}
    for role, pids in roles.items():
        live = [pid for pid in pids if start[pid] and end[pid]]
        own = sum(end[p][0] - start[p][0] for p in live) / TICK / elapsed * 100
        total = sum(end[p][1] - start[p][1] for p in live) / TICK / elapsed * 100
        pss = statistics.mean(sum(m[0] for m in s.get(role, [])) for s in samples)
        rss = statistics.mean(sum(m[1] for m in s.get(role, [])) for s in samples)
        result["roles"][role] = {"cpu_percent": total, "cpu_percent_own": own, "pss_kib": pss, "rss_kib": rss,
                                 "gone": len(pids) - len(live)}
    summed = [r for name, r in result["roles"].items() if name != "pause"]
    result["cpu_percent"] = sum(r["cpu_percent"] for r in summed)
    result["cpu_percent_own"] = sum(r["cpu_percent_own"] for r in summed)
    result["pss_kib"] = sum(r["pss_kib"] for r in summed)
    result["rss_kib"] = sum(r["rss_kib"] for r in summed)
    result["samples"] = len(samples)
    if extra_pids:
        extra_end = {pid: cpu_ticks(pid) for pid in extra_start}
        result["control_plane_cpu_percent"] = {
            name: ((extra_end[pid][1] - extra_start[pid][1]) / TICK / elapsed * 100
                   if extra_start[pid] and extra_end[pid] else None)
            for name, pid in extra_pids.items()}
    return result


# ---------------------------------------------------------------------------------------------
# The API server

class Api:
    """Admin requests to the API server over one persistent TLS connection per thread."""

    def __init__(self, cluster_dir):
        env = {}
        for line in (pathlib.Path(cluster_dir) / "env").read_text().splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                env[key] = value
        url = urllib.parse.urlparse(env["SERVER"])
        self.host, self.port = url.hostname, url.port
        pki = pathlib.Path(cluster_dir) / "pki"
        self.context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self.local = threading.local()
        self.env = env

    def connect(self, timeout=60):
        return http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)

    def request(self, method, path, body=None, expect=(200, 201, 202)):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        for attempt in range(3):
            connection = getattr(self.local, "connection", None) or self.connect()
            self.local.connection = connection
            try:
                connection.request(method, path, body=data, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except (http.client.HTTPException, OSError):
                connection.close()
                self.local.connection = None
                if attempt == 2:
                    raise
                time.sleep(0.2)
                continue
            if response.status not in expect:
                raise RuntimeError(f"{method} {path}: HTTP {response.status}: {payload[:500]!r}")
            return json.loads(payload) if payload else None

    def get(self, path, expect=(200,)):
        return self.request("GET", path, expect=expect)


class PodWatch(threading.Thread):
    """A watch on the namespace's pods; records when each pod (by name) is first seen Running,
    Ready, and gone, as the events arrive (time.perf_counter())."""

    def __init__(self, api, namespace):
        super().__init__(daemon=True)
        self.api, self.namespace = api, namespace
        self.cond = threading.Condition()
        self.running, self.ready, self.gone, self.last = {}, {}, {}, {}
        self.error = None
        self.started = threading.Event()
        self.connection = None

    def run(self):
        try:
            listing = self.api.get(f"/api/v1/namespaces/{self.namespace}/pods")
            version = listing["metadata"]["resourceVersion"]
            while True:
                self.connection = self.api.connect(timeout=None)
                self.connection.request("GET", f"/api/v1/namespaces/{self.namespace}/pods?watch=1"
                                        f"&resourceVersion={version}&timeoutSeconds=1800")
                response = self.connection.getresponse()
                if response.status != 200:
                    raise RuntimeError(f"watch: HTTP {response.status}: {response.read()[:300]!r}")
                self.started.set()
                while True:
                    line = response.readline()
                    if not line:
                        break  # the server ended the watch: resume from the last version
                    now = time.perf_counter()
                    event = json.loads(line)
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"watch: {event['object']}")
                    pod = event["object"]
                    version = pod["metadata"]["resourceVersion"]
                    self.observe(event["type"], pod, now)
                self.connection.close()
        except Exception as error:  # reported to the waiters
            with self.cond:
                self.error = error
                self.cond.notify_all()
            self.started.set()

    def observe(self, kind, pod, now):
        name = pod["metadata"]["name"]
        with self.cond:
            self.last[name] = pod
            if kind == "DELETED":
                self.gone.setdefault(name, now)
            else:
                status = pod.get("status", {})
                if status.get("phase") == "Running":
                    self.running.setdefault(name, now)
                if any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])):
                    self.ready.setdefault(name, now)
            self.cond.notify_all()

    def wait(self, names, table, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.error:
                    raise RuntimeError(f"pod watch failed: {self.error}")
                missing = [name for name in names if name not in table]
                if not missing:
                    return
                for name in missing:
                    failure = pod_failure(self.last.get(name))
                    if failure and table is not self.gone:
                        raise RuntimeError(f"pod {name} will not be {what}: {failure}")
                left = deadline - time.monotonic()
                if left <= 0:
                    sample = self.last.get(missing[0], {}).get("status")
                    raise RuntimeError(f"{len(missing)} pods not {what} after {timeout} s "
                                       f"(e.g. {missing[0]}: {json.dumps(sample)[:1500]})")
                self.cond.wait(min(left, 1.0))


def pod_failure(pod):
    """Why a pod cannot start, if its status says so."""
    if not pod:
        return None
    status = pod.get("status", {})
    if status.get("phase") in ("Failed", "Succeeded"):
        return f"phase {status['phase']}: {status.get('reason')} {status.get('message')}"
    for container in status.get("containerStatuses", []):
        waiting = container.get("state", {}).get("waiting", {})
        if waiting.get("reason") in ("ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError",
                                     "InvalidImageName", "RunContainerError"):
            return f"{waiting['reason']}: {waiting.get('message')}"
    return None


def pod_manifest(name, namespace, node, grace):
    """The same pod on both sides: one busybox `sleep`, BestEffort, the default service account's
    token mounted (as any pod in a namespace gets it), image only from the node's store."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "swiftlet-bench-node"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": grace, "containers": [{
                "name": "sleep", "image": IMAGE, "imagePullPolicy": "Never", "command": ["sleep", "100000"]}]}}


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, len(values) * p // 100)]


def summary(seconds):
    return {"p50": percentile(seconds, 50) * 1000, "p95": percentile(seconds, 95) * 1000,
            "mean": statistics.mean(seconds) * 1000, "min": min(seconds) * 1000, "max": max(seconds) * 1000,
            "n": len(seconds)}


# ---------------------------------------------------------------------------------------------
# Measurement (inside the side's network namespace: the API server listens on its loopback)

def log(side, message):
    print(f"bench-node: {side}: {message}", file=sys.stderr, flush=True)


def measure(args):
    api = Api(args.cluster_dir)
    daemons = dict(item.split("=", 1) for item in args.daemon)
    daemons = {name: int(pid) for name, pid in daemons.items()}
    helper, marker = args.helper.split("=", 1)

    def find():
        for name, pid in daemons.items():
            if not _pid_alive(pid) or not cmdline(pid):
                raise RuntimeError(f"{name} (pid {pid}) exited")
        return agent_processes(daemons, helper, marker)

    control_plane = {}
    for name in ("kube-apiserver", "etcd"):
        pidfile = pathlib.Path(args.cluster_dir) / f"{name}.pid"
        if pidfile.exists():
            control_plane[name] = int(pidfile.read_text().strip())

    # The node Ready, a namespace of the run's own (its default service account's token is what
    # admission mounts in every pod).
    deadline = time.monotonic() + 180
    while True:
        find()
        node = api.request("GET", f"/api/v1/nodes/{args.node}", expect=(200, 404))
        if not node or node.get("kind") != "Node":
            node = {}  # not registered yet (a 404 Status)
        conditions = {c["type"]: c for c in node.get("status", {}).get("conditions", [])}
        if conditions.get("Ready", {}).get("status") == "True":
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"node {args.node} not Ready after 180 s: {json.dumps(conditions)[:1500]}")
        time.sleep(0.5)
    node_info = node["status"]["nodeInfo"]
    log(args.side, f"node Ready: {node_info['kubeletVersion']} {node_info['containerRuntimeVersion']}")
    namespace = args.namespace
    api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    deadline = time.monotonic() + 60
    while not (api.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default", expect=(200, 404)) or {}).get("secrets", []):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no token for the default service account of {namespace}")
        time.sleep(0.2)

    watch = PodWatch(api, namespace)
    watch.start()
    watch.started.wait(30)
    base = f"/api/v1/namespaces/{namespace}/pods"

    def create(name):
        began = time.perf_counter()
        api.request("POST", base, pod_manifest(name, namespace, args.node, args.grace))
        return began, time.perf_counter()

    def delete_all(names, timeout):
        began = time.perf_counter()
        for name in names:
            api.request("DELETE", f"{base}/{name}", expect=(200, 202, 404))
        watch.wait(names, watch.gone, timeout, "gone")
        return time.perf_counter() - began

    result = {"side": args.side, "node": node_info, "pods": args.pods, "start_samples": args.start_samples,
              "loadavg_before": os.getloadavg()[0]}

    # One untimed pod first: both load what the first pod needs (image, CNI plugins, volumes).
    create("warmup")
    watch.wait(["warmup"], watch.running, 180, "Running")
    delete_all(["warmup"], 180)
    time.sleep(5)
    log(args.side, "idle sample")
    result["idle"] = window(find, args.idle_seconds, control_plane)

    log(args.side, f"start latency over {args.start_samples} pods, one at a time")
    starts = []
    names = [f"start-{i}" for i in range(args.start_samples)]
    for name in names:
        began, posted = create(name)
        watch.wait([name], watch.running, 180, "Running")
        with watch.cond:
            running, ready = watch.running[name], watch.ready.get(name)
        starts.append({"running": running - began, "post": posted - began, "ready": (ready - began) if ready else None})
    result["start"] = {"running": summary([s["running"] for s in starts]), "post": summary([s["post"] for s in starts])}
    readies = [s["ready"] for s in starts if s["ready"] is not None]
    if readies:
        result["start"]["ready"] = summary(readies)
    result["start"]["samples_ms"] = [round(s["running"] * 1000, 1) for s in starts]
    result["delete_start_pods_seconds"] = delete_all(names, 600)

    log(args.side, f"{args.pods} pods at once")
    names = [f"steady-{i}" for i in range(args.pods)]
    began = time.perf_counter()
    for name in names:
        create(name)
    posted = time.perf_counter() - began
    watch.wait(names, watch.running, 900, "Running")
    with watch.cond:
        last = max(watch.running[name] for name in names)
    result["burst"] = {"all_running_seconds": last - began, "post_seconds": posted}
    log(args.side, f"all {args.pods} Running after {last - began:.1f} s; settling {args.settle} s, then {args.steady_seconds} s steady")
    time.sleep(args.settle)
    result["steady"] = window(find, args.steady_seconds, control_plane)
    with watch.cond:
        not_running = [n for n in names if watch.last.get(n, {}).get("status", {}).get("phase") != "Running"]
    result["steady"]["pods_not_running"] = len(not_running)
    log(args.side, "deleting")
    result["delete_burst_seconds"] = delete_all(names, 900)
    time.sleep(3)
    result["after"] = {role: len(pids) for role, pids in find().items()}
    result["loadavg_after"] = os.getloadavg()[0]
    print(json.dumps(result))


# ---------------------------------------------------------------------------------------------
# Report

def report(args):
    rows = {r["side"]: r for r in map(json.loads, open(args.results))}
    s, k = rows.get("swiftlet"), rows.get("kubelet")
    lines = []

    def value(r, get):
        try:
            return get(r) if r else None
        except (KeyError, TypeError):
            return None

    def row(label, get, fmt="{:.1f}"):
        a, b = value(s, get), value(k, get)
        ratio = f"{a / b:.2f}" if a is not None and b else "-"
        lines.append((label, fmt.format(a) if a is not None else "-", fmt.format(b) if b is not None else "-", ratio))

    ref = s or k
    n, samples = ref["pods"], ref["start_samples"]
    for p in ("p50", "p95"):
        row(f"pod start: POST -> Running (watch) {p} ms", lambda r: r["start"]["running"][p])
    row("  mean ms", lambda r: r["start"]["running"]["mean"])
    row("  of which the POST round trip p50 ms", lambda r: r["start"]["post"]["p50"])
    row(f"{n} pods at once: all Running, s", lambda r: r["burst"]["all_running_seconds"], "{:.1f}")
    row(f"delete {samples} pods: all gone, s", lambda r: r["delete_start_pods_seconds"], "{:.1f}")
    row(f"delete {n} pods: all gone, s", lambda r: r["delete_burst_seconds"], "{:.1f}")
    for phase, label in (("steady", f"@{n} pods"), ("idle", "@0 pods")):
        row(f"agent CPU % of a core {label}", lambda r: r[phase]["cpu_percent"], "{:.2f}")
        row("  without reaped children (runc, CNI, mount)", lambda r: r[phase]["cpu_percent_own"], "{:.2f}")
        row(f"agent PSS MiB {label}", lambda r: r[phase]["pss_kib"] / 1024, "{:.1f}")
        row(f"agent RSS MiB {label}", lambda r: r[phase]["rss_kib"] / 1024, "{:.1f}")
    row("PSS KiB per pod ((@N - @0) / N)", lambda r: (r["steady"]["pss_kib"] - r["idle"]["pss_kib"]) / n, "{:.0f}")
    row(f"kube-apiserver CPU % @{n} pods (informational)",
        lambda r: r["steady"]["control_plane_cpu_percent"]["kube-apiserver"], "{:.2f}")
    width = max(len(label) for label, *_ in lines)
    print(f"{'metric':{width}} | {'swiftlet':>10} | {'kubelet+ctrd':>12} | {'ratio':>6}")
    print("-" * (width + 38))
    for label, a, b, ratio in lines:
        print(f"{label:{width}} | {a:>10} | {b:>12} | {ratio:>6}")
    print("ratio = Swiftlet / (kubelet 1.20 + containerd 1.6); lower is better for every row.")
    for r in (s, k):
        if not r:
            continue
        st = r["steady"]
        parts = ", ".join(f"{role} {len_}" for role, len_ in st["processes"].items())
        roles = ", ".join(f"{role} {v['cpu_percent']:.2f}% {v['pss_kib'] / 1024:.1f} MiB"
                          for role, v in st["roles"].items())
        print(f"{r['side']}: {r['node']['kubeletVersion']} / {r['node']['containerRuntimeVersion']}; processes @{n}: {parts};"
              f" per role CPU/PSS: {roles}; load avg {r['loadavg_before']:.2f} -> {r['loadavg_after']:.2f}")
        if r["side"] == "kubelet":
            print(f"  containerd's {st['processes']['pause']} pause processes (not in the sums): "
                  f"{st['roles']['pause']['pss_kib'] / 1024:.1f} MiB PSS")
        if st["processes"]["helpers"] != n:
            print(f"WARNING: {r['side']}: {st['processes']['helpers']} helper processes for {n} pods")
        if st.get("pods_not_running"):
            print(f"WARNING: {r['side']}: {st['pods_not_running']} pods not Running at the end of the steady window")
    if args.json:
        combined = {"sides": rows, "ratios": {label: (None if ratio == "-" else float(ratio)) for label, _, _, ratio in lines},
                    "table": [{"metric": label, "swiftlet": a, "kubelet_containerd": b, "ratio": ratio}
                              for label, a, b, ratio in lines]}
        pathlib.Path(args.json).write_text(json.dumps(combined, indent=1) + "\n")
        print(f"results: {args.json}")


# ---------------------------------------------------------------------------------------------
# Cleanup of what a run left (a clean run leaves little for it to do)

def remove_cgroup_tree(relative):
    relative = relative.strip("/")
    if not relative:
        return
    for hierarchy in pathlib.Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / relative
        if not top.is_dir():
            continue
        directories = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for directory in [*directories, top]:
            for _ in range(50):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    try:
                        for pid in (directory / "cgroup.procs").read_text().split():
                            try:
                                os.kill(int(pid), signal.SIGKILL)
                            except ProcessLookupError:
                                pass
                    except OSError:
                        pass
                    time.sleep(0.1)


def unmount_below(directory):
    directory = str(directory)
    points = set()
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == directory or point.startswith(directory + "/"):
            points.add(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def cleanup(args):
    work = pathlib.Path(args.work)
    # Processes started from or for the work dir that outlived their parents: shims (their
    # -address is under it), monitors, the agents themselves.
    for _ in range(5):
        leftovers = [pid for pid in all_pids() if pid != os.getpid() and any(str(work) in a for a in cmdline(pid))]
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not leftovers:
            break
        time.sleep(0.3)
    # The containers' processes (in the pods' cgroups) and the cgroups.
    for name in args.cgroup:
        remove_cgroup_tree(name)
    # containerd 1.6 keeps shim sockets (/run/containerd/s/<sha256 of address/ns/id>) outside
    # its state; the ids are its task directories.
    if args.containerd_socket:
        ids = set()
        for tasks in work.glob("*/state/io.containerd.runtime.v2.task/k8s.io"):
            ids |= {entry.name for entry in tasks.iterdir()}
        for identifier in ids:
            digest = hashlib.sha256(f"{args.containerd_socket}/k8s.io/{identifier}".encode()).hexdigest()
            pathlib.Path(f"/run/containerd/s/{digest}").unlink(missing_ok=True)
    unmount_below(work)
    # libcni's result cache (containerd's CRI keeps it in /var/lib/cni), by the networks' names.
    for network in args.cni_network:
        for cached in pathlib.Path("/var/lib/cni/results").glob(f"{network}-*"):
            cached.unlink(missing_ok=True)
    # What the kubelet wrote for the run's namespace in /var/log/pods and /var/log/containers.
    for namespace in args.namespace:
        for path in pathlib.Path("/var/log/pods").glob(f"{namespace}_*"):
            subprocess.run(["rm", "-rf", str(path)])
        for path in pathlib.Path("/var/log/containers").glob(f"*_{namespace}_*"):
            path.unlink(missing_ok=True)
    for path in args.made_dir:
        with contextlib.suppress(OSError):
            pathlib.Path(path).rmdir()  # only if the run made it and left it empty
    for netns in args.netns:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("images")
    p.add_argument("directory")
    t = sub.add_parser("tunables")
    t.add_argument("action", choices=["hold", "release"])
    t.add_argument("--token", required=True)
    t.add_argument("--pid", type=int, default=os.getppid(), help="the holder (must live as long as the kubelet may)")
    m = sub.add_parser("measure")
    m.add_argument("--side", required=True, choices=["swiftlet", "kubelet"])
    m.add_argument("--cluster-dir", required=True)
    m.add_argument("--node", default="127.0.0.1")
    m.add_argument("--namespace", required=True)
    m.add_argument("--daemon", action="append", required=True, help="NAME=PID of an agent daemon")
    m.add_argument("--helper", required=True, help="NAME=MARKER: the agent's per-pod helpers (argv[0] basename, text in an argument)")
    m.add_argument("--pods", type=int, default=100)
    m.add_argument("--start-samples", type=int, default=30)
    m.add_argument("--steady-seconds", type=float, default=60)
    m.add_argument("--idle-seconds", type=float, default=15)
    m.add_argument("--settle", type=float, default=20)
    m.add_argument("--grace", type=int, default=2, help="the pods' terminationGracePeriodSeconds")
    r = sub.add_parser("report")
    r.add_argument("results")
    r.add_argument("--json")
    c = sub.add_parser("cleanup")
    c.add_argument("--work", required=True)
    c.add_argument("--cgroup", action="append", default=[])
    c.add_argument("--netns", action="append", default=[])
    c.add_argument("--namespace", action="append", default=[])
    c.add_argument("--cni-network", action="append", default=[])
    c.add_argument("--made-dir", action="append", default=[])
    c.add_argument("--containerd-socket", default="")
    args = parser.parse_args()
    {"images": lambda: build_images(args.directory), "tunables": lambda: tunables(args), "measure": lambda: measure(args),
     "report": lambda: report(args), "cleanup": lambda: cleanup(args)}[args.command]()


if __name__ == "__main__":
    main()
