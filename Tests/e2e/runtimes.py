"""CRI runtimes under test, interchangeable: the real `swiftlet run` (the `Agent` of conftest)
and Debian's containerd 1.6 + runc (a peer for differential checks). Each instance gets, under
a fresh /tmp dir, its own socket, root, state, pod log directories, a network namespace of
its own (the runtime runs inside it, so CNI bridges, iptables rules and pod IPs never touch
the machine's network), a CNI bridge + host-local + portmap config with its own bridge name
and IPAM data dir, and a cgroup parent of its own; `cleanup()` removes all of it even when a
test failed half way.

Both runtimes see the same offline test images, built from Debian's busybox-static:

* `BUSYBOX`     — a shell image: `Cmd ["sh"]`, root, busybox applets in /bin, /etc/passwd with
                  `app` (1000:1000, also in group `extra` 2000) and `nobody`.
* `ENTRYPOINT`  — the same files with `Entrypoint ["/bin/echo", "image-entrypoint"]`,
                  `Cmd ["image-cmd"]`, `User app`, `WorkingDir /data` and image env, to check
                  how a runtime merges a container config with an image config.
* `PAUSE`       — containerd's sandbox image (`sleep` as PID 1); swiftlet needs none.
"""
import gzip
import hashlib
import io
import json
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import types

import grpc

import images

BUSYBOX = "swiftlet.test/busybox:e2e"
ENTRYPOINT = "swiftlet.test/entrypoint:e2e"
PAUSE = "swiftlet.test/pause:e2e"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CNI_PLUGINS = pathlib.Path("/usr/lib/cni")
POD_SUBNET = "10.88.7.0/24"
POD_GATEWAY = "10.88.7.1"
MARKER_ENV = "SWL_E2E_MARKER"

# Every CRI call gets a deadline, so an implementation that hangs fails the test instead of
# hanging the suite; RunPodSandbox and CreateContainer do the most work.
CALL_TIMEOUT = 60
LONG_CALLS = {"RunPodSandbox": 120, "CreateContainer": 120, "StopPodSandbox": 120, "StopContainer": 120,
              "RemovePodSandbox": 120, "PullImage": 300}


# ---------------------------------------------------------------------------------------------
# Images

def _base_layer():
    busybox = pathlib.Path(shutil.which("busybox") or "/bin/busybox").read_bytes()
    applets = subprocess.run(["busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()

    def add(archive):
        f = images._file
        for directory, mode, owner in [("bin", 0o755, 0), ("etc", 0o755, 0), ("tmp", 0o1777, 0), ("root", 0o700, 0),
                                       ("var", 0o755, 0), ("run", 0o755, 0), ("dev", 0o755, 0), ("proc", 0o555, 0),
                                       ("sys", 0o555, 0), ("home", 0o755, 0), ("home/app", 0o755, 1000),
                                       ("data", 0o755, 1000), ("usr", 0o755, 0), ("usr/bin", 0o755, 0)]:
            f(archive, directory, kind=tarfile.DIRTYPE, mode=mode, uid=owner, gid=owner)
        f(archive, "bin/busybox", busybox, mode=0o755)
        for applet in applets:
            if applet != "busybox":
                f(archive, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox")
        f(archive, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
                                 b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        f(archive, "etc/group", b"root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n")
        f(archive, "data/file", b"payload\n", uid=1000, gid=1000)
    return images._tar(add)


def _oci_archive(path, name, layer, image_config):
    """An OCI archive (tar of an OCI layout) holding one image named `name`."""
    work = pathlib.Path(tempfile.mkdtemp(prefix="swl-img-", dir="/tmp"))
    try:
        blobs = work / "blobs/sha256"
        blobs.mkdir(parents=True)

        def put(data):
            digest = images.sha(data)
            (blobs / digest[7:]).write_bytes(data)
            return digest
        compressed = gzip.compress(layer, compresslevel=1, mtime=0)
        config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-11-29T00:00:00Z",
                             "config": image_config, "rootfs": {"type": "layers", "diff_ids": [images.sha(layer)]}},
                            sort_keys=True).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(compressed),
                        "size": len(compressed)}]}, sort_keys=True).encode()
        digest = put(manifest)
        (work / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        (work / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}}]}))
        subprocess.run(["tar", "-cf", str(path), "-C", str(work), "oci-layout", "index.json", "blobs"], check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return images.sha(config)


def build_test_images(directory):
    """{name: OCI archive path} for BUSYBOX, ENTRYPOINT and PAUSE."""
    directory = pathlib.Path(directory)
    layer = _base_layer()
    configs = {
        BUSYBOX: {"Env": [PATH_ENV], "Cmd": ["sh"]},
        ENTRYPOINT: {"Env": ["PATH=/bin", "IMAGE_ONLY=from-image", "OVERRIDE=from-image"],
                     "Entrypoint": ["/bin/echo", "image-entrypoint"], "Cmd": ["image-cmd"],
                     "WorkingDir": "/data", "User": "app"},
        PAUSE: {"Env": [PATH_ENV], "Entrypoint": ["/bin/sleep", "2147483647"]},
    }
    archives = {}
    for name, image_config in configs.items():
        path = directory / (name.split("/")[1].replace(":", "-") + ".oci.tar")
        _oci_archive(path, name, layer, image_config)
        archives[name] = path
    return archives


# ---------------------------------------------------------------------------------------------
# Host-side helpers

def run(*args, check=True, timeout=60, **kwargs):
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=timeout, **kwargs)


