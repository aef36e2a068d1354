import CNI
import CRI
import CRIProtobufC
import Containerizer
import Foundation
import ImageStore
import Logging
import Synchronization
import SwiftletConfig

#if canImport(Glibc)
import Glibc
#endif

/// The pods and containers of this node: pod sandboxes (pinned namespaces, CNI, the files
/// every container of the pod shares) and their containers, launched through the
/// containerizer over the image store's root filesystems. Everything it knows is recorded
/// under the state directory and read back at start.
///
/// The CRI RuntimeService is a thin translation of it; the node's pod workers will drive it
/// in-process through that same service.
public final class PodRuntime: Sendable {
    let containerizer: Containerizer
    let images: ImageStore
    let cni: CNIRunner
    let cniProbe: CNIConfigProbe
    let store: RecordStore
    /// `<state>/pods/<id>`: pinned namespaces, hostname, hosts, resolv.conf, shm.
    let podsDirectory: String
    /// `<root>/containers/<id>`: each container's root filesystem (overlay upper and work).
    let containersDirectory: String
    let monitorPath: String
    let events: ContainerEventBus
    let logger: Logger
    /// How `cgroup_parent` names are read: cgroupfs paths, or systemd slice names.
    let cgroupDriver: SwiftletConfig.CgroupDriver
    /// The pod CIDRs UpdateRuntimeConfig set (for CNI configs that ask for `ipRanges`).
    let podCIDRs: @Sendable () -> [String]
    /// The configured criu binary (CheckpointContainer); nil: the default place, then PATH.
    let criuPath: String?

    struct State: Sendable {
        private(set) var sandboxes: [String: SandboxRecord] = [:]
        private(set) var containers: [String: ContainerRecord] = [:]
        /// What ListPodSandbox and ListContainers return, built when a record changes, so the
        /// kubelet's relist every second copies no records; each entry also encoded (when first
        /// listed after it changed), and the whole unfiltered answer of each kept until the
        /// next change, so a relist that finds nothing new encodes nothing.
        private(set) var sandboxListing: [String: Listed<PodSandbox>] = [:]
        private(set) var containerListing: [String: Listed<Container>] = [:]
        private var encodedSandboxes: [UInt8]?
        private var encodedContainers: [UInt8]?
        /// Reserved names (sandboxes' and containers') -> id.
        var names: [String: String] = [:]
        /// The last CPU sample per container (time, usage), for usage_nano_cores.
        var cpuSamples: [String: (Int64, UInt64)] = [:]

        mutating func put(_ sandbox: SandboxRecord) {
            sandboxes[sandbox.id] = sandbox
            sandboxListing[sandbox.id] = Listed(item: PodSandbox(
                id: sandbox.id, metadata: sandbox.config.metadata, state: sandbox.state == .ready ? .sandboxReady : .sandboxNotready,
                createdAt: sandbox.createdAt, labels: sandbox.config.labels, annotations: sandbox.config.annotations,
                runtimeHandler: sandbox.runtimeHandler))
            encodedSandboxes = nil
        }

        /// Records a container with its current state (which ``markExited(_:)`` keeps up to date).
        mutating func put(_ container: ContainerRecord, state: CRI.ContainerState) {
            containers[container.id] = container
            var item = Listed<Container>.item(container)
            item.state = state
            containerListing[container.id] = Listed(item: item)
            encodedContainers = nil
        }

        /// The containerizer saw the container exit.
        mutating func markExited(_ id: String) {
            guard containerListing[id] != nil, containerListing[id]?.item.state != .containerExited else { return }
            containerListing[id]?.item.state = .containerExited
            containerListing[id]?.entry = nil
            encodedContainers = nil
        }

        mutating func removeSandbox(_ id: String) {
            sandboxes[id] = nil
            if sandboxListing.removeValue(forKey: id) != nil { encodedSandboxes = nil }
        }

        mutating func removeContainer(_ id: String) {
            containers[id] = nil
            if containerListing.removeValue(forKey: id) != nil { encodedContainers = nil }
            cpuSamples[id] = nil
        }

