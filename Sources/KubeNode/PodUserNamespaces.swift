import CRI
import Foundation
import KubeClient
import Synchronization

/// The user namespaces of pods with `hostUsers: false`, as the kubelet's userns manager gives
/// them: each pod gets 65536 ids of its own, host ids `65536 × n` for a free n in 1…maxPods (ids
/// below 65536 stay the host's), the same range for uids and gids. The choice is kept in the
/// pod's directory (`<root>/pods/<uid>/userns`, the kubelet's JSON), so a restarted agent finds
/// it, and is freed with that directory when the pod is cleaned up.
final class PodUserNamespaces: Sendable {
    /// Ids per pod (the kubelet's `userNsLength`).
    static let length: UInt32 = 65536

    let podsRoot: String
    let maxPods: Int
    /// Allocations are read and written under it: two pods never pick the same range.
    private let lock = Mutex<Void>(())

    init(podsRoot: String, maxPods: Int) {
        self.podsRoot = podsRoot
        self.maxPods = maxPods
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The file the kubelet writes: `{"uidMappings":[{"hostId":…,"containerId":0,"length":65536}],"gidMappings":[…]}`.
    struct Record: Codable, Equatable {
        struct Mapping: Codable, Equatable {
            var hostId: UInt32
            var containerId: UInt32
            var length: UInt32
        }
        var uidMappings: [Mapping]
        var gidMappings: [Mapping]
    }

    func path(_ podUID: String) -> String { "\(podsRoot)/\(podUID)/userns" }

    /// The pod's mapping when it asks for a user namespace and has one; nil otherwise.
    func mapping(for pod: Pod) -> IDMapping? {
        guard pod.spec?.hostUsers == false, let record = read(pod.uid), let uid = record.uidMappings.first else { return nil }
        return IDMapping(hostId: uid.hostId, containerId: uid.containerId, length: uid.length)
    }

    /// Gives a pod with `hostUsers: false` its range (the one it has, or the lowest free one)
    /// before its sandbox is made. Pods using the host's user namespace get nothing.
    @discardableResult
    func allocate(for pod: Pod) throws(Failure) -> IDMapping? {
        guard pod.spec?.hostUsers == false else { return nil }
        let uid = pod.uid
        let result: Result<IDMapping, Failure> = lock.withLock { _ in
            if let existing = mapping(for: pod) { return .success(existing) }
            let used = Set(((try? FileManager.default.contentsOfDirectory(atPath: podsRoot)) ?? []).compactMap {
                read($0)?.uidMappings.first.map { $0.hostId / Self.length }
            })
            guard let slot = (1...max(1, maxPods)).first(where: { !used.contains(UInt32($0)) }) else {
                return .failure(Failure(description: "no user namespace range left for the pod: all \(maxPods) are in use"))
            }
            let mapping = Record.Mapping(hostId: UInt32(slot) * Self.length, containerId: 0, length: Self.length)
            do {
                try FileManager.default.createDirectory(atPath: "\(podsRoot)/\(uid)", withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o750])
                let data = try JSONEncoder().encode(Record(uidMappings: [mapping], gidMappings: [mapping]))
                try data.write(to: URL(fileURLWithPath: path(uid)), options: .atomic)
            } catch {
                return .failure(Failure(description: "cannot record the pod's user namespace at \(path(uid)): \(error)"))
            }
            return .success(IDMapping(hostId: mapping.hostId, containerId: 0, length: mapping.length))
        }
        return try result.get()
    }

    private func read(_ podUID: String) -> Record? {
        FileManager.default.contents(atPath: path(podUID)).flatMap { try? JSONDecoder().decode(Record.self, from: $0) }
    }
}
