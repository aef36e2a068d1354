#!/usr/bin/env python3
"""Pod lifecycle benchmark through the CRI (driven by hack/bench-pods.sh), one runtime at a
time: Swiftlet (pod namespaces pinned on files, a swiftlet-monitor per container) or Debian's
containerd 1.6 (a pause container and a containerd-shim-runc-v2 per pod), each inside its own
network namespace with the same bridge + host-local CNI network (its own bridge and subnet).

  pods.py images DIR                 build the busybox test image and containerd's pause image
                                     (Docker archives, offline, from Debian's busybox-static)
  pods.py measure --runtime R ...    print one JSON object of measurements for runtime R
  pods.py report RESULTS.jsonl       print the table, swiftlet beside containerd, with ratios
  pods.py cleanup --work DIR ...     remove what a failed run left on the host

Measured, with pods as the kubelet makes them (pod network, IPC and UTS namespaces, a PID
namespace per container, a BestEffort container running `sleep`):
  start     RunPodSandbox + CreateContainer + StartContainer until ContainerStatus says RUNNING,
            one pod at a time, over the first 30 pods (after one untimed warm-up pod);
  lists     ListContainers and ListPodSandbox at N running pods: latency and the server
            process's CPU (utime+stime) per call;
  pleg      the runtime's whole process tree's CPU while polled like the kubelet's PLEG
            (ListPodSandbox + ListContainers every second);
  memory    PSS of the process tree at 0 and at N pods;
  teardown  StopPodSandbox + RemovePodSandbox of each of the N pods (a running container each).
Timings are wall time in this client (Python grpcio); no assertions on them."""
import argparse
import hashlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

BUSYBOX = "swiftlet.bench/busybox:pods"
PAUSE = "swiftlet.bench/pause:pods"
PAUSE_ARGV = ["/bin/sleep", "2147483647"]
APP_ARGV = ["sleep", "100000"]
TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# Images