        // MARK: Lists

        /// The ids of the containers `filter` selects, oldest first.
        func containerIDs(_ filter: ContainerFilter?) -> [String] {
            let filter = filter.flatMap { Self.selectsAll($0) ? nil : $0 }
            var selected: [(Int64, String)] = []
            selected.reserveCapacity(containerListing.count)
            for (id, listed) in containerListing where filter.map({ Self.matches(listed.item, $0) }) ?? true {
                selected.append((listed.item.createdAt, id))
            }
            return Self.oldestFirst(selected)
        }

        /// The ids of the sandboxes `filter` selects, oldest first.
        func sandboxIDs(_ filter: PodSandboxFilter?) -> [String] {
            let filter = filter.flatMap { Self.selectsAll($0) ? nil : $0 }
            var selected: [(Int64, String)] = []
            selected.reserveCapacity(sandboxListing.count)
            for (id, listed) in sandboxListing where filter.map({ Self.matches(listed.item, $0) }) ?? true {
                selected.append((listed.item.createdAt, id))
            }
            return Self.oldestFirst(selected)
        }

        /// ListContainers' answer.
        func listedContainers(_ filter: ContainerFilter?) -> [Container] {
            containerIDs(filter).map { containerListing[$0]!.item }
        }

        /// ListPodSandbox's answer.
        func listedSandboxes(_ filter: PodSandboxFilter?) -> [PodSandbox] {
            sandboxIDs(filter).map { sandboxListing[$0]!.item }
        }

        /// ListContainersResponse for `filter`, encoded: its entries' encodings one after the
        /// other (a repeated field is its elements' records in order).
        mutating func encodedContainers(_ filter: ContainerFilter?) -> [UInt8] {
            let all = filter.map(Self.selectsAll) ?? true
            if all, let encoded = encodedContainers { return encoded }
            var bytes: [UInt8] = []
            for id in containerIDs(filter) {
                if containerListing[id]!.entry == nil {
                    containerListing[id]!.entry = ListContainersResponse(containers: [containerListing[id]!.item]).encode()
                }
                bytes += containerListing[id]!.entry!
            }
            if all { encodedContainers = bytes }
            return bytes
        }

        /// ListPodSandboxResponse for `filter`, encoded (see ``encodedContainers(_:)``).
        mutating func encodedSandboxes(_ filter: PodSandboxFilter?) -> [UInt8] {
            let all = filter.map(Self.selectsAll) ?? true
            if all, let encoded = encodedSandboxes { return encoded }
            var bytes: [UInt8] = []
            for id in sandboxIDs(filter) {
                if sandboxListing[id]!.entry == nil {
                    sandboxListing[id]!.entry = ListPodSandboxResponse(items: [sandboxListing[id]!.item]).encode()
                }
                bytes += sandboxListing[id]!.entry!
            }
            if all { encodedSandboxes = bytes }
            return bytes
        }

        /// By creation time, then id (the kubelet sorts again; this keeps answers stable).
        private static func oldestFirst(_ entries: [(Int64, String)]) -> [String] {
            entries.sorted { $0 < $1 }.map(\.1)
        }

        static func selectsAll(_ filter: ContainerFilter) -> Bool {
            filter.id.isEmpty && filter.state == nil && filter.podSandboxId.isEmpty && filter.labelSelector.isEmpty
        }

        static func selectsAll(_ filter: PodSandboxFilter) -> Bool {
            filter.id.isEmpty && filter.state == nil && filter.labelSelector.isEmpty
        }

        /// ListContainers' filter: by id (or prefix), sandbox id (or prefix), state and labels.
        static func matches(_ item: Container, _ filter: ContainerFilter) -> Bool {
            if !filter.id.isEmpty && !item.id.hasPrefix(filter.id) { return false }
            if !filter.podSandboxId.isEmpty && !item.podSandboxId.hasPrefix(filter.podSandboxId) { return false }
            if let wanted = filter.state, wanted.state != item.state { return false }
            return SwiftletRuntime.matches(item.labels, selector: filter.labelSelector)
        }

