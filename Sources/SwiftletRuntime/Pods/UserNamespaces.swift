import CRI
import Containerizer
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A pod's user namespace (the kubelet's `hostUsers: false`): one uid and one gid mapping
/// whose container id 0 is the pod's root. It is pinned with the pod's other namespaces,
/// which it owns; the containers join it after their mounts are made, and see their image
/// through idmapped layers and their volumes through idmapped mounts.
struct PodUserNamespace: Sendable, Equatable {
    var uid: NamespacePins.IDMap
    var gid: NamespacePins.IDMap

    /// The pod's user namespace per its config: nil for the host's (no options, or NODE).
    /// What this runtime cannot do is INVALID_ARGUMENT, as containerd answers it.
    static func of(_ config: PodSandboxConfig) throws(CRIError) -> PodUserNamespace? {
        let namespaces = config.linux?.securityContext?.namespaceOptions
        guard let options = namespaces?.usernsOptions else { return nil }
        switch options.mode {
        case .node:
            guard options.uids.isEmpty, options.gids.isEmpty else {
                throw CRIError.invalidArgument("user namespace mode NODE takes no uid or gid mappings (the host's are used)")
            }
            return nil
        case .pod:
            break
        default:
            throw CRIError.invalidArgument(
                "user namespace mode \(options.mode) is not supported: a pod's containers share the pod's user namespace (POD) or use the host's (NODE)")
        }
        guard supported else {
            throw CRIError.invalidArgument("user namespaces need Linux 6.8 or later (idmapped overlay layers); this kernel is \(kernelRelease)")
        }
        if namespaces?.network == .node || namespaces?.pid == .node || namespaces?.ipc == .node {
            throw CRIError.invalidArgument("a pod with a user namespace cannot use the host's network, PID or IPC namespace")
        }
        if config.linux?.securityContext?.privileged == true {
            throw CRIError.invalidArgument("a privileged pod sandbox cannot have a user namespace")
        }
        return PodUserNamespace(uid: try mapping(options.uids, "uid"), gid: try mapping(options.gids, "gid"))
    }

    /// The one mapping of a kind: the container's 0 mapped, no range past the last id, not
    /// the host's root.
    static func mapping(_ mappings: [IDMapping], _ kind: String) throws(CRIError) -> NamespacePins.IDMap {
        guard mappings.count == 1, let mapping = mappings.first else {
            throw CRIError.invalidArgument("user namespace: exactly one \(kind) mapping is supported, got \(mappings.count)")
        }
        guard mapping.containerId == 0 else {
            throw CRIError.invalidArgument("user namespace: the \(kind) mapping must map container id 0 (it maps from \(mapping.containerId))")
        }
        guard mapping.length > 0, UInt64(mapping.hostId) + UInt64(mapping.length) <= UInt64(UInt32.max) else {
            throw CRIError.invalidArgument("user namespace: the \(kind) mapping \(mapping.hostId)+\(mapping.length) is empty or past the last id")
        }
        guard mapping.hostId != 0 else {
            throw CRIError.invalidArgument("user namespace: the \(kind) mapping would make the host's root the pod's root (host id 0)")
        }
        return NamespacePins.IDMap(containerID: mapping.containerId, hostID: mapping.hostId, length: mapping.length)
    }

    /// Whether `mappings` (a CRI mount's) are this namespace's, the only idmapping a mount
    /// can have here.
    func matches(uids: [IDMapping], gids: [IDMapping]) -> Bool {
        func same(_ given: [IDMapping], _ mine: NamespacePins.IDMap) -> Bool {
            given.count == 1 && given[0].containerId == mine.containerID && given[0].hostId == mine.hostID && given[0].length == mine.length
        }
        return same(uids, uid) && same(gids, gid)
    }

    /// What the containerizer is given: the pinned namespace and its root on the host.
    func containerNamespace(_ pins: NamespacePins) -> LaunchConfig.UserNamespace {
        LaunchConfig.UserNamespace(path: pins.path(.user), rootUID: uid.hostID, rootGID: gid.hostID)
    }

    /// The running kernel's release (`uname -r`).
    static let kernelRelease: String = {
        var names = utsname()
        uname(&names)
        return withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }()

    /// Whether pods can have user namespaces here: Linux 6.8 or later (overlay layers given
    /// by descriptor, so they can be idmapped mounts) with user namespaces enabled.
    static let supported: Bool = {
        let parts = kernelRelease.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard parts.count == 2, (parts[0], parts[1]) >= (6, 8) else { return false }
        let limit = FileManager.default.contents(atPath: "/proc/sys/user/max_user_namespaces")
            .flatMap { Int(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        return limit > 0
    }()
}