def build_images(directory):
    """Docker archives of the busybox test image (both runtimes) and of a pause image
    (containerd's sandbox image: busybox-static `sleep` as PID 1)."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "Tests/e2e"))
    import images
    directory = pathlib.Path(directory)

    def archive(path, tag, raw, image_config):
        config_bytes = json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-11-29T00:00:00Z",
                                   "config": image_config,
                                   "rootfs": {"type": "layers", "diff_ids": [images.sha(layer) for layer in raw]}},
                                  sort_keys=True).encode()
        config_name = images.sha(config_bytes)[7:] + ".json"

        def add(tar):
            for index, layer in enumerate(raw):
                images._file(tar, f"layer{index}", kind=images.tarfile.DIRTYPE, mode=0o755)
                images._file(tar, f"layer{index}/layer.tar", layer)
            images._file(tar, config_name, config_bytes)
            images._file(tar, "manifest.json", json.dumps([{"Config": config_name, "RepoTags": [tag],
                                                            "Layers": [f"layer{i}/layer.tar" for i in range(len(raw))]}]).encode())
        pathlib.Path(path).write_bytes(images._tar(add))

    # The e2e test image's layers (busybox-static and its applets), with a plain config: no
    # User, no Volumes, so neither runtime has extra work the other skips.
    archive(directory / "busybox.tar", BUSYBOX, images.layers(), {"Env": ["PATH=/bin"], "Cmd": ["sh"]})
    busybox = pathlib.Path("/bin/busybox").read_bytes()

    def pause_layer(tar):
        images._file(tar, "bin", kind=images.tarfile.DIRTYPE, mode=0o755)
        images._file(tar, "bin/busybox", busybox, mode=0o755)
        images._file(tar, "bin/sleep", kind=images.tarfile.SYMTYPE, link="busybox")
    archive(directory / "pause.tar", PAUSE, [images._tar(pause_layer)], {"Entrypoint": PAUSE_ARGV})


# ---------------------------------------------------------------------------------------------
# Processes

def cmdline(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    except OSError:
        return None


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def all_pids():
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def process_tree(daemon_pid, marker):
    """{role: [pids]}: the daemon; the helpers whose command line mentions `marker` (the
    runtime's own directory: containerd's shims, Swiftlet's monitors); containerd's pause
    processes (children of its shims running PAUSE_ARGV). Containers' own processes are not
    the runtime's and are left out."""
    helpers, parents = [], {}
    needle = marker.encode()
    for pid in all_pids():
        line = cmdline(pid)
        if not line or pid in (daemon_pid, os.getpid()):
            continue
        try:
            parents[pid] = int(stat_fields(pid)[1])
        except (OSError, IndexError):
            continue
        if any(needle in arg for arg in line):
            helpers.append(pid)
    helper_set = set(helpers)
    pause = [pid for pid, parent in parents.items()
             if parent in helper_set and [a.decode(errors="replace") for a in (cmdline(pid) or [])] == PAUSE_ARGV]
    return {"daemon": [daemon_pid], "helpers": helpers, "pause": pause}


def cpu_seconds(pids, children=True):
    """utime+stime (and, with children, the CPU of children they reaped: CNI plugins, runc)."""
    total = 0
    for pid in pids:
        try:
            fields = stat_fields(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        if children:
            total += int(fields[13]) + int(fields[14])
    return total / TICK


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            pass
    return total


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, len(values) * p // 100)]


def summary(values, scale=1000.0):
    """p50/p95 of seconds, in ms (scale 1000) or µs (scale 1e6)."""
    return {"p50": percentile(values, 50) * scale, "p95": percentile(values, 95) * scale, "n": len(values)}


# ---------------------------------------------------------------------------------------------
# Measurement

def measure(args):
    sys.path.insert(0, args.stubs)
    import grpc
    from runtime.v1 import api_pb2 as v1, api_pb2_grpc
    channel = grpc.insecure_channel(f"unix://{args.socket}", options=[("grpc.max_receive_message_length", 64 << 20)])
    rs = api_pb2_grpc.RuntimeServiceStub(channel)
    rs_images = api_pb2_grpc.ImageServiceStub(channel)
    work = pathlib.Path(args.work)
    logs = work / "pod-logs"
    logs.mkdir(exist_ok=True)
    ids_file = open(work / "ids", "a")  # for the cleanup of a failed run
    token = os.urandom(4).hex()
    namespaces = v1.NamespaceOption(network=v1.POD, pid=v1.CONTAINER, ipc=v1.POD)
    pods = {}  # pod id → container id

    def record(kind, value):
        ids_file.write(f"{kind} {value}\n")
        ids_file.flush()

    def start_pod(index):
        name, uid = f"bench-{index}", f"{token}-{index}"
        log_dir = logs / f"bench_{name}_{uid}"
        log_dir.mkdir()
        pod_config = v1.PodSandboxConfig(
            metadata=v1.PodSandboxMetadata(name=name, uid=uid, namespace="bench", attempt=0), hostname=name,
            log_directory=str(log_dir), labels={"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": "bench"},
            linux=v1.LinuxPodSandboxConfig(cgroup_parent=args.cgroup_parent,
                                           security_context=v1.LinuxSandboxSecurityContext(namespace_options=namespaces)))
        container_config = v1.ContainerConfig(
            metadata=v1.ContainerMetadata(name="app", attempt=0), image=v1.ImageSpec(image=BUSYBOX),
            command=APP_ARGV, log_path="app_0.log", labels={"io.kubernetes.container.name": "app"},
            linux=v1.LinuxContainerConfig(resources=v1.LinuxContainerResources(cpu_shares=2, oom_score_adj=1000),
                                          security_context=v1.LinuxContainerSecurityContext(namespace_options=namespaces)))
        began = time.perf_counter()
        pod_id = rs.RunPodSandbox(v1.RunPodSandboxRequest(config=pod_config), timeout=120).pod_sandbox_id
        ran = time.perf_counter()
        record("pod", pod_id)
        pods[pod_id] = None
        container_id = rs.CreateContainer(v1.CreateContainerRequest(pod_sandbox_id=pod_id, config=container_config,
                                                                    sandbox_config=pod_config), timeout=120).container_id
        created = time.perf_counter()
        pods[pod_id] = container_id
        rs.StartContainer(v1.StartContainerRequest(container_id=container_id), timeout=120)
        started = time.perf_counter()
        deadline = started + 60
        while rs.ContainerStatus(v1.ContainerStatusRequest(container_id=container_id), timeout=30).status.state != v1.CONTAINER_RUNNING:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{args.runtime}: container {container_id} not running after 60 s")
            time.sleep(0.001)
        running = time.perf_counter()
        record("container", container_id)
        if args.runtime == "containerd":
            # Where containerd pinned the pod's network namespace (/run/netns/cni-…), for the
            # cleanup of a failed run. Outside the timed part.
            info = rs.PodSandboxStatus(v1.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=True), timeout=30).info
            try:
                spec = json.loads(info.get("info", "{}")).get("runtimeSpec", {})
                for namespace in spec.get("linux", {}).get("namespaces", []):
                    if namespace.get("type") == "network" and namespace.get("path"):
                        record("netns", namespace["path"])
            except ValueError:
                pass
        return {"total": running - began, "run": ran - began, "create": created - ran, "start": started - created,
                "running": running - started}

    def teardown(pod_id):
        began = time.perf_counter()
        rs.StopPodSandbox(v1.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
        stopped = time.perf_counter()
        rs.RemovePodSandbox(v1.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
        removed = time.perf_counter()
        del pods[pod_id]
        return {"total": removed - began, "stop": stopped - began, "remove": removed - stopped}

    def tree():
        return process_tree(args.pid, args.marker)

    # Ready: the runtime and its network (containerd loads the CNI config after it starts), and
    # the images imported before (containerd's CRI learns of them through events).
    deadline = time.monotonic() + 60
    while True:
        try:
            conditions = {c.type: c.status for c in rs.Status(v1.StatusRequest(), timeout=10).status.conditions}
            missing = [image for image in ([BUSYBOX, PAUSE] if args.runtime == "containerd" else [BUSYBOX])
                       if not rs_images.ImageStatus(v1.ImageStatusRequest(image=v1.ImageSpec(image=image)), timeout=10).HasField("image")]
            if conditions.get("RuntimeReady") and conditions.get("NetworkReady") and not missing:
                break
        except grpc.RpcError as error:
            conditions, missing = {}, [str(error)]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{args.runtime} not ready: conditions {conditions}, missing {missing}")
        time.sleep(0.1)

    result = {"runtime": args.runtime, "pods": args.pods, "loadavg_before": os.getloadavg()[0]}
    try:
        # One untimed pod first: both runtimes load what the first pod needs (image layers,
        # CNI config, plugin binaries into the page cache).
        start_pod("warmup")
        teardown(next(iter(pods)))
        time.sleep(1)
        parts = tree()
        result["processes_0"] = {role: len(pids) for role, pids in parts.items()}
        result["pss_kib_0"] = pss_kib(sum(parts.values(), []))

        starts = [start_pod(index) for index in range(args.pods)]
        timed = starts[:args.latency_pods]
        result["start"] = {step: summary([s[step] for s in timed]) for step in ("total", "run", "create", "start", "running")}
        result["start_all_p50_ms"] = percentile([s["total"] for s in starts], 50) * 1000

        time.sleep(2)  # let the runtime settle after the burst
        parts = tree()
        result["processes"] = {role: len(pids) for role, pids in parts.items()}
        result["pss_kib_n"] = pss_kib(sum(parts.values(), []))
        result["pss_kib_n_pause"] = pss_kib(parts["pause"])

        # ListContainers and ListPodSandbox at N pods, one call at a time.
        result["lists"] = {}
        for method, request, field in (("ListContainers", v1.ListContainersRequest(), "containers"),
                                       ("ListPodSandbox", v1.ListPodSandboxRequest(), "items")):
            call = getattr(rs, method)
            for _ in range(20):
                listed = len(getattr(call(request, timeout=30), field))
            latencies = []
            cpu_before = cpu_seconds([args.pid], children=False)
            stop_at = time.monotonic() + args.list_seconds
            while time.monotonic() < stop_at or len(latencies) < 100:
                began = time.perf_counter()
                call(request, timeout=30)
                latencies.append(time.perf_counter() - began)
            cpu = cpu_seconds([args.pid], children=False) - cpu_before
            result["lists"][method] = {**summary(latencies, 1e6), "listed": listed,
                                       "server_cpu_us_per_call": cpu / len(latencies) * 1e6}

        # The kubelet's PLEG: ListPodSandbox + ListContainers every second.
        pids = sum(tree().values(), [])
        cpu_before, daemon_before = cpu_seconds(pids), cpu_seconds([args.pid])
        began = time.monotonic()
        for tick in range(args.pleg_seconds):
            rs.ListPodSandbox(v1.ListPodSandboxRequest(), timeout=30)
            rs.ListContainers(v1.ListContainersRequest(), timeout=30)
            time.sleep(max(0.0, began + tick + 1 - time.monotonic()))
        elapsed = time.monotonic() - began
        result["pleg_cpu_percent"] = (cpu_seconds(pids) - cpu_before) / elapsed * 100
        result["pleg_cpu_percent_daemon"] = (cpu_seconds([args.pid]) - daemon_before) / elapsed * 100
        result["pleg_seconds"] = elapsed
        result["pleg_processes"] = len(pids)

        downs = [teardown(pod_id) for pod_id in list(pods)]
        result["teardown"] = {step: summary([d[step] for d in downs]) for step in ("total", "stop", "remove")}
        time.sleep(1)
        result["pss_kib_0_after"] = pss_kib(sum(tree().values(), []))
        result["loadavg_after"] = os.getloadavg()[0]
    finally:
        for pod_id in list(pods):  # a failed run: remove what is left, best effort
            for call, request in ((rs.StopPodSandbox, v1.StopPodSandboxRequest), (rs.RemovePodSandbox, v1.RemovePodSandboxRequest)):
                try:
                    call(request(pod_sandbox_id=pod_id), timeout=60)
                except grpc.RpcError as error:
                    print(f"pods.py: {args.runtime}: {request.__name__} {pod_id}: {error.code()}", file=sys.stderr)
        channel.close()
    print(json.dumps(result))


# ---------------------------------------------------------------------------------------------
# Report

def report(path):
    rows = {r["runtime"]: r for r in map(json.loads, open(path))}
    s, c = rows["swiftlet"], rows["containerd"]
    n = s["pods"]
    lines = []

    def row(label, a, b, fmt="{:.1f}"):
        lines.append((label, fmt.format(a), fmt.format(b), f"{a / b:.2f}" if b else "-"))

    latency = min(s["start"]["total"]["n"], c["start"]["total"]["n"])
    for key, label in (("total", "pod start (Run+Create+Start until running)"), ("run", "  RunPodSandbox"),
                       ("create", "  CreateContainer"), ("start", "  StartContainer")):
        for p in ("p50", "p95"):
            row(f"{label} {p} ms", s["start"][key][p], c["start"][key][p])
    for key, label in (("total", "teardown (StopPodSandbox+RemovePodSandbox)"), ("stop", "  StopPodSandbox"),
                       ("remove", "  RemovePodSandbox")):
        for p in ("p50", "p95"):
            row(f"{label} {p} ms", s["teardown"][key][p], c["teardown"][key][p])
    for method in ("ListContainers", "ListPodSandbox"):
        for p in ("p50", "p95"):
            row(f"{method} @{n} pods {p} µs", s["lists"][method][p], c["lists"][method][p], "{:.0f}")
        row(f"{method} @{n} pods server CPU µs/call", s["lists"][method]["server_cpu_us_per_call"],
            c["lists"][method]["server_cpu_us_per_call"])
    row(f"PLEG poll @{n} pods, process tree CPU % of a core", s["pleg_cpu_percent"], c["pleg_cpu_percent"], "{:.2f}")
    row("  of which the daemon (swiftlet run, containerd)", s["pleg_cpu_percent_daemon"], c["pleg_cpu_percent_daemon"], "{:.2f}")
    row("process tree PSS KiB @0 pods", s["pss_kib_0"], c["pss_kib_0"], "{:.0f}")
    row(f"process tree PSS KiB @{n} pods", s["pss_kib_n"], c["pss_kib_n"], "{:.0f}")
    row("PSS KiB per pod", (s["pss_kib_n"] - s["pss_kib_0"]) / n, (c["pss_kib_n"] - c["pss_kib_0"]) / n, "{:.0f}")
    width = max(len(label) for label, *_ in lines)
    print(f"{'metric':{width}} | {'swiftlet':>10} | {'containerd':>10} | {'ratio':>6}")
    for label, a, b, ratio in lines:
        print(f"{label:{width}} | {a:>10} | {b:>10} | {ratio:>6}")
    print(f"ratio = swiftlet / containerd (lower is better). Pod start over the first {latency} pods, one at a time;"
          f" teardown over all {n}; lists one call at a time. Process tree: swiftlet = agent + {s['processes']['helpers']}"
          f" swiftlet-monitor; containerd = daemon + {c['processes']['helpers']} shims + {c['processes']['pause']} pause"
          f" ({c['pss_kib_n_pause'] / n:.0f} KiB PSS per pod of it); PLEG = ListPodSandbox + ListContainers every second"
          f" for {s['pleg_seconds']:.0f} s, CPU from /proc/<pid>/stat (reaped children included)."
          f" Load average (1 min) before/after: swiftlet {s['loadavg_before']:.2f}/{s['loadavg_after']:.2f},"
          f" containerd {c['loadavg_before']:.2f}/{c['loadavg_after']:.2f}.")
    for r in (s, c):
        for method, listed in r["lists"].items():
            if listed["listed"] != n:
                print(f"WARNING: {r['runtime']} {method} listed {listed['listed']} of {n}")
        if r["processes"]["helpers"] != n or (r["runtime"] == "containerd" and r["processes"]["pause"] != n):
            print(f"WARNING: {r['runtime']} process tree {r['processes']} for {n} pods")


# ---------------------------------------------------------------------------------------------
# Cleanup of a failed run (a clean run leaves nothing for it to do)

def cleanup(args):
    work = pathlib.Path(args.work)
    ids = {"pod": set(), "container": set(), "netns": set()}
    for ids_path in work.glob("*/ids"):
        for line in ids_path.read_text().splitlines():
            kind, _, value = line.partition(" ")
            ids.setdefault(kind, set()).add(value)
    # Processes the runtimes started (shims, monitors) that outlived them.
    for _ in range(3):
        leftovers = [pid for pid in all_pids() if pid != os.getpid()
                     and any(str(work).encode() in arg for arg in (cmdline(pid) or []))]
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not leftovers:
            break
        time.sleep(0.2)
    # Containers, pause processes and their cgroups.
    for name in args.cgroup:
        for hierarchy in pathlib.Path("/sys/fs/cgroup").iterdir():
            top = hierarchy / name.strip("/")
            if not top.is_dir():
                continue
            for directory in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True) + [top]:
                for _ in range(50):
                    try:
                        directory.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        try:
                            for pid in (directory / "cgroup.procs").read_text().split():
                                os.kill(int(pid), signal.SIGKILL)
                        except (OSError, ValueError):
                            pass
                        time.sleep(0.1)
    # Mounts below the work dir (rootfs overlays, pinned namespaces), and containerd's pod netns.
    mounts = [line.split()[4] for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in sorted({m for m in mounts if m == str(work) or m.startswith(f"{work}/")}, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    for path in ids["netns"]:
        if os.path.exists(path):
            subprocess.run(["umount", "-l", path], capture_output=True)
            try:
                os.unlink(path)
            except OSError:
                pass
    # containerd 1.6 keeps runc state, shim sockets and libcni's result cache outside its root.
    for identifier in ids["pod"] | ids["container"]:
        subprocess.run(["rm", "-rf", f"/run/containerd/runc/k8s.io/{identifier}"], capture_output=True)
        for cached in pathlib.Path("/var/lib/cni/results").glob(f"*-{identifier}-*"):
            cached.unlink(missing_ok=True)
    if args.containerd_socket:
        for identifier in ids["pod"]:
            digest = hashlib.sha256(f"{args.containerd_socket}/k8s.io/{identifier}".encode()).hexdigest()
            pathlib.Path(f"/run/containerd/s/{digest}").unlink(missing_ok=True)
    for netns in args.netns:
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    images_parser = sub.add_parser("images")
    images_parser.add_argument("directory")
    m = sub.add_parser("measure")
    m.add_argument("--runtime", required=True, choices=["swiftlet", "containerd"])
    m.add_argument("--stubs", required=True)
    m.add_argument("--socket", required=True)
    m.add_argument("--pid", type=int, required=True, help="the daemon (swiftlet run, containerd)")
    m.add_argument("--marker", required=True, help="text in the command line of the runtime's helper processes")
    m.add_argument("--work", required=True, help="this runtime's directory (pod logs, the ids of what was made)")
    m.add_argument("--cgroup-parent", required=True)
    m.add_argument("--pods", type=int, default=100)
    m.add_argument("--latency-pods", type=int, default=30)
    m.add_argument("--list-seconds", type=float, default=3.0)
    m.add_argument("--pleg-seconds", type=int, default=60)
    r = sub.add_parser("report")
    r.add_argument("results")
    c = sub.add_parser("cleanup")
    c.add_argument("--work", required=True)
    c.add_argument("--cgroup", action="append", default=[])
    c.add_argument("--netns", action="append", default=[])
    c.add_argument("--containerd-socket", default="")
    args = parser.parse_args()
    if args.command == "images":
        build_images(args.directory)
    elif args.command == "measure":
        measure(args)
    elif args.command == "report":
        report(args.results)
    else:
        cleanup(args)


if __name__ == "__main__":
    main()
