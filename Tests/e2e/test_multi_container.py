"""Several containers in one pod (after critest's multi_container_linux.go): each runs and
logs on its own, with its own root filesystem, while they share the pod's network, IPC and
UTS namespaces; stopping and removing the pod takes all of them."""
import pytest

from runtimes import ENTRYPOINT, log_text, wait_for


@pytest.fixture
def pod_of_three(runtime, cri):
    pod_id, config = runtime.run_pod(hostname="multi")
    web = runtime.sleeper(pod_id, config, name="web", command=[
        "sh", "-c", "mkdir -p /www && echo from-web > /www/index.html && exec httpd -f -p 8080 -h /www"])
    logger = runtime.sleeper(pod_id, config, name="logger", command=[
        "sh", "-c", "i=0; while true; do i=$((i+1)); echo logger $i; sleep 0.2; done"])
    shell = runtime.sleeper(pod_id, config, name="shell", image=ENTRYPOINT, command=["sleep", "100000"])
    return pod_id, config, {"web": web, "logger": logger, "shell": shell}


def test_all_run_and_are_listed_by_pod(runtime, cri, pod_of_three):
    pod_id, _, containers = pod_of_three
    listed = {c.metadata.name: c for c in runtime.list_containers(pod_sandbox_id=pod_id)}
    assert sorted(listed) == ["logger", "shell", "web"]
    assert {listed[name].id for name in listed} == set(containers.values())
    assert all(c.state == cri.v1.CONTAINER_RUNNING for c in listed.values())


def test_they_share_network_ipc_and_uts(runtime, cri, pod_of_three):
    _, _, containers = pod_of_three
    for ns in ("net", "ipc", "uts"):
        links = {runtime.sh(c, f"readlink /proc/self/ns/{ns}") for c in containers.values()}
        assert len(links) == 1, ns
    mounts = {runtime.sh(c, "readlink /proc/self/ns/mnt") for c in containers.values()}
    assert len(mounts) == 3
    assert {runtime.sh(c, "hostname") for c in containers.values()} == {"multi"}
    page = wait_for(lambda: runtime.exec(containers["shell"], ["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"])[0].strip(),
                    message="the web container through the pod's localhost")
    assert page == "from-web"


def test_each_has_its_own_root_filesystem_and_log(runtime, cri, pod_of_three):
    _, config, containers = pod_of_three
    runtime.sh(containers["web"], "echo private > /tmp/only-in-web")
    assert runtime.exec(containers["logger"], ["cat", "/tmp/only-in-web"])[2] != 0
    wait_for(lambda: log_text(runtime.container_log(containers["logger"])), message="the logger's log")
    assert all(line.startswith("logger ") for line in log_text(runtime.container_log(containers["logger"])))
    assert log_text(runtime.container_log(containers["web"])) == []
    paths = {runtime.status(c).log_path for c in containers.values()}
    assert len(paths) == 3


def test_stopping_one_leaves_the_others(runtime, cri, pod_of_three):
    pod_id, _, containers = pod_of_three
    runtime.stop_container(containers["logger"], timeout=2)
    runtime.wait_exited(containers["logger"])
    assert runtime.status(containers["web"]).state == cri.v1.CONTAINER_RUNNING
    assert runtime.pod_status(pod_id).state == cri.v1.SANDBOX_READY
    assert runtime.exec(containers["shell"], ["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"])[0].strip() == "from-web"


def test_pod_stop_and_remove_take_all(runtime, cri, pod_of_three):
    pod_id, _, containers = pod_of_three
    runtime.stop_pod(pod_id)
    for container in containers.values():
        runtime.wait_exited(container)
    runtime.remove_pod(pod_id)
    assert runtime.list_containers(pod_sandbox_id=pod_id) == []
    assert all(not runtime.list_containers(id=c) for c in containers.values())
