"""CNI through `swiftlet cni` (the runtime's CNI code) with Debian's real plugins, entirely
inside network namespaces this test creates: a stand-in "host" namespace that gets the
bridge, and a pod namespace that gets the veth. Nothing touches the machine's network."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import SWIFTLET

PLUGINS = "/usr/lib/cni"


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def namespaces():
    names = (f"swl-h-{os.getpid()}", f"swl-p-{os.getpid()}")
    for name in names:
        ip("netns", "add", name)
    yield names
    for name in names:
        ip("netns", "del", name, check=False)


@pytest.mark.skipif(not os.path.exists(f"{PLUGINS}/bridge"), reason="containernetworking-plugins not installed")
def test_add_check_del_with_bridge_and_host_local(tmp_path, namespaces):
    host, pod = namespaces
    conf = tmp_path / "10-swl.conflist"
    conf.write_text(json.dumps({"cniVersion": "1.0.0", "name": "swl-test", "plugins": [
        {"type": "bridge", "bridge": "swltest0", "isGateway": True, "ipMasq": False,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.99.0.0/24"}]], "dataDir": str(tmp_path / "ipam")}},
    ]}))
    base = ["ip", "netns", "exec", host, SWIFTLET, "cni"]
    common = ["--conf", str(conf), "--netns", f"/run/netns/{pod}", "--id", "c1", "--cni-bin-dir", PLUGINS,
              "--cache-dir", str(tmp_path / "cache")]
    added = subprocess.run(base + ["add", *common], capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    result = json.loads(added.stdout)
    address = result["ips"][0]["address"]
    assert address.startswith("10.99.0.") and address.endswith("/24")
    assert address.split("/")[0] in ip("-n", pod, "addr", "show", "eth0").stdout
    assert "swltest0" in ip("-n", host, "link", "show", "swltest0").stdout
    assert (tmp_path / "cache/results/swl-test-c1-eth0").exists()  # for DEL after a restart
    checked = subprocess.run(base + ["check", *common], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    deleted = subprocess.run(base + ["del", *common], capture_output=True, text=True)
    assert deleted.returncode == 0, deleted.stderr
    assert ip("-n", pod, "link", "show", "eth0", check=False).returncode != 0
    assert not (tmp_path / "cache/results/swl-test-c1-eth0").exists()
    assert not [p for p in (tmp_path / "ipam/swl-test").iterdir() if p.name.startswith("10.99.")]
    again = subprocess.run(base + ["del", *common], capture_output=True, text=True)  # DEL is idempotent
    assert again.returncode == 0, again.stderr


def test_plugin_errors_are_reported_with_the_plugin_and_message(tmp_path, namespaces):
    host, pod = namespaces
    conf = tmp_path / "bad.conf"
    conf.write_text(json.dumps({"cniVersion": "1.0.0", "name": "swl-bad", "type": "bridge", "bridge": "swlbad0",
                                "ipam": {"type": "host-local", "ranges": [[{"subnet": "not-a-subnet"}]]}}))
    failed = subprocess.run(["ip", "netns", "exec", host, SWIFTLET, "cni", "add", "--conf", str(conf), "--netns",
                             f"/run/netns/{pod}", "--id", "c2", "--cni-bin-dir", PLUGINS, "--cache-dir", str(tmp_path / "cache")],
                            capture_output=True, text=True)
    assert failed.returncode != 0
    assert "CNI network swl-bad, plugin bridge: ADD:" in failed.stderr
    missing = tmp_path / "missing.conf"
    missing.write_text(json.dumps({"cniVersion": "1.0.0", "name": "swl-missing", "type": "no-such-plugin"}))
    failed = subprocess.run([SWIFTLET, "cni", "add", "--conf", str(missing), "--netns", f"/run/netns/{pod}", "--id", "c3",
                             "--cni-bin-dir", PLUGINS, "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True)
    assert failed.returncode != 0 and "no plugin no-such-plugin" in failed.stderr