def netns_exec(netns, *args, check=True, timeout=60):
    return run("ip", "netns", "exec", netns, *args, check=check, timeout=timeout)


def processes_mentioning(text):
    """PIDs whose command line contains `text` (processes a runtime under test started)."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def pids_with_env(key, value):
    """Host PIDs whose environment holds key=value, oldest first."""
    needle = f"{key}={value}".encode()
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                start = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[19])
                found.append((start, int(entry.name)))
        except (OSError, ValueError, IndexError):
            pass
    return [pid for _, pid in sorted(found)]


def cgroup_paths(pid):
    """{controller: path} from /proc/<pid>/cgroup ("" is the v2 unified path)."""
    paths = {}
    for line in pathlib.Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller.removeprefix("name=")] = path
    return paths


def remove_cgroup_tree(relative):
    """rmdir a cgroup directory (and what is below it) in every hierarchy; kill what is left in it."""
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
                    procs = directory / "cgroup.procs"
                    try:
                        for pid in procs.read_text().split():
                            try:
                                os.kill(int(pid), signal.SIGKILL)
                            except ProcessLookupError:
                                pass
                    except OSError:
                        pass
                    time.sleep(0.1)


def unmount_below(directory):
    """Lazily unmounts every mount at or below `directory`, deepest first."""
    directory = str(directory)
    mounts = []
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == directory or point.startswith(directory + "/"):
            mounts.append(point)
    for point in sorted(set(mounts), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


class _Deadlines:
    """A stub whose every unary call carries a deadline (see CALL_TIMEOUT)."""

    def __init__(self, stub):
        self._stub = stub

    def __getattr__(self, name):
        method = getattr(self._stub, name)
        default = LONG_CALLS.get(name, CALL_TIMEOUT)

        def call(request, timeout=None, **kwargs):
            return method(request, timeout=timeout or default, **kwargs)
        call.future = getattr(method, "future", None)
        return call


# ---------------------------------------------------------------------------------------------
# Runtimes

class Runtime:
    """What both runtimes share: directories, the test netns, CNI config, cgroup parent, stubs."""

    name = "?"

    def __init__(self, cri, archives, network=True):
        self.cri = cri
        self.archives = archives
        self.token = secrets.token_hex(4)
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"swl-{self.name[:4]}-", dir="/tmp"))
        self.netns = f"swl-e2e-{self.token}"
        self.bridge = f"swlbr{self.token}"  # 13 characters: fits IFNAMSIZ
        self.cgroup_parent = f"/swl-e2e-{self.token}"
        self.logs = self.dir / "pod-logs"
        self.logs.mkdir()
        self.cni_conf = self.dir / "net.d"
        self.cni_bin = self.dir / "cni-bin"
        self.cni_cache = self.dir / "cni-cache"
        self.ipam = self.dir / "ipam"
        self.subnet, self.gateway = POD_SUBNET, POD_GATEWAY
        self.channels = []
        self.pods = []
        self.markers = {}
        self.log_paths = {}
        self._network = network
        self._process = None

    # -- setup ------------------------------------------------------------------------------

    def _prepare_network(self):
        run("ip", "netns", "add", self.netns)
        run("ip", "-n", self.netns, "link", "set", "lo", "up")
        netns_exec(self.netns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        self.cni_conf.mkdir(exist_ok=True)
        self.cni_bin.mkdir(exist_ok=True)
        for plugin in CNI_PLUGINS.iterdir():
            (self.cni_bin / plugin.name).symlink_to(plugin)
        if self._network:
            self.write_cni_config()

    def write_cni_config(self, name="10-swl-e2e.conflist"):
        """A bridge + host-local + portmap network (the one a kubeadm node typically has)."""
        conf = {"cniVersion": "0.4.0", "name": "swl-e2e", "plugins": [
            {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": self.subnet, "gateway": self.gateway}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(self.ipam)}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ]}
        (self.cni_conf / name).write_text(json.dumps(conf, indent=1))

    def wrap(self, args):
        """A command line that runs inside the test netns."""
        return ["nsenter", f"--net=/run/netns/{self.netns}", *args]

    @property
    def target(self):
        return f"unix://{self.socket}"

    def channel(self):
        channel = grpc.insecure_channel(self.target, options=[("grpc.max_receive_message_length", 64 << 20)])
        self.channels.append(channel)
        return channel

    def _stubs(self):
        channel = self.channel()
        self.rs = _Deadlines(self.cri.v1_grpc.RuntimeServiceStub(channel))
        self.ims = _Deadlines(self.cri.v1_grpc.ImageServiceStub(channel))

    def _wait_for_images(self, timeout=60):
        deadline = time.time() + timeout
        missing = list(self.archives)
        while time.time() < deadline:
            missing = [name for name in self.archives
                       if not self.ims.ImageStatus(self.cri.v1.ImageStatusRequest(image=self.cri.v1.ImageSpec(image=name))).HasField("image")]
            if not missing:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: images {missing} not visible through the CRI after import:\n{self.log()}")

    # -- pods and containers ----------------------------------------------------------------

    def pod_config(self, name=None, namespace="e2e", uid=None, attempt=0, labels=None, annotations=None,
                   hostname=None, dns=None, port_mappings=(), sysctls=None, security=None, log_directory=True):
        v1 = self.cri.v1
        name = name or f"pod-{secrets.token_hex(3)}"
        uid = uid or f"uid-{secrets.token_hex(8)}"
        log_dir = ""
        if log_directory:
            log_dir = self.logs / f"{namespace}_{name}_{uid}"
            log_dir.mkdir(parents=True, exist_ok=True)
        security = security or v1.LinuxSandboxSecurityContext()
        if not security.HasField("namespace_options"):
            # What the kubelet sends by default (NamespaceMode's zero value is POD, not CONTAINER).
            security.namespace_options.CopyFrom(self.default_namespaces())
        config = v1.PodSandboxConfig(
            metadata=v1.PodSandboxMetadata(name=name, uid=uid, namespace=namespace, attempt=attempt),
            hostname=hostname or "", log_directory=str(log_dir), labels=labels or {}, annotations=annotations or {},
            port_mappings=list(port_mappings),
            linux=v1.LinuxPodSandboxConfig(cgroup_parent=self.cgroup_parent, sysctls=sysctls or {},
                                           security_context=security))
        if dns is not None:
            config.dns_config.CopyFrom(dns)
        return config

    def default_namespaces(self):
        """The kubelet's defaults: the pod's network and IPC namespaces, a PID namespace per container."""
        v1 = self.cri.v1
        return v1.NamespaceOption(network=v1.POD, pid=v1.CONTAINER, ipc=v1.POD)

    def run_pod(self, config=None, **kwargs):
        """RunPodSandbox; returns (pod id, config). The pod is stopped and removed at cleanup."""
        config = config or self.pod_config(**kwargs)
        pod_id = self.rs.RunPodSandbox(self.cri.v1.RunPodSandboxRequest(config=config)).pod_sandbox_id
        assert pod_id, "RunPodSandbox returned an empty id"
        self.pods.append(pod_id)
        return pod_id, config

    def container_config(self, name=None, image=BUSYBOX, command=None, args=None, env=None, working_dir="",
                         mounts=(), labels=None, annotations=None, log_path=None, resources=None, security=None,
                         tty=False, stdin=False):
        v1 = self.cri.v1
        name = name or f"ctr-{secrets.token_hex(3)}"
        marker = secrets.token_hex(8)
        envs = [v1.KeyValue(key=k, value=v) for k, v in (env or {}).items()]
        envs.append(v1.KeyValue(key=MARKER_ENV, value=marker))
        security = security or v1.LinuxContainerSecurityContext()
        if not security.HasField("namespace_options"):
            security.namespace_options.CopyFrom(self.default_namespaces())
        linux = v1.LinuxContainerConfig(security_context=security)
        if resources is not None:
            linux.resources.CopyFrom(resources)
        config = v1.ContainerConfig(
            metadata=v1.ContainerMetadata(name=name, attempt=0), image=v1.ImageSpec(image=image),
            command=command or [], args=args or [], envs=envs, working_dir=working_dir, mounts=list(mounts),
            labels=labels or {}, annotations=annotations or {}, log_path=log_path if log_path is not None else f"{name}.log",
            tty=tty, stdin=stdin, linux=linux)
        return config

    def create_container(self, pod_id, pod_config, config=None, **kwargs):
        config = config or self.container_config(**kwargs)
        container_id = self.rs.CreateContainer(self.cri.v1.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=config, sandbox_config=pod_config)).container_id
        assert container_id, "CreateContainer returned an empty id"
        marker = next(e.value for e in config.envs if e.key == MARKER_ENV)
        self.markers[container_id] = marker
        self.log_paths[container_id] = pathlib.Path(pod_config.log_directory) / config.log_path
        return container_id

    def container_log(self, container_id):
        """The host path of the container's CRI log (the pod's log_directory + its log_path)."""
        return self.log_paths[container_id]

    def start(self, container_id):
        self.rs.StartContainer(self.cri.v1.StartContainerRequest(container_id=container_id))

    def run_container(self, pod_id, pod_config, wait_running=True, **kwargs):
        """Create + start; by default waits until the container is RUNNING."""
        container_id = self.create_container(pod_id, pod_config, **kwargs)
        self.start(container_id)
        if wait_running:
            self.wait_state(container_id, self.cri.v1.CONTAINER_RUNNING)
        return container_id

    def sleeper(self, pod_id, pod_config, **kwargs):
        """A long-running busybox container (sleep; ignores nothing)."""
        kwargs.setdefault("command", ["sleep", "100000"])
        return self.run_container(pod_id, pod_config, **kwargs)

    def status(self, container_id, verbose=False):
        return self.rs.ContainerStatus(self.cri.v1.ContainerStatusRequest(container_id=container_id, verbose=verbose)).status

    def pod_status(self, pod_id, verbose=False):
        return self.rs.PodSandboxStatus(self.cri.v1.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=verbose)).status

    def wait_state(self, container_id, state, timeout=60):
        deadline = time.time() + timeout
        status = self.status(container_id)
        while status.state != state and time.time() < deadline:
            time.sleep(0.1)
            status = self.status(container_id)
        assert status.state == state, (f"container {container_id} is {self.cri.v1.ContainerState.Name(status.state)}, "
                                       f"expected {self.cri.v1.ContainerState.Name(state)}: {status}")
        return status

    def wait_exited(self, container_id, timeout=60):
        return self.wait_state(container_id, self.cri.v1.CONTAINER_EXITED, timeout)

    def exec(self, container_id, cmd, timeout=30, check=False):
        """ExecSync → (stdout str, stderr str, exit code)."""
        response = self.rs.ExecSync(self.cri.v1.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=timeout),
                                    timeout=timeout + 60 if timeout else 120)
        out, err = response.stdout.decode(errors="replace"), response.stderr.decode(errors="replace")
        if check:
            assert response.exit_code == 0, f"{cmd} exited {response.exit_code}: stdout={out!r} stderr={err!r}"
        return out, err, response.exit_code

    def sh(self, container_id, script, timeout=30):
        """Runs a shell script in the container; asserts exit 0 and returns stdout, stripped."""
        return self.exec(container_id, ["sh", "-c", script], timeout=timeout, check=True)[0].strip()

    def stop_container(self, container_id, timeout=0):
        """StopContainer; the call must end within the stop timeout plus 30 s of slack."""
        self.rs.StopContainer(self.cri.v1.StopContainerRequest(container_id=container_id, timeout=timeout),
                              timeout=timeout + 30)

    def remove_container(self, container_id):
        self.rs.RemoveContainer(self.cri.v1.RemoveContainerRequest(container_id=container_id))

    def stop_pod(self, pod_id):
        self.rs.StopPodSandbox(self.cri.v1.StopPodSandboxRequest(pod_sandbox_id=pod_id))

    def remove_pod(self, pod_id):
        self.rs.RemovePodSandbox(self.cri.v1.RemovePodSandboxRequest(pod_sandbox_id=pod_id))

    def list_pods(self, **filter_fields):
        v1 = self.cri.v1
        request = v1.ListPodSandboxRequest(filter=v1.PodSandboxFilter(**filter_fields)) if filter_fields else v1.ListPodSandboxRequest()
        return list(self.rs.ListPodSandbox(request).items)

    def list_containers(self, **filter_fields):
        v1 = self.cri.v1
        request = v1.ListContainersRequest(filter=v1.ContainerFilter(**filter_fields)) if filter_fields else v1.ListContainersRequest()
        return list(self.rs.ListContainers(request).containers)

    def log_file(self, pod_config, container_config_or_path):
        path = container_config_or_path if isinstance(container_config_or_path, str) else container_config_or_path.log_path
        return pathlib.Path(pod_config.log_directory) / path

    # -- host views of a container ----------------------------------------------------------

    def host_pid(self, container_id, timeout=30):
        """The host PID of the container's first process (found by the marker env of its config)."""
        deadline = time.time() + timeout
        while True:
            pids = pids_with_env(MARKER_ENV, self.markers[container_id])
            if pids:
                return pids[0]
            if time.time() > deadline:
                raise AssertionError(f"no host process of container {container_id}")
            time.sleep(0.1)

    def cgroup_dir(self, container_id, controller):
        """The host directory of the container's cgroup for one controller (v1), or the v2 dir."""
        paths = cgroup_paths(self.host_pid(container_id))
        if controller in paths:
            return pathlib.Path("/sys/fs/cgroup") / controller / paths[controller].lstrip("/")
        base = pathlib.Path("/sys/fs/cgroup/unified") if pathlib.Path("/sys/fs/cgroup/unified").is_dir() else pathlib.Path("/sys/fs/cgroup")
        return base / paths[""].lstrip("/")

    # -- teardown ---------------------------------------------------------------------------

    def _remove_everything_through_cri(self):
        """Best effort: stop and remove every pod the runtime knows (and those this test made)."""
        if not hasattr(self, "rs"):
            return
        ids = list(self.pods)
        try:
            ids += [pod.id for pod in self.list_pods() if pod.id not in ids]
        except grpc.RpcError:
            pass
        for pod_id in ids:
            for call in (self.stop_pod, self.remove_pod):
                try:
                    call(pod_id)
                except grpc.RpcError:
                    pass

    def _close_channels(self):
        for channel in self.channels:
            channel.close()
        self.channels = []

    def _kill_leftovers(self):
        """Processes the runtime started that outlived it (shims, monitors, containers)."""
        for _ in range(3):
            pids = processes_mentioning(str(self.dir))
            for marker in self.markers.values():
                pids += pids_with_env(MARKER_ENV, marker)
            if not pids:
                return
            for pid in set(pids):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)

    def _teardown_host(self):
        self._kill_leftovers()
        remove_cgroup_tree(self.cgroup_parent)
        unmount_below(self.dir)
        # Pod network namespaces the runtime made and left: bind mounts of nsfs in /run/netns.
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        return ""


