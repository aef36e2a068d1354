"""Stats through the CRI (after critest's container stats specs): ContainerStats,
ListContainerStats with filters, PodSandboxStats and ListPodSandboxStats — CPU and memory
that grow with real work (a busy loop, bytes held in tmpfs), with the container's identity."""
import pytest

from runtimes import wait_for

BUSY = ["sh", "-c", "while :; do :; done"]
HOLD_40M = ["sh", "-c", "head -c 41943040 /dev/zero > /dev/shm/held && echo held && exec sleep 100000"]


def container_stats(runtime, cri, container):
    return runtime.rs.ContainerStats(cri.v1.ContainerStatsRequest(container_id=container)).stats


def test_container_stats_of_a_busy_container(runtime, cri):
    pod_id, config = runtime.run_pod()
    container = runtime.run_container(pod_id, config, command=BUSY, labels={"stats": "busy"})
    stats = wait_for(lambda: (s := container_stats(runtime, cri, container)).cpu.usage_core_nano_seconds.value > 0 and s,
                     message="CPU usage of the busy container")
    assert stats.attributes.id == container
    assert stats.attributes.metadata.name == runtime.status(container).metadata.name
    assert stats.attributes.labels["stats"] == "busy"
    assert stats.cpu.timestamp > 0
    assert stats.memory.timestamp > 0
    assert stats.memory.working_set_bytes.value > 0
    first = stats.cpu.usage_core_nano_seconds.value
    later = wait_for(lambda: (v := container_stats(runtime, cri, container).cpu.usage_core_nano_seconds.value) > first + 100_000_000 and v,
                     message="CPU usage to grow by 0.1 s")
    assert later > first


def test_memory_working_set_counts_what_the_container_holds(runtime, cri):
    pod_id, config = runtime.run_pod()
    container = runtime.run_container(pod_id, config, command=HOLD_40M)
    wait_for(lambda: "held" in "".join(open(runtime.container_log(container)).read().split()), message="40 MiB in /dev/shm")
    stats = container_stats(runtime, cri, container)
    assert stats.memory.working_set_bytes.value >= 38 << 20, stats.memory
    # And the host's cgroup agrees.
    memory = runtime.cgroup_dir(container, "memory")
    usage_file = memory / "memory.usage_in_bytes"
    usage = int(usage_file.read_text()) if usage_file.exists() else int((memory / "memory.current").read_text())
    assert usage >= 38 << 20


def test_list_container_stats_filters(runtime, cri):
    pod_a, config_a = runtime.run_pod()
    pod_b, config_b = runtime.run_pod()
    a = runtime.sleeper(pod_a, config_a, labels={"group": "one"})
    b = runtime.sleeper(pod_a, config_a, labels={"group": "two"})
    c = runtime.sleeper(pod_b, config_b, labels={"group": "one"})
    v1 = cri.v1

    def ids(**filters):
        request = v1.ListContainerStatsRequest(filter=v1.ContainerStatsFilter(**filters)) if filters else v1.ListContainerStatsRequest()
        return sorted(s.attributes.id for s in runtime.rs.ListContainerStats(request).stats)

    assert ids() == sorted([a, b, c])
    assert ids(id=b) == [b]
    assert ids(pod_sandbox_id=pod_a) == sorted([a, b])
    assert ids(label_selector={"group": "one"}) == sorted([a, c])
    assert ids(label_selector={"group": "one"}, pod_sandbox_id=pod_b) == [c]


def test_pod_sandbox_stats(runtime, cri):
    pod_id, config = runtime.run_pod(labels={"pod": "stats"})
    busy = runtime.run_container(pod_id, config, command=BUSY)
    idle = runtime.sleeper(pod_id, config)

    def pod_stats():
        return runtime.rs.PodSandboxStats(cri.v1.PodSandboxStatsRequest(pod_sandbox_id=pod_id)).stats

    stats = wait_for(lambda: (s := pod_stats()).linux.cpu.usage_core_nano_seconds.value > 0 and s,
                     message="the pod's CPU usage")
    assert stats.attributes.id == pod_id
    assert stats.attributes.metadata.name == config.metadata.name
    assert stats.attributes.labels["pod"] == "stats"
    assert stats.linux.memory.working_set_bytes.value > 0
    assert sorted(c.attributes.id for c in stats.linux.containers) == sorted([busy, idle])
    listed = runtime.rs.ListPodSandboxStats(cri.v1.ListPodSandboxStatsRequest(
        filter=cri.v1.PodSandboxStatsFilter(id=pod_id))).stats
    assert [s.attributes.id for s in listed] == [pod_id]
    other_pod, _ = runtime.run_pod(labels={"pod": "other"})
    by_label = runtime.rs.ListPodSandboxStats(cri.v1.ListPodSandboxStatsRequest(
        filter=cri.v1.PodSandboxStatsFilter(label_selector={"pod": "other"}))).stats
    assert [s.attributes.id for s in by_label] == [other_pod]


def test_stats_of_an_unknown_container_is_not_found(runtime, cri):
    import grpc
    with pytest.raises(grpc.RpcError) as failed:
        container_stats(runtime, cri, "0123456789abcdef" * 4)
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
