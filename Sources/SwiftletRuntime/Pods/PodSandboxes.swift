import CNI
import CRI
import Containerizer
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Pod sandboxes: no pause container. The pod's network, IPC and UTS namespaces are pinned on
/// files (NamespacePins); a pod that shares its PID namespace gets a holder process (PID 1
/// there); the pod's /etc/hostname, /etc/hosts, /etc/resolv.conf and /dev/shm live in
/// `<state>/pods/<id>` and are mounted into each of its containers.
extension PodRuntime {
    /// Where pod `id` keeps its files.
    func podDirectory(_ id: String) -> String { "\(podsDirectory)/\(id)" }
    func pins(_ id: String) -> NamespacePins { NamespacePins(directory: podDirectory(id) + "/ns") }

    /// Sysctls a pod may set: those its own network or IPC namespace isolates.
    static func namespacedSysctl(_ key: String, hostNetwork: Bool, hostIPC: Bool) -> Bool {
        let name = key.replacingOccurrences(of: "/", with: ".")
        if name.hasPrefix("net.") { return !hostNetwork }
        let ipc = ["kernel.shmmax", "kernel.shmmni", "kernel.shmall", "kernel.shm_rmid_forced", "kernel.msgmax",
                   "kernel.msgmnb", "kernel.msgmni", "kernel.sem"]
        if ipc.contains(name) || name.hasPrefix("fs.mqueue.") { return !hostIPC }
        return false
    }

    /// RunPodSandbox: namespaces, sysctls, files, the pid holder, the network. On failure
    /// everything made is undone.
    public func runPodSandbox(_ config: PodSandboxConfig, runtimeHandler: String) async throws(CRIError) -> String {
        guard let metadata = config.metadata, !metadata.name.isEmpty, !metadata.namespace.isEmpty, !metadata.uid.isEmpty else {
            throw CRIError.invalidArgument("pod sandbox config needs metadata with name, namespace and uid")
        }
        guard runtimeHandler.isEmpty || runtimeHandler == "swiftlet" || runtimeHandler == "runc" else {
            throw CRIError(.notFound, "no runtime handler \"\(runtimeHandler)\" (this node has only the default)")
        }
        let id = randomID()
        let name = "\(metadata.name)_\(metadata.namespace)_\(metadata.uid)_\(metadata.attempt)"
        try reserve(name: name, for: id)
        var sandbox = SandboxRecord(id: id, name: name, createdAt: nowNanoseconds(), state: .ready, runtimeHandler: runtimeHandler, config: config)
        let options = sandbox.namespaceOptions
        for (key, _) in config.linux?.sysctls ?? [:] where !Self.namespacedSysctl(key, hostNetwork: sandbox.hostNetwork, hostIPC: sandbox.hostIPC) {
            release(name: name, of: id)
            throw CRIError.invalidArgument("sysctl \"\(key)\" is not allowed: only namespaced sysctls (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) of the pod's own namespaces")
        }
        if let parent = config.linux?.cgroupParent, parent.split(separator: "/").contains("..") {
            release(name: name, of: id)
            throw CRIError.invalidArgument("cgroup parent \"\(parent)\" must not contain ..")
        }
        do {
            _ = try PodUserNamespace.of(config)
        } catch {
            release(name: name, of: id)
            throw error
        }
        do {
            sandbox = try await Offload.throwing { [sandbox] () throws(CRIError) -> SandboxRecord in
                var made = sandbox
                try self.setUpSandbox(&made, options: options)
                return made
            }
            try await attachNetwork(&sandbox)
            try store.save(sandbox)
        } catch {
            logger.warning("pod sandbox failed to start; undoing", metadata: ["pod": "\(name)", "id": "\(id)", "error": "\(error)"])
            let failed = sandbox
            await Offload.run { self.tearDown(failed, removeFiles: true) }
            release(name: name, of: id)
            throw error
        }
        state.withLock { $0.put(sandbox) }
        logger.info("pod sandbox started", metadata: ["pod": "\(name)", "id": "\(id)", "ip": "\(sandbox.ips.first ?? "")"])
        return id
    }

