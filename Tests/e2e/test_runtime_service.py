"""What Version, Status, RuntimeConfig and UpdateRuntimeConfig mean, through the real socket."""
import json
import os

import grpc
import pytest

LO_CONF = '{"cniVersion": "1.0.0", "name": "swiftlet-lo", "type": "loopback"}'


def conditions(response):
    return {c.type: c for c in response.status.conditions}


@pytest.mark.parametrize("version", ["v1", "v1alpha2"])
def test_status_conditions_tell_the_truth(agent, cri, version):
    module, stubs = getattr(cri, version), getattr(cri, f"{version}_grpc")
    stub = stubs.RuntimeServiceStub(agent.channel())
    found = conditions(stub.Status(module.StatusRequest()))
    assert set(found) == {"RuntimeReady", "NetworkReady"}
    # Writable root and state, cgroup controllers present: the runtime is ready.
    assert found["RuntimeReady"].status, found["RuntimeReady"].message
    # An empty CNI config dir: no pod network.
    assert not found["NetworkReady"].status
    assert found["NetworkReady"].reason == "NetworkPluginNotReady"
    assert str(agent.cni_conf) in found["NetworkReady"].message


def test_network_ready_follows_the_cni_config_dir(agent, cri):
    stub = cri.v1_grpc.RuntimeServiceStub(agent.channel())
    (agent.cni_conf / "10-lo.conf").write_text(LO_CONF)
    network = conditions(stub.Status(cri.v1.StatusRequest()))["NetworkReady"]
    assert not network.status and "loopback" in network.message  # the plugin binary is missing
    plugin = agent.cni_bin / "loopback"
    plugin.write_text("#!/bin/sh\n")
    os.chmod(plugin, 0o755)
    assert conditions(stub.Status(cri.v1.StatusRequest()))["NetworkReady"].status
    (agent.cni_conf / "10-lo.conf").unlink()
    assert not conditions(stub.Status(cri.v1.StatusRequest()))["NetworkReady"].status


def test_verbose_status_info_is_json(agent, cri):
    stub = cri.v1_grpc.RuntimeServiceStub(agent.channel())
    info = stub.Status(cri.v1.StatusRequest(verbose=True)).info
    assert {"config", "cniconfig", "runtimeConfig", "lastCNILoadStatus", "cgroups", "version"} <= set(info)
    parsed = {key: json.loads(value) for key, value in info.items()}
    assert parsed["config"]["criSocket"] == str(agent.socket)
    assert parsed["config"]["state"] == str(agent.state)
    # containerd's names too: critest finds the runtime's directories by them.
    assert parsed["config"]["stateDir"] == str(agent.state) and parsed["config"]["rootDir"] == str(agent.root)
    assert parsed["cniconfig"]["confDir"] == str(agent.cni_conf)
    assert "memory" in parsed["cgroups"]["v1"] or "memory" in parsed["cgroups"]["v2Controllers"]
    assert not stub.Status(cri.v1.StatusRequest()).info  # only when asked


def test_runtime_config_reports_cgroupfs_by_default(agent, cri):
    stub = cri.v1_grpc.RuntimeServiceStub(agent.channel())
    assert stub.RuntimeConfig(cri.v1.RuntimeConfigRequest()).linux.cgroup_driver == cri.v1.CGROUPFS


@pytest.mark.parametrize("version", ["v1", "v1alpha2"])
def test_update_runtime_config_keeps_the_pod_cidr(agent, cri, version):
    module, stubs = getattr(cri, version), getattr(cri, f"{version}_grpc")
    stub = stubs.RuntimeServiceStub(agent.channel())

    def update(cidr):
        return stub.UpdateRuntimeConfig(module.UpdateRuntimeConfigRequest(
            runtime_config=module.RuntimeConfig(network_config=module.NetworkConfig(pod_cidr=cidr))))

    update("10.244.3.0/24,fd00:10:244:3::/64")
    info = json.loads(stub.Status(module.StatusRequest(verbose=True)).info["runtimeConfig"])
    assert info["podCIDRs"] == ["10.244.3.0/24", "fd00:10:244:3::/64"]
    with pytest.raises(grpc.RpcError) as bad:
        update("10.244.3.0/40")
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "10.244.3.0/40" in bad.value.details()
    info = json.loads(stub.Status(module.StatusRequest(verbose=True)).info["runtimeConfig"])
    assert info["podCIDRs"] == ["10.244.3.0/24", "fd00:10:244:3::/64"]
    assert agent.wait_for_log("pod CIDR updated")