        /// ListPodSandbox's filter: by id (or prefix), state and labels.
        static func matches(_ item: PodSandbox, _ filter: PodSandboxFilter) -> Bool {
            if !filter.id.isEmpty && !item.id.hasPrefix(filter.id) { return false }
            if let wanted = filter.state, item.state != wanted.state { return false }
            return SwiftletRuntime.matches(item.labels, selector: filter.labelSelector)
        }
    }

    /// A ListContainers or ListPodSandbox entry, and its encoding (nil until listed after a
    /// change).
    struct Listed<Item: Sendable>: Sendable {
        var item: Item
        var entry: [UInt8]?

        init(item: Item) {
            self.item = item
        }
    }

    let state = Mutex(State())
    /// One lock per pod for its changes (see ``PodLocks``).
    let podLocks = PodLocks()

    /// - Parameters:
    ///   - containerizer: launches and recovers the containers (its state is separate).
    ///   - images: where images and container root filesystems come from.
    public init(configuration: SwiftletConfiguration, containerizer: Containerizer, images: ImageStore,
                events: ContainerEventBus, monitorPath: String = Launcher.defaultMonitorPath(),
                podCIDRs: @escaping @Sendable () -> [String] = { [] }, logger: Logger) {
        self.containerizer = containerizer
        self.cgroupDriver = configuration.cgroupDriver
        self.images = images
        self.cni = CNIRunner(binDirs: configuration.cniBinDirs, cacheDir: configuration.state + "/cni")
        self.cniProbe = CNIConfigProbe(confDir: configuration.cniConfDir, binDirs: configuration.cniBinDirs)
        self.store = RecordStore(state: configuration.state)
        self.podsDirectory = configuration.state + "/pods"
        self.containersDirectory = configuration.root + "/containers"
        self.monitorPath = monitorPath
        self.events = events
        self.podCIDRs = podCIDRs
        self.logger = logger
        self.criuPath = configuration.criuPath
    }

    /// The containerizer label naming the pod sandbox a container belongs to (CRI
    /// containers and pid-namespace holders); containers without it are not the pod
    /// runtime's (`swiftlet containers`, later the Mesos face).
    static let sandboxLabel = "io.swiftlet.pod-sandbox"