class SwiftletRuntime(Runtime):
    name = "swiftlet"

    def __init__(self, cri, archives, network=True):
        super().__init__(cri, archives, network)
        from conftest import Agent
        self.agent = Agent()
        shutil.rmtree(self.dir, ignore_errors=True)  # use the agent's own directory instead
        self.dir = self.agent.dir
        self.logs = self.dir / "pod-logs"
        self.logs.mkdir()
        self.cni_conf, self.cni_bin = self.agent.cni_conf, self.agent.cni_bin
        self.cni_cache = self.dir / "cni-cache"
        self.ipam = self.dir / "ipam"
        self.socket = self.agent.socket
        self.cgroups_root = f"swl-e2e-{self.token}-agent"

    def boot(self):
        from conftest import SWIFTLET
        self._prepare_network()
        for name, archive in self.archives.items():
            if name == PAUSE:
                continue
            run(SWIFTLET, "images", "import", "--root", str(self.agent.root), str(archive), timeout=120)
        self.agent.config.write_text(f"cgroupsRoot: {self.cgroups_root}\n")
        self.agent.args = self.wrap(self.agent.args)
        self.agent.start()
        self._stubs()
        self.archives = {k: v for k, v in self.archives.items() if k != PAUSE}
        self._wait_for_images()
        return self

    def log(self):
        return self.agent.log()

    def cleanup(self):
        try:
            self._remove_everything_through_cri()
            self._close_channels()
            self.agent.stop(timeout=30)
        except Exception:
            pass
        finally:
            if self.agent.process is not None and self.agent.process.poll() is None:
                self.agent.process.kill()
                self.agent.process.wait()
            if getattr(self.agent, "log_file", None):
                self.agent.log_file.close()
            self._teardown_host()
            remove_cgroup_tree(self.cgroups_root)