    /// Namespaces, sysctls, files and the pid holder (blocking).
    private func setUpSandbox(_ sandbox: inout SandboxRecord, options: NamespaceOption) throws(CRIError) {
        let directory = podDirectory(sandbox.id)
        let config = sandbox.config
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o711])
        } catch {
            throw CRIError(.internal, "cannot create \(directory): \(error)")
        }
        var kinds: Set<NamespacePins.Kind> = []
        if !sandbox.hostNetwork { kinds.formUnion([.net, .uts]) }
        if !sandbox.hostIPC { kinds.insert(.ipc) }
        let userNamespace = sandbox.userNamespace
        if userNamespace != nil { kinds.insert(.user) }
        let hostname = sandbox.hostNetwork ? Self.hostHostname() : (config.hostname.isEmpty ? config.metadata?.name ?? "" : config.hostname)
        let sysctls = (config.linux?.sysctls ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        do {
            try pins(sandbox.id).create(kinds, hostname: hostname, sysctls: sysctls, uidMap: userNamespace.map { [$0.uid] } ?? [],
                                        gidMap: userNamespace.map { [$0.gid] } ?? [], monitorPath: monitorPath)
        } catch {
            throw CRIError(error.detail.contains("sysctl") ? .invalidArgument : .internal, "pod sandbox namespaces: \(error)")
        }
        sandbox.pinned = NamespacePins.Kind.allCases.filter(kinds.contains)

        // The files every container of the pod mounts.
        try write(directory + "/hostname", hostname + "\n")
        try write(directory + "/hosts", sandbox.hostNetwork ? Self.read("/etc/hosts") : Self.defaultHosts)
        try write(directory + "/resolv.conf", Self.resolvConf(config.dnsConfig))
        if !sandbox.hostIPC {
            let shm = directory + "/shm"
            mkdir(shm, 0o1777)
            guard mount("shm", shm, "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), "mode=1777,size=65536k") == 0 else {
                throw CRIError(.internal, "cannot mount the pod's /dev/shm at \(shm): \(String(cString: strerror(errno)))")
            }
        }
        if let logDirectory = config.logDirectory.isEmpty ? nil : config.logDirectory {
            try? FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        }
        if options.pid == .pod {
            // A shared PID namespace needs a process: a holder, PID 1 of the pod's namespace.
            let holderID = sandbox.id + "-pid"
            let root = directory + "/holder-root"
            mkdir(root, 0o755)
            var holder = LaunchConfig(rootfs: root, args: [])
            holder.holdsPIDNamespace = true
            holder.cgroupParent = cgroupParent(of: sandbox)
            holder.labels = [Self.sandboxLabel: sandbox.id]
            holder.capabilities = try! Capabilities(names: [])
            if !sandbox.hostNetwork { holder.namespaces.network = .join(pins(sandbox.id).path(.net)); holder.namespaces.uts = .join(pins(sandbox.id).path(.uts)) }
            else { holder.namespaces.network = .host; holder.namespaces.uts = .host }
            holder.namespaces.ipc = sandbox.hostIPC ? .host : .join(pins(sandbox.id).path(.ipc))
            do {
                try containerizer.launch(id: holderID, config: holder)
            } catch {
                throw CRIError(.internal, "pod sandbox pid namespace: \(error)")
            }
            sandbox.pidHolder = holderID
        }
    }

    private func write(_ path: String, _ text: String) throws(CRIError) {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw CRIError(.internal, "cannot write \(path): \(error)")
        }
    }

    static func read(_ path: String) -> String {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    static func hostHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return String(cString: buffer)
    }

    /// containerd's /etc/hosts for a pod with its own network.
    static let defaultHosts = """
        127.0.0.1\tlocalhost
        ::1\tlocalhost ip6-localhost ip6-loopback
        fe00::0\tip6-localnet
        ff00::0\tip6-mcastprefix
        ff02::1\tip6-allnodes
        ff02::2\tip6-allrouters

        """

    /// The pod's resolv.conf: its DNS config, or the host's when it has none.
    static func resolvConf(_ dns: DNSConfig?) -> String {
        guard let dns, !(dns.servers.isEmpty && dns.searches.isEmpty && dns.options.isEmpty) else {
            return read("/etc/resolv.conf")
        }
        var lines: [String] = []
        if !dns.searches.isEmpty { lines.append("search " + dns.searches.joined(separator: " ")) }
        lines += dns.servers.map { "nameserver \($0)" }
        if !dns.options.isEmpty { lines.append("options " + dns.options.joined(separator: " ")) }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: Network

    /// CNI ADD on the pod's network namespace, with its port mappings.
    private func attachNetwork(_ sandbox: inout SandboxRecord) async throws(CRIError) {
        guard !sandbox.hostNetwork else { return }
        guard let network = cniProbe.scan().podNetwork else {
            // As containerd: a pod network needs a CNI config (host-network pods do not).
            throw CRIError(.failedPrecondition, "failed to set up network for sandbox: cni config uninitialized: no usable network config in \(cniProbe.confDir) (plugins from \(cniProbe.binDirs.joined(separator: ":")))")
        }
        let config: CNINetworkConfig
        do {
            config = try CNINetworkConfig(file: network.file)
        } catch {
            throw CRIError(.internal, "CNI config \(network.file): \(error)")
        }
        let (runtimeConfig, arguments) = cniParameters(sandbox)
        let netns = pins(sandbox.id).path(.net)
        let cni = self.cni, id = sandbox.id
        let result = await Offload.run { Result { () throws(CNIError) -> CNIResult in
            try cni.add(config, containerID: id, netns: netns, runtimeConfig: runtimeConfig.value, arguments: arguments)
        } }
        switch result {
        case .success(let attached):
            sandbox.network = network.file
            sandbox.ips = attached.addresses.map { String($0.split(separator: "/").first ?? Substring($0)) }
        case .failure(let error):
            sandbox.network = network.file  // so the teardown runs DEL for what ADD may have done
            throw CRIError(.internal, "failed to set up pod network: plugin \(error)")
        }
    }

    /// A non-Sendable dictionary passed to a blocking helper once.
    struct RuntimeConfigBox: @unchecked Sendable { var value: CNIRunner.RuntimeConfig }

    private func cniParameters(_ sandbox: SandboxRecord) -> (RuntimeConfigBox, CNIRunner.Arguments) {
        let metadata = sandbox.config.metadata ?? PodSandboxMetadata()
        let portMappings: [[String: Any]] = sandbox.config.portMappings.filter { $0.hostPort > 0 }.map { mapping in
            var entry: [String: Any] = ["hostPort": Int(mapping.hostPort), "containerPort": Int(mapping.containerPort),
                                        "protocol": Self.protocolName(mapping)]
            if !mapping.hostIp.isEmpty { entry["hostIP"] = mapping.hostIp }
            return entry
        }
        var runtimeConfig: CNIRunner.RuntimeConfig = ["portMappings": portMappings]
        let cidrs = podCIDRs()
        if !cidrs.isEmpty { runtimeConfig["ipRanges"] = [cidrs.map { ["subnet": $0] }] }
        let arguments: CNIRunner.Arguments = [
            ("K8S_POD_NAMESPACE", metadata.namespace), ("K8S_POD_NAME", metadata.name),
            ("K8S_POD_INFRA_CONTAINER_ID", sandbox.id), ("K8S_POD_UID", metadata.uid),
        ]
        return (RuntimeConfigBox(value: runtimeConfig), arguments)
    }

    static func protocolName(_ mapping: PortMapping) -> String {
        switch mapping.protocol {
        case .udp: "udp"
        case .sctp: "sctp"
        default: "tcp"
        }
    }

    /// CNI DEL (idempotent: a second DEL, or a DEL without ADD, is fine).
    private func detachNetwork(_ sandbox: SandboxRecord) throws(CNIError) {
        guard let file = sandbox.network, !sandbox.hostNetwork else { return }
        let network = (try? CNINetworkConfig(file: file)) ?? cniProbe.scan().podNetwork.flatMap { try? CNINetworkConfig(file: $0.file) }
        guard let network else { return }
        let (runtimeConfig, arguments) = cniParameters(sandbox)
        try cni.del(network, containerID: sandbox.id, netns: pins(sandbox.id).path(.net), runtimeConfig: runtimeConfig.value, arguments: arguments)
    }

    // MARK: Stop and remove

    /// StopPodSandbox: every container killed, the network torn down, the pid holder
    /// stopped. Idempotent; an unknown id is not an error.
    public func stopPodSandbox(_ id: String) async throws(CRIError) {
        guard state.withLock({ $0.sandboxes[id] != nil }) else { return }
        try await podLocks.withLock(id) { () throws(CRIError) in try await stopPodSandboxLocked(id) }
    }

    private func stopPodSandboxLocked(_ id: String) async throws(CRIError) {
        guard let sandbox = state.withLock({ $0.sandboxes[id] }) else { return }
        let containers = state.withLock { $0.containers.values.filter { $0.sandboxID == id }.map(\.id) }
        guard sandbox.tornDown != true else {
            try await stopContainers(containers)
            return
        }
        // CNI DEL (plugin executions, and the kernel deleting the pod's veth) neither waits for
        // the containers to die nor they for it: it runs while they are killed, and while the
        // record of the stopped sandbox is written (put in place once it is true).
        async let detached = Offload.run { Result { () throws(CNIError) in try self.detachNetwork(sandbox) } }
        var stopped = sandbox
        stopped.state = .notReady
        stopped.tornDown = true
        let store = self.store, record = stopped
        async let prepared = Offload.run { Result { () throws(CRIError) in try store.prepareState(record) } }
        var stopFailure: CRIError?
        do {
            try await stopContainers(containers)
        } catch {
            stopFailure = error
        }
        // A DEL that fails fails the stop (the network stays attached, the kubelet retries),
        // as containerd does: its IP and port mappings must not leak.
        let network = await detached
        let preparedRecord = await prepared
        if stopFailure != nil || (try? network.get()) == nil { (try? preparedRecord.get())?.discard() }
        if let stopFailure { throw stopFailure }
        if case .failure(let error) = network {
            throw CRIError(.unknown, "failed to destroy network for sandbox \(id): \(error)")
        }
        await Offload.run { self.tearDown(sandbox, removeFiles: false, detach: false) }
        state.withLock { $0.put(stopped) }
        try preparedRecord.get().commit()
        logger.info("pod sandbox stopped", metadata: ["pod": "\(sandbox.name)", "id": "\(id)"])
    }

    /// Stops a pod's containers (SIGKILL, all at once) and releases the root filesystems of
    /// those that ended: nothing can run in them again (the pod is not ready, so nothing
    /// starts), and unmounting an overlay syncs the file system under it, which takes a while
    /// on a busy disk — here it overlaps CNI DEL instead of lengthening RemovePodSandbox.
    private func stopContainers(_ ids: [String]) async throws(CRIError) {
        let failures = await withTaskGroup(of: CRIError?.self) { group in
            for id in ids {
                group.addTask {
                    do throws(CRIError) {
                        try await self.stopContainer(id, timeout: 0)
                    } catch {
                        return error
                    }
                    await self.releaseRootfs(id)
                    return nil
                }
            }
            var failures: [CRIError] = []
            for await failure in group {
                if let failure { failures.append(failure) }
            }
            return failures
        }
        if let failure = failures.first { throw failure }
    }

    /// Undoes a sandbox's namespaces, network (unless `detach` is false: StopPodSandbox did)
    /// and holder; with `removeFiles`, its directory (deleted in the background: the pod's
    /// id is never reused, and a directory no record names is removed at the next start).
    func tearDown(_ sandbox: SandboxRecord, removeFiles: Bool, detach: Bool = true) {
        if detach {
            do {
                try detachNetwork(sandbox)
            } catch {
                logger.warning("CNI DEL failed", metadata: ["id": "\(sandbox.id)", "error": "\(error)"])
            }
        }
        if let holder = sandbox.pidHolder, containerizer.info(id: holder) != nil {
            try? containerizer.destroy(id: holder, deferRemoval: true)
        }
        // The pinned namespaces end here. Their files go with the directory, or now: a DEL
        // after a crash must find no namespace there (plugins accept a missing one, not an
        // empty file).
        if removeFiles { pins(sandbox.id).unpin() } else { pins(sandbox.id).remove() }
        let directory = podDirectory(sandbox.id)
        while umount2(directory + "/shm", Int32(MNT_DETACH)) == 0 {}
        if removeFiles { containerizer.removals.remove(directory) }
    }

    /// RemovePodSandbox: stops it if needed, removes its containers and everything it made.
    /// An unknown id is not an error.
    public func removePodSandbox(_ id: String) async throws(CRIError) {
        guard state.withLock({ $0.sandboxes[id] != nil }) else { return }
        try await podLocks.withLock(id) { () throws(CRIError) in try await removePodSandboxLocked(id) }
    }

    private func removePodSandboxLocked(_ id: String) async throws(CRIError) {
        guard let sandbox = state.withLock({ $0.sandboxes[id] }) else { return }
        if sandbox.tornDown != true { try await stopPodSandboxLocked(id) }
        let containers = state.withLock { $0.containers.values.filter { $0.sandboxID == id }.map(\.id) }
        for container in containers { try await removeContainerLocked(container) }
        // StopPodSandbox (above, or earlier) ran CNI DEL already.
        await Offload.run { self.tearDown(sandbox, removeFiles: true, detach: false) }
        store.removeSandbox(id)
        state.withLock { state in
            state.removeSandbox(id)
            if state.names[sandbox.name] == id { state.names[sandbox.name] = nil }
        }
        logger.info("pod sandbox removed", metadata: ["pod": "\(sandbox.name)", "id": "\(id)"])
    }

    // MARK: Status

    /// PodSandboxStatus's answer.
    func status(of sandbox: SandboxRecord) -> PodSandboxStatus {
        var status = PodSandboxStatus(
            id: sandbox.id, metadata: sandbox.config.metadata, state: sandbox.state == .ready ? .sandboxReady : .sandboxNotready,
            createdAt: sandbox.createdAt, labels: sandbox.config.labels, annotations: sandbox.config.annotations,
            runtimeHandler: sandbox.runtimeHandler)
        if !sandbox.hostNetwork {
            status.network = PodSandboxNetworkStatus(ip: sandbox.ips.first ?? "", additionalIps: sandbox.ips.dropFirst().map { PodIP(ip: $0) })
        }
        var options = sandbox.namespaceOptions
        if sandbox.userNamespace == nil { options.usernsOptions = nil }
        status.linux = LinuxPodSandboxStatus(namespaces: Namespace(options: options))
        return status
    }

    /// The sandbox's verbose `info`: what containerd reports that applies here.
    func verboseInfo(of sandbox: SandboxRecord) -> [String: String] {
        struct Info: Encodable {
            var pid: Int32
            var netNamespacePath: String
            var pinnedNamespaces: [String]
            var pidNamespaceHolder: String?
            var cniNetwork: String?
            var podDirectory: String
        }
        let holderPid = sandbox.pidHolder.flatMap { containerizer.info(id: $0)?.pid } ?? 0
        let info = Info(pid: holderPid, netNamespacePath: sandbox.hostNetwork ? "" : pins(sandbox.id).path(.net),
                        pinnedNamespaces: sandbox.pinned.map(\.rawValue), pidNamespaceHolder: sandbox.pidHolder,
                        cniNetwork: sandbox.network, podDirectory: podDirectory(sandbox.id))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return ["info": (try? encoder.encode(info)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"]
    }

    /// ListPodSandbox: by id (or prefix), state and labels; oldest first.
    func listSandboxes(_ filter: PodSandboxFilter?) -> [PodSandbox] {
        state.withLock { $0.listedSandboxes(filter) }
    }

    /// ListPodSandbox's response, encoded (kept while nothing changes).
    func listSandboxesEncoded(_ filter: PodSandboxFilter?) -> [UInt8] {
        state.withLock { $0.encodedSandboxes(filter) }
    }
}
