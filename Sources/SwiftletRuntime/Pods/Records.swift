import CRI
import CRIProtobufC
import Containerizer
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A pod sandbox as the runtime keeps it: the kubelet's config (as it sent it, protobuf) and
/// what running it made.
struct SandboxRecord: Sendable, Codable {
    enum State: String, Sendable, Codable { case ready, notReady }

    var id: String
    var name: String
    var createdAt: Int64
    var state: State
    /// The pod's IPs (the CNI result's), the first one primary.
    var ips: [String] = []
    /// The CNI network the pod was attached to, if any.
    var network: String?
    /// The containerizer id of the pod's pid-namespace holder (shared PID namespace pods).
    var pidHolder: String?
    /// Namespaces pinned for the pod (net, ipc, uts).
    var pinned: [NamespacePins.Kind] = []
    var runtimeHandler: String = ""
    /// StopPodSandbox finished: the network is detached and the namespaces unpinned. (A pod
    /// can be not ready without that: its pid-namespace holder died.)
    var tornDown: Bool?
    /// Not persisted (its own file, protobuf).
    var config = PodSandboxConfig()

    enum CodingKeys: String, CodingKey { case id, name, createdAt, state, ips, network, pidHolder, pinned, runtimeHandler, tornDown }

    var namespaceOptions: NamespaceOption { config.linux?.securityContext?.namespaceOptions ?? NamespaceOption() }
    var hostNetwork: Bool { namespaceOptions.network == .node }
    var hostIPC: Bool { namespaceOptions.ipc == .node }
    /// The pod's user namespace, nil when it uses the host's (validated at RunPodSandbox).
    var userNamespace: PodUserNamespace? { try? PodUserNamespace.of(config) }
    /// The pod's `cgroup_parent`, nil when the kubelet gave none.
    var cgroupParent: String? { config.linux.map(\.cgroupParent).flatMap { $0.isEmpty ? nil : $0 } }
}

/// A CRI container: its config (protobuf), the containerizer config built from it at create,
/// and how its start went. Running and exited states come from the containerizer.
struct ContainerRecord: Sendable, Codable {
    var id: String
    var name: String
    var sandboxID: String
    var createdAt: Int64
    /// The image as the kubelet named it, and the stored image's id and digest reference.
    var imageName: String
    /// The image's tag ContainerStatus reports when the kubelet named it otherwise (by id).
    var imageTag: String?
    var imageID: String
    var imageRef: String
    /// The containerizer config, ready to launch.
    var launch: LaunchConfig
    /// Set once StartContainer was called (even if the start failed).
    var started: Bool = false
    /// A start that failed: the container is EXITED with this.
    var startFailure: StartFailure?
    var config = CRI.ContainerConfig()

    struct StartFailure: Sendable, Codable {
        var finishedAt: Int64
        var message: String
    }

    enum CodingKeys: String, CodingKey { case id, name, sandboxID, createdAt, imageName, imageTag, imageID, imageRef, launch, started, startFailure }
}

/// Where records live: `<state>/cri/{sandboxes,containers}/<id>.json` plus `<id>.pb` (the CRI
/// config as the kubelet sent it). Written atomically; read back at start.
struct RecordStore: Sendable {
    let directory: String

    init(state: String) {
        directory = state + "/cri"
    }

    private func path(_ kind: String, _ id: String, _ suffix: String) -> String { "\(directory)/\(kind)/\(id).\(suffix)" }

    func save(_ sandbox: SandboxRecord) throws(CRIError) {
        try write(kind: "sandboxes", id: sandbox.id, record: sandbox, config: sandbox.config.encode())
    }

    /// Saves what changed after the sandbox was first saved (its state, IPs, …): its config,
    /// the `.pb`, is as RunPodSandbox saved it.
    func saveState(_ sandbox: SandboxRecord) throws(CRIError) {
        try write(kind: "sandboxes", id: sandbox.id, record: sandbox, config: nil)
    }

