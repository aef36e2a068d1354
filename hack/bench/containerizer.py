#!/usr/bin/env python3
"""Launch latency and supervision memory: Swiftlet's containerizer beside `runc run -d` and
containerd 1.6 (ctr run -d, one containerd-shim-runc-v2 per container), on the same busybox
rootfs, for 1, 20 and 100 idle containers. Prints a table with ratios."""
import json
import os
import pathlib
import subprocess
import sys
import time

work = pathlib.Path(sys.argv[1])
swiftlet, monitor, containerd_config = sys.argv[2], sys.argv[3], sys.argv[4]
counts = [int(n) for n in sys.argv[5].split(",")]
rootfs = work / "rootfs"


def pss_kib(pids):
    total = rss = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total, rss


def pids_of(name):
    out = subprocess.run(["pgrep", "-f", name], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, len(values) * p // 100)]


results = {}

# Swiftlet: launch() in-process, through swiftlet-monitor (built with cc, as installed).
for n in counts:
    out = subprocess.run([swiftlet, "containers", "bench", "--state", str(work / "swiftlet"), "--cgroups-root",
                          f"swiftlet-bench-{os.getpid()}", "--rootfs", str(rootfs), "--count", str(n),
                          "--monitor-path", monitor], capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    results[("swiftlet", n)] = (data["launch_ms_p50"], data["launch_ms_p99"], data["pss_kib_per_container"], data["rss_kib_per_container"])

# runc: create + start of each container (runc run -d); no supervisor process remains.
bundle = work / "bundle"
bundle.mkdir(exist_ok=True)
subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
spec = json.loads((bundle / "config.json").read_text())
spec["root"] = {"path": str(rootfs), "readonly": True}
spec["process"]["args"] = ["sleep", "3600"]
spec["process"]["terminal"] = False
(bundle / "config.json").write_text(json.dumps(spec))
runc_root = work / "runc"
for n in counts:
    times = []
    for i in range(n):
        started = time.perf_counter()
        subprocess.run(["runc", "--root", str(runc_root), "run", "-d", "--bundle", str(bundle), f"b{n}-{i}"],
                       check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - started) * 1000)
    results[("runc", n)] = (percentile(times, 50), percentile(times, 99), 0, 0)
    for i in range(n):
        subprocess.run(["runc", "--root", str(runc_root), "delete", "-f", f"b{n}-{i}"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

# containerd: ctr run -d with the same rootfs; one shim per container.
containerd = subprocess.Popen(["containerd", "--config", containerd_config], stderr=subprocess.DEVNULL)
socket = work / "containerd" / "containerd.sock"
for _ in range(200):
    if socket.exists():
        break
    time.sleep(0.05)
ctr = ["ctr", "--address", str(socket), "--namespace", "bench"]
try:
    for n in counts:
        times = []
        for i in range(n):
            started = time.perf_counter()
            subprocess.run(ctr + ["run", "-d", "--rootfs", str(rootfs), f"c{n}-{i}", "/bin/sleep", "3600"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append((time.perf_counter() - started) * 1000)
        time.sleep(0.3)
        shims = [p for p in pids_of("containerd-shim-runc-v2") if "bench" in open(f"/proc/{p}/cmdline").read()]
        pss, rss = pss_kib(shims)
        results[("containerd", n)] = (percentile(times, 50), percentile(times, 99), pss // max(1, n), rss // max(1, n))
        for i in range(n):
            subprocess.run(ctr + ["task", "kill", "-s", "KILL", f"c{n}-{i}"], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        for i in range(n):
            subprocess.run(ctr + ["task", "rm", "-f", f"c{n}-{i}"], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run(ctr + ["container", "rm", f"c{n}-{i}"], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
finally:
    containerd.terminate()
    containerd.wait()

print(f"{'containers':>10} | {'swiftlet p50/p99 ms':>20} {'PSS KiB':>8} {'RSS KiB':>8} | {'runc run -d p50/p99 ms':>22} |"
      f" {'containerd p50/p99 ms':>22} {'PSS KiB':>8} {'RSS KiB':>8} | {'launch vs runc':>14} {'launch vs ctr':>13} {'PSS vs shim':>11}")
for n in counts:
    s, r, c = results[("swiftlet", n)], results[("runc", n)], results[("containerd", n)]
    print(f"{n:>10} | {s[0]:>9.1f}/{s[1]:<10.1f} {s[2]:>8} {s[3]:>8} | {r[0]:>11.1f}/{r[1]:<10.1f} |"
          f" {c[0]:>11.1f}/{c[1]:<10.1f} {c[2]:>8} {c[3]:>8} | {s[0] / r[0]:>14.2f} {s[0] / c[0]:>13.2f} {s[2] / max(1, c[2]):>11.2f}")
print("launch: time until the container's process runs (swiftlet: launch() returns after exec; runc and ctr: the"
      " command's wall time, client start included). PSS/RSS: per container, of the supervising process"
      " (swiftlet-monitor; containerd-shim-runc-v2; runc leaves none and cannot report the exit).")
