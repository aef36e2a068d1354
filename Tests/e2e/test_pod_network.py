"""Pod networking through CNI (after critest's networking.go), with Debian's real plugins: a
bridge + host-local + portmap network the test writes into the runtime's CNI config dir.
The runtime runs inside a network namespace of the test's own, which plays the node: its
bridge, iptables rules and port mappings never reach the machine's network."""
import ipaddress
import random

import pytest

import runtimes
from runtimes import wait_for

WEB = "mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p {port} -h /www"


def pod_ip(runtime, container):
    out = runtime.sh(container, "ip -4 -o addr show dev eth0")
    return out.split()[3].split("/")[0]


def web_server(runtime, pod_id, config, body, port=8080):
    container = runtime.sleeper(pod_id, config, command=["sh", "-c", WEB.format(body=body, port=port)])
    return container


def fetch(runtime, container, url):
    """wget from inside a container; None until it answers."""
    # (busybox 1.35's `wget -T` crashes: `timeout` bounds it instead)
    out, err, code = runtime.exec(container, ["timeout", "10", "wget", "-q", "-O", "-", url], timeout=30)
    return out.strip() if code == 0 else None


def fetch_from_node(runtime, url):
    result = runtimes.netns_exec(runtime.netns, "busybox", "timeout", "10", "busybox", "wget", "-q", "-O", "-", url,
                                 check=False, timeout=30)
    return result.stdout.strip() if result.returncode == 0 else None


def test_pod_gets_an_ip_in_the_configured_subnet(runtime, cri):
    pod_id, config = runtime.run_pod()
    container = runtime.sleeper(pod_id, config)
    status = runtime.pod_status(pod_id)
    address = ipaddress.ip_address(status.network.ip)
    assert address in ipaddress.ip_network(runtime.subnet)
    assert str(address) != runtime.gateway
    assert pod_ip(runtime, container) == status.network.ip
    assert runtime.list_pods(id=pod_id)[0].id == pod_id
    route = runtime.sh(container, "ip -4 route show default")
    assert route.split()[:3] == ["default", "via", runtime.gateway], route
    # The node side: a veth on this test's bridge.
    bridge = runtimes.run("ip", "-n", runtime.netns, "-o", "link", "show", "master", runtime.bridge).stdout
    assert "veth" in bridge or bridge.strip(), bridge
    # Loopback is up in the pod.
    assert "UP" in runtime.sh(container, "ip -o link show lo")


def test_every_pod_gets_its_own_ip(runtime, cri):
    ips = set()
    for _ in range(3):
        pod_id, _ = runtime.run_pod()
        ips.add(runtime.pod_status(pod_id).network.ip)
    assert len(ips) == 3
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network(runtime.subnet) for ip in ips)


def test_two_pods_reach_each_other(runtime, cri):
    server_pod, server_config = runtime.run_pod()
    web_server(runtime, server_pod, server_config, "hello-from-a")
    client_pod, client_config = runtime.run_pod()
    client = runtime.sleeper(client_pod, client_config)
    server_ip = runtime.pod_status(server_pod).network.ip
    assert wait_for(lambda: fetch(runtime, client, f"http://{server_ip}:8080/"), timeout=60,
                    message="the other pod's web server") == "hello-from-a"


def test_containers_of_a_pod_share_localhost(runtime, cri):
    pod_id, config = runtime.run_pod()
    web_server(runtime, pod_id, config, "same-pod", port=8081)
    client = runtime.sleeper(pod_id, config)
    assert wait_for(lambda: fetch(runtime, client, "http://127.0.0.1:8081/"), message="localhost in the pod") == "same-pod"


def test_the_node_reaches_a_pod(runtime, cri):
    pod_id, config = runtime.run_pod()
    web_server(runtime, pod_id, config, "node-to-pod")
    ip = runtime.pod_status(pod_id).network.ip
    assert wait_for(lambda: fetch_from_node(runtime, f"http://{ip}:8080/"), message="the pod from the node") == "node-to-pod"


def test_port_mapping_host_port_to_container_port(runtime, cri):
    host_port = random.randint(30000, 39999)
    mapping = cri.v1.PortMapping(protocol=cri.v1.TCP, container_port=8080, host_port=host_port)
    pod_id, config = runtime.run_pod(port_mappings=[mapping])
    web_server(runtime, pod_id, config, "through-the-host-port")
    # The node's own address on the pod network (the bridge gateway) is a local address of
    # the node namespace: traffic to it on the host port is DNATed to the pod.
    url = f"http://{runtime.gateway}:{host_port}/"
    assert wait_for(lambda: fetch_from_node(runtime, url), message="the host port") == "through-the-host-port"
    # And from another pod, through the node's address.
    other_pod, other_config = runtime.run_pod()
    other = runtime.sleeper(other_pod, other_config)
    assert wait_for(lambda: fetch(runtime, other, url), message="the host port from a pod") == "through-the-host-port"
    # Gone with the pod's network.
    runtime.stop_pod(pod_id)
    assert fetch_from_node(runtime, url) is None
    rules = runtimes.netns_exec(runtime.netns, "iptables-save", "-t", "nat").stdout
    assert f"--dport {host_port}" not in rules


def test_stop_releases_the_pod_ip_and_its_veth(runtime, cri):
    pod_id, config = runtime.run_pod()
    ip = runtime.pod_status(pod_id).network.ip
    allocations = runtime.ipam / "swl-e2e"
    assert (allocations / ip).exists(), sorted(p.name for p in allocations.iterdir())
    links = runtimes.run("ip", "-n", runtime.netns, "-o", "link", "show", "master", runtime.bridge).stdout
    assert links.strip()
    runtime.stop_pod(pod_id)
    assert not (allocations / ip).exists()
    assert runtimes.run("ip", "-n", runtime.netns, "-o", "link", "show", "master", runtime.bridge).stdout.strip() == ""
    runtime.remove_pod(pod_id)


def test_host_network_pod_needs_no_cni(make_runtime, cri):
    runtime = make_runtime(network=False)  # an empty CNI config dir: NetworkReady is false
    security = cri.v1.LinuxSandboxSecurityContext(
        namespace_options=cri.v1.NamespaceOption(network=cri.v1.NODE, pid=cri.v1.CONTAINER, ipc=cri.v1.POD))
    pod_id, config = runtime.run_pod(security=security)
    container = runtime.sleeper(pod_id, config, security=cri.v1.LinuxContainerSecurityContext(
        namespace_options=security.namespace_options))
    assert runtime.pod_status(pod_id).state == cri.v1.SANDBOX_READY
    assert runtime.pod_status(pod_id).network.ip == ""
    node_links = runtimes.run("ip", "-n", runtime.netns, "-o", "link", "show").stdout
    inside = runtime.sh(container, "ip -o link show")
    assert [line.split(":")[1].strip() for line in inside.splitlines()] == \
        [line.split(":")[1].strip() for line in node_links.splitlines()]


def test_a_pod_cannot_start_without_a_network(make_runtime, cri):
    runtime = make_runtime(network=False)
    import grpc
    with pytest.raises(grpc.RpcError) as failed:
        runtime.run_pod()
    assert failed.value.code() != grpc.StatusCode.UNIMPLEMENTED
    assert runtime.list_pods(state=cri.v1.PodSandboxStateValue(state=cri.v1.SANDBOX_READY)) == []