    /// ``saveState(_:)`` in two steps: the record written and synced under a temporary name
    /// now (while the change it records is still being made), put in place by
    /// ``PreparedRecord/commit()``.
    func prepareState(_ sandbox: SandboxRecord) throws(CRIError) -> PreparedRecord {
        let temporary = "\(directory)/sandboxes/.\(sandbox.id).json.\(UInt32.random(in: 0...UInt32.max))"
        let failure = { (detail: String) in CRIError(.internal, "cannot record sandboxes \(sandbox.id) under \(directory): \(detail)") }
        let bytes: [UInt8]
        do {
            try FileManager.default.createDirectory(atPath: "\(directory)/sandboxes", withIntermediateDirectories: true)
            bytes = [UInt8](try JSONEncoder().encode(sandbox))
        } catch {
            throw failure("\(error)")
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("create \(temporary): \(String(cString: strerror(errno)))") }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = written == bytes.count && fsync(fd) == 0
        let code = errno
        close(fd)
        guard synced else {
            unlink(temporary)
            throw failure("write \(temporary): \(String(cString: strerror(code)))")
        }
        return PreparedRecord(temporary: temporary, path: path("sandboxes", sandbox.id, "json"))
    }

    func save(_ container: ContainerRecord) throws(CRIError) {
        try write(kind: "containers", id: container.id, record: container, config: container.config.encode())
    }

    func removeSandbox(_ id: String) { remove(kind: "sandboxes", id: id) }
    func removeContainer(_ id: String) { remove(kind: "containers", id: id) }

    func loadSandboxes() -> [SandboxRecord] {
        load(kind: "sandboxes", as: SandboxRecord.self).map { record, bytes in
            var record = record
            record.config = (try? PodSandboxConfig.decode(bytes)) ?? PodSandboxConfig()
            return record
        }
    }

    func loadContainers() -> [ContainerRecord] {
        load(kind: "containers", as: ContainerRecord.self).map { record, bytes in
            var record = record
            record.config = (try? CRI.ContainerConfig.decode(bytes)) ?? CRI.ContainerConfig()
            return record
        }
    }

    private func write(kind: String, id: String, record: some Encodable, config: [UInt8]?) throws(CRIError) {
        do {
            try FileManager.default.createDirectory(atPath: "\(directory)/\(kind)", withIntermediateDirectories: true)
            if let config { try Data(config).write(to: URL(fileURLWithPath: path(kind, id, "pb")), options: .atomic) }
            try JSONEncoder().encode(record).write(to: URL(fileURLWithPath: path(kind, id, "json")), options: .atomic)
        } catch {
            throw CRIError(.internal, "cannot record \(kind) \(id) under \(directory): \(error)")
        }
    }

    private func remove(kind: String, id: String) {
        unlink(path(kind, id, "json"))
        unlink(path(kind, id, "pb"))
    }

    private func load<T: Decodable>(kind: String, as type: T.Type) -> [(T, [UInt8])] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/\(kind)")) ?? []
        // Temporary files of writes a crash interrupted (``prepareState(_:)``'s, Foundation's).
        for name in names where name.hasPrefix(".") { unlink("\(directory)/\(kind)/\(name)") }
        return names.filter { $0.hasSuffix(".json") }.compactMap { name in
            let id = String(name.dropLast(5))
            guard let json = FileManager.default.contents(atPath: path(kind, id, "json")),
                  let record = try? JSONDecoder().decode(T.self, from: json) else { return nil }
            let bytes = FileManager.default.contents(atPath: path(kind, id, "pb")).map { [UInt8]($0) } ?? []
            return (record, bytes)
        }
    }
}

/// A record written under a temporary name (see ``RecordStore/prepareState(_:)``).
struct PreparedRecord: Sendable {
    let temporary: String
    let path: String

    /// Puts the record in place (atomically replacing the previous one).
    func commit() throws(CRIError) {
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw CRIError(.internal, "cannot record \(path): \(String(cString: strerror(code)))")
        }
    }

    /// Drops it: the change it recorded did not happen.
    func discard() {
        unlink(temporary)
    }
}

/// Nanoseconds since the epoch.
func nowNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// A random 64-hex-digit id, as containerd makes them.
func randomID() -> String {
    var generator = SystemRandomNumberGenerator()
    return (0..<4).map { _ in
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }.joined()
}

/// The label selector of CRI filters: every pair must match.
func matches(_ labels: [String: String], selector: [String: String]) -> Bool {
    selector.allSatisfy { labels[$0.key] == $0.value }
}
