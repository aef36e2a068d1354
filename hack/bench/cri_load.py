#!/usr/bin/env python3
"""Drives one CRI method at a fixed concurrency for a fixed time and reports calls/s, latency
percentiles and the server's CPU per call (utime+stime from /proc/<pid>/stat).

Each concurrent client is its own process with its own channel, so the Python client's GIL
does not cap the load. Prints one JSON object."""
import argparse
import json
import multiprocessing
import os
import sys
import time


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker(stubs, target, method, start, stop_at, queue):
    sys.path.insert(0, stubs)
    import grpc
    from runtime.v1 import api_pb2, api_pb2_grpc
    stub = api_pb2_grpc.RuntimeServiceStub(grpc.insecure_channel(target))
    call = getattr(stub, method)
    request = getattr(api_pb2, f"{method}Request")()
    for _ in range(20):  # connect and warm up before the clock starts
        call(request)
    start.wait()
    latencies = []
    while time.monotonic() < stop_at.value:
        began = time.perf_counter()
        call(request)
        latencies.append(time.perf_counter() - began)
    queue.put(latencies)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--method", default="Version")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    start = multiprocessing.Barrier(args.concurrency + 1)
    stop_at = multiprocessing.Value("d", float("inf"))
    queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=worker, args=(args.stubs, args.target, args.method, start, stop_at, queue))
               for _ in range(args.concurrency)]
    for process in workers:
        process.start()
    cpu_before = cpu_seconds(args.pid)
    stop_at.value = time.monotonic() + args.seconds + 0.05
    began = time.monotonic()
    start.wait()
    latencies = []
    for _ in workers:
        latencies.extend(queue.get())
    elapsed = time.monotonic() - began
    cpu_after = cpu_seconds(args.pid)
    for process in workers:
        process.join()
    latencies.sort()
    calls = len(latencies)
    print(json.dumps({
        "method": args.method, "concurrency": args.concurrency, "calls": calls,
        "calls_per_second": calls / elapsed,
        "p50_us": latencies[calls // 2] * 1e6, "p99_us": latencies[min(calls - 1, calls * 99 // 100)] * 1e6,
        "server_cpu_us_per_call": (cpu_after - cpu_before) / calls * 1e6,
    }))


if __name__ == "__main__":
    main()