CONTAINERD_CONFIG = """\
version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "{dir}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  max_container_log_line_size = 16384
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
    max_conf_num = 1
"""


class ContainerdRuntime(Runtime):
    name = "containerd"

    def __init__(self, cri, archives, network=True):
        super().__init__(cri, archives, network)
        self.root = self.dir / "root"
        self.state = self.dir / "state"
        self.socket = self.dir / "containerd.sock"
        self.config = self.dir / "config.toml"
        self.log_path = self.dir / "containerd.log"

    def boot(self):
        self._prepare_network()
        self.config.write_text(CONTAINERD_CONFIG.format(
            root=self.root, state=self.state, socket=self.socket, dir=self.dir, pause=PAUSE,
            cni_bin=self.cni_bin, cni_conf=self.cni_conf))
        self._log_file = open(self.log_path, "ab")
        self._process = subprocess.Popen(self.wrap(["containerd", "--config", str(self.config)]),
                                         stdout=self._log_file, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while not self.socket.exists():
            if self._process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"containerd did not start:\n{self.log()}")
            time.sleep(0.05)
        channel = grpc.insecure_channel(self.target)
        grpc.channel_ready_future(channel).result(timeout=30)
        channel.close()
        for archive in self.archives.values():
            run("ctr", "--address", str(self.socket), "-n", "k8s.io", "images", "import", str(archive), timeout=120)
        self._stubs()
        self._wait_for_images()
        # The CRI plugin is ready once it answers Status with RuntimeReady.
        deadline = time.time() + 60
        while time.time() < deadline:
            conditions = {c.type: c.status for c in self.rs.Status(self.cri.v1.StatusRequest()).status.conditions}
            if conditions.get("RuntimeReady") and (conditions.get("NetworkReady") or not self._network):
                break
            time.sleep(0.1)
        return self

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cleanup(self):
        try:
            self._remove_everything_through_cri()
        except Exception:
            pass
        self._close_channels()
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if getattr(self, "_log_file", None):
            self._log_file.close()
        self._teardown_host()


RUNTIMES = {"swiftlet": SwiftletRuntime, "containerd": ContainerdRuntime}


def make_runtime(kind, cri, archives, network=True):
    return RUNTIMES[kind](cri, dict(archives), network)


# ---------------------------------------------------------------------------------------------
# CRI log files

def parse_cri_log(path):
    """Records of a CRI log file: [(timestamp str, stream, tag, text)], each line checked
    against `<RFC3339Nano> <stdout|stderr> <P|F> <text>`."""
    import re
    pattern = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([PF]) (.*)$")
    records = []
    try:
        data = pathlib.Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return []
    for line in data.split("\n")[:-1]:  # a record is only complete with its newline
        match = pattern.match(line)
        assert match, f"not a CRI log line in {path}: {line!r}"
        records.append(match.groups())
    return records


def log_text(path, stream=None):
    """The text a container wrote, P records joined to the next, one entry per F record."""
    lines, partial = [], ""
    for _, record_stream, tag, text in parse_cri_log(path):
        if stream and record_stream != stream:
            continue
        partial += text
        if tag == "F":
            lines.append(partial)
            partial = ""
    return lines


def wait_for(predicate, timeout=60, interval=0.1, message="condition"):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