    /// Reads the records back (after the containerizer recovered its containers): sandboxes
    /// and containers reappear as they were; containers that ended meanwhile are exited.
    /// What a crash left half done is settled: a container launched but not yet recorded as
    /// started is started; containers of sandboxes that no longer exist, and pod containers
    /// with no record at all, are orphans and are removed.
    public func recover() {
        for directory in [podsDirectory, containersDirectory] {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o711])
        }
        let sandboxes = store.loadSandboxes()
        var containers = store.loadContainers()
        let sandboxIDs = Set(sandboxes.map(\.id))
        let holders = Set(sandboxes.compactMap(\.pidHolder))
        var orphans: [String] = []
        for index in containers.indices {
            if !sandboxIDs.contains(containers[index].sandboxID) {
                orphans.append(containers[index].id)
            } else if !containers[index].started, containerizer.info(id: containers[index].id) != nil {
                containers[index].started = true
                try? store.save(containers[index])
            }
        }
        let recorded = Set(containers.map(\.id))
        for info in containerizer.list() where info.labels[Self.sandboxLabel] != nil && !recorded.contains(info.id) && !holders.contains(info.id) {
            orphans.append(info.id)
        }
        for id in orphans {
            logger.warning("removing an orphaned pod container", metadata: ["id": "\(id)"])
            if containerizer.info(id: id) != nil { try? containerizer.destroy(id: id) }
            try? images.removeRootfs(at: rootfsDirectory(id))
            store.removeContainer(id)
        }
        // Pod directories with no record (a crash during RunPodSandbox, or a lost record):
        // their pinned namespaces and /dev/shm would never be released otherwise.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: podsDirectory)) ?? [] where !sandboxIDs.contains(name) {
            logger.warning("removing an orphaned pod directory", metadata: ["id": "\(name)"])
            pins(name).remove()
            while umount2(podDirectory(name) + "/shm", Int32(MNT_DETACH)) == 0 {}
            try? FileManager.default.removeItem(atPath: podDirectory(name))
        }
        // Root filesystems no record names (a reboot clears the state, not the root): their
        // upper layers and the leases that keep image snapshots alive go too.
        let kept = Set(containers.filter { sandboxIDs.contains($0.sandboxID) }.map(\.id))
        for name in (try? FileManager.default.contentsOfDirectory(atPath: containersDirectory)) ?? [] where !kept.contains(name) {
            logger.info("removing an unused container root filesystem", metadata: ["id": "\(name)"])
            try? images.removeRootfs(at: rootfsDirectory(name))
        }
        let adopted = containers.filter { sandboxIDs.contains($0.sandboxID) }
        state.withLock { state in
            for sandbox in sandboxes {
                state.put(sandbox)
                state.names[sandbox.name] = sandbox.id
            }
            for container in adopted {
                state.put(container, state: containerState(container))
                state.names[container.name] = container.id
            }
        }
        logger.info("pods recovered", metadata: [
            "sandboxes": "\(sandboxes.count)", "containers": "\(adopted.count)", "orphansRemoved": "\(orphans.count)",
        ])
    }

    /// The cgroup a pod's containers go under: its `cgroup_parent` as a path, or with the
    /// systemd driver a slice name expanded as systemd nests slices
    /// (`kubepods-burstable-pod1.slice` → `kubepods.slice/kubepods-burstable.slice/…`).
    func cgroupParent(of sandbox: SandboxRecord) -> String? {
        guard let parent = sandbox.cgroupParent else { return nil }
        guard cgroupDriver == .systemd, parent.hasSuffix(".slice"), !parent.contains("/") else { return parent }
        return Self.expandSlice(parent)
    }

    static func expandSlice(_ slice: String) -> String {
        let name = String(slice.dropLast(".slice".count))
        guard name != "-", !name.isEmpty else { return "/" }
        var path = "", prefix = ""
        for part in name.split(separator: "-", omittingEmptySubsequences: false) {
            prefix = prefix.isEmpty ? String(part) : prefix + "-" + part
            path += "/" + prefix + ".slice"
        }
        return path
    }

    // MARK: Lookups

    func sandbox(_ id: String) throws(CRIError) -> SandboxRecord {
        guard let sandbox = state.withLock({ $0.sandboxes[id] }) else {
            throw CRIError.notFound("pod sandbox \"\(id)\" not found")
        }
        return sandbox
    }

    func container(_ id: String) throws(CRIError) -> ContainerRecord {
        guard let container = state.withLock({ $0.containers[id] }) else {
            throw CRIError.notFound("container \"\(id)\" not found")
        }
        return container
    }

    /// Reserves `name` for `id`; a name in use by another object is refused, as containerd does.
    func reserve(name: String, for id: String) throws(CRIError) {
        let holder = state.withLock { state -> String? in
            if let holder = state.names[name] { return holder }
            state.names[name] = id
            return nil
        }
        if let holder {
            throw CRIError(.alreadyExists, "name \"\(name)\" is reserved for \"\(holder)\"")
        }
    }

    func release(name: String, of id: String) {
        state.withLock { state in
            if state.names[name] == id { state.names[name] = nil }
        }
    }
}

extension PodRuntime.Listed where Item == Container {
    /// The ListContainers entry of a container record (its state set by the caller).
    static func item(_ record: ContainerRecord) -> Container {
        Container(id: record.id, podSandboxId: record.sandboxID, metadata: record.config.metadata,
                  image: ImageSpec(image: record.imageName, annotations: record.config.image?.annotations ?? [:],
                                   userSpecifiedImage: record.config.image?.userSpecifiedImage ?? ""),
                  imageRef: record.imageRef, createdAt: record.createdAt, labels: record.config.labels,
                  annotations: record.config.annotations, imageId: record.imageID)
    }
}
