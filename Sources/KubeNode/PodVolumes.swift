import CRI
import Foundation
import KubeClient
import ResourceLedger

#if canImport(Glibc)
import Glibc
#endif

/// A pod's volumes on the host, in the kubelet's layout
/// (`<root>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>`): emptyDir (a directory, or a
/// tmpfs for `medium: Memory`), hostPath (with its type checks), configMap, secret (on a tmpfs),
/// downwardAPI and projected (incl. service account tokens). Files are written as the kubelet's
/// AtomicWriter does (a timestamped directory, `..data` pointing at it, a link per key), so a
/// refresh is atomic for the container.
struct PodVolumes: Sendable {
    let podsRoot: String
    let objects: any ClusterObjects
    /// The node's allocatable: an unset limit in a downward API file reads as it.
    var allocatable: [String: String] = [:]

    func directory(of pod: Pod) -> String { "\(podsRoot)/\(pod.uid)" }

    func path(of pod: Pod, volume: Volume) -> String? {
        if let hostPath = volume.hostPath { return hostPath.path }
        guard let plugin = Self.plugin(volume) else { return nil }
        return "\(directory(of: pod))/volumes/kubernetes.io~\(plugin)/\(volume.name)"
    }

    static func plugin(_ volume: Volume) -> String? {
        if volume.emptyDir != nil { return "empty-dir" }
        if volume.configMap != nil { return "configmap" }
        if volume.secret != nil { return "secret" }
        if volume.downwardAPI != nil { return "downward-api" }
        if volume.projected != nil { return "projected" }
        return nil
    }

    /// Makes (or refreshes) every volume of the pod; the first volume that cannot be made is
    /// the error (the kubelet's `FailedMount`). With `fsGroup`, the pod's own volumes are
    /// group-owned by it, group-writable and setgid (the kubelet's `SetVolumeOwnership`).
    func prepare(_ pod: Pod) async throws(NodeError) {
        try await makeVolumes(pod)
        guard let group = pod.spec?.securityContext?.fsGroup else { return }
        for volume in pod.spec?.volumes ?? [] where volume.hostPath == nil {
            if let path = path(of: pod, volume: volume) { Self.setOwnership(path, group: gid_t(truncatingIfNeeded: group)) }
        }
    }

    /// chown to `group`, `g+rw` (and `g+x`, setgid for directories), through the tree.
    static func setOwnership(_ root: String, group: gid_t) {
        var stack = [root]
        while let path = stack.popLast() {
            var info = stat()
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) != S_IFLNK else { continue }
            lchown(path, uid_t.max, group)
            var mode = info.st_mode & 0o7777
            mode |= 0o060
            if (info.st_mode & S_IFMT) == S_IFDIR {
                mode |= 0o2010
                for entry in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] { stack.append(path + "/" + entry) }
            }
            chmod(path, mode)
        }
    }

    private func makeVolumes(_ pod: Pod) async throws(NodeError) {
        try makeDirectory(directory(of: pod) + "/volumes", mode: 0o750)
        try makeDirectory(directory(of: pod) + "/containers", mode: 0o750)
        let namespace = pod.metadata.namespace ?? "default"
        for volume in pod.spec?.volumes ?? [] {
            if let hostPath = volume.hostPath {
                try checkHostPath(hostPath, volume: volume.name)
                continue
            }
            guard let path = path(of: pod, volume: volume) else {
                let kind = volume.persistentVolumeClaim != nil ? "persistentVolumeClaim" : (volume.sourceKind ?? "unknown")
                throw NodeError(.podSpec, detail: "volume \"\(volume.name)\": \(kind) volumes are not supported on this node")
            }
            if let emptyDir = volume.emptyDir {
                try makeDirectory(path, mode: 0o777)
                if emptyDir.medium == "Memory" {
                    let size = emptyDir.sizeLimit.flatMap { try? Quantity(parsing: $0) }?.value
                    try mountTmpfs(path, size: size)
                }
                continue
            }
            var files: [String: (bytes: [UInt8], mode: Int32)] = [:]
            if let source = volume.configMap {
                let name = source.name ?? ""
                guard let map = try await objects.configMap(namespace: namespace, name: name) else {
                    if source.optional == true { try writeAtomically(path, files: [:], tmpfs: false); continue }
                    throw NodeError(.podSpec, detail: "MountVolume.SetUp failed for volume \"\(volume.name)\" : configmap \"\(name)\" not found")
                }
                files = try select(map.contents ?? [:], items: source.items, defaultMode: source.defaultMode ?? 0o644,
                                   optional: source.optional ?? false, what: "configmap \"\(name)\"")
                try writeAtomically(path, files: files, tmpfs: false)
            } else if let source = volume.secret {
                let name = source.secretName ?? ""
                guard let secret = try await objects.secret(namespace: namespace, name: name) else {
                    if source.optional == true { try writeAtomically(path, files: [:], tmpfs: true); continue }
                    throw NodeError(.podSpec, detail: "MountVolume.SetUp failed for volume \"\(volume.name)\" : secret \"\(name)\" not found")
                }
                files = try select(secret.contents ?? [:], items: source.items, defaultMode: source.defaultMode ?? 0o644,
                                   optional: source.optional ?? false, what: "secret \"\(name)\"")
                try writeAtomically(path, files: files, tmpfs: true)
            } else if let source = volume.downwardAPI {
                for item in source.items ?? [] {
                    files[item.path] = (Array(try DownwardAPI.value(item, pod: pod, allocatable: allocatable).utf8),
                                        item.mode ?? source.defaultMode ?? 0o644)
                }
                try writeAtomically(path, files: files, tmpfs: false)
            } else if let source = volume.projected {
                let mode = source.defaultMode ?? 0o644
                for projection in source.sources ?? [] {
                    if let map = projection.configMap {
                        let found = try await objects.configMap(namespace: namespace, name: map.name ?? "")
                        guard found != nil || map.optional == true else {
                            throw NodeError(.podSpec, detail: "MountVolume.SetUp failed for volume \"\(volume.name)\" : configmap \"\(map.name ?? "")\" not found")
                        }
                        let selected = try select(found?.contents ?? [:], items: map.items, defaultMode: mode, optional: map.optional ?? false,
                                                  what: "configmap \"\(map.name ?? "")\"")
                        files.merge(selected) { _, new in new }
                    }
                    if let secretSource = projection.secret {
                        let found = try await objects.secret(namespace: namespace, name: secretSource.name ?? "")
                        guard found != nil || secretSource.optional == true else {
                            throw NodeError(.podSpec, detail: "MountVolume.SetUp failed for volume \"\(volume.name)\" : secret \"\(secretSource.name ?? "")\" not found")
                        }
                        let selected = try select(found?.contents ?? [:], items: secretSource.items, defaultMode: mode,
                                                  optional: secretSource.optional ?? false, what: "secret \"\(secretSource.name ?? "")\"")
                        files.merge(selected) { _, new in new }
                    }
                    for item in projection.downwardAPI?.items ?? [] {
                        files[item.path] = (Array(try DownwardAPI.value(item, pod: pod, allocatable: allocatable).utf8), item.mode ?? mode)
                    }
                    if let token = projection.serviceAccountToken {
                        let value = try await objects.serviceAccountToken(pod: pod, audience: token.audience,
                                                                          expirationSeconds: token.expirationSeconds ?? 3607)
                        files[token.path] = (Array(value.utf8), mode)
                    }
                }
                try writeAtomically(path, files: files, tmpfs: true)
            }
        }
    }

    /// The CRI mounts for a container: its volume mounts (subPath resolved inside the volume),
    /// and the termination message file.
    func mounts(for container: ContainerSpec, pod: Pod, restartCount: Int, environment: [String: String] = [:]) throws(NodeError) -> [CRI.Mount] {
        var mounts: [CRI.Mount] = []
        let volumes = Dictionary((pod.spec?.volumes ?? []).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for mount in container.volumeMounts ?? [] {
            guard let volume = volumes[mount.name], var hostPath = path(of: pod, volume: volume) else {
                throw NodeError(.podSpec, detail: "container \(container.name): volume mount \"\(mount.name)\" names no volume of the pod")
            }
            // subPathExpr: $(VAR) from the container's environment (the kubelet's rule).
            let subPath = mount.subPathExpr.map { PodEnvironment.expand($0, with: environment) } ?? mount.subPath
            if let subPath, !subPath.isEmpty {
                guard !subPath.hasPrefix("/"), !subPath.split(separator: "/").contains("..") else {
                    throw NodeError(.podSpec, detail: "container \(container.name): subPath \"\(subPath)\" must be a relative path without ..")
                }
                let volumeRoot = hostPath
                hostPath += "/" + subPath
                if access(hostPath, F_OK) != 0 {
                    // With the volume's own mode (umask aside), as the kubelet makes sub paths.
                    var info = stat()
                    let mode = stat(volumeRoot, &info) == 0 ? info.st_mode & 0o7777 : 0o755
                    try makeDirectory(hostPath, mode: mode)
                    chmod(hostPath, mode)
                }
            }
            let propagation: MountPropagation = switch mount.mountPropagation {
            case "HostToContainer": .propagationHostToContainer
            case "Bidirectional": .propagationBidirectional
            default: .propagationPrivate
            }
            mounts.append(CRI.Mount(containerPath: mount.mountPath, hostPath: hostPath, readonly: mount.readOnly ?? false,
                                    propagation: propagation))
        }
        // The termination message file, a fresh one per attempt (the kubelet's layout).
        let messagePath = container.terminationMessagePath ?? "/dev/termination-log"
        if !mounts.contains(where: { $0.containerPath == messagePath }) {
            let file = "\(directory(of: pod))/containers/\(container.name)/\(Self.shortID())"
            try makeDirectory("\(directory(of: pod))/containers/\(container.name)", mode: 0o750)
            let fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0o666)
            if fd >= 0 { fchmod(fd, 0o666); close(fd) }
            mounts.append(CRI.Mount(containerPath: messagePath, hostPath: file))
        }
        return mounts
    }

    /// Unmounts and removes everything the pod's volumes hold on the host (hostPath volumes are
    /// the host's and stay).
    func tearDown(podUID: String) {
        let root = "\(podsRoot)/\(podUID)"
        guard access(root, F_OK) == 0 else { return }
        for plugin in ["empty-dir", "secret", "projected", "configmap", "downward-api"] {
            let dir = "\(root)/volumes/kubernetes.io~\(plugin)"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
                while umount2("\(dir)/\(name)", Int32(MNT_DETACH)) == 0 {}
            }
        }
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The pod UIDs that have a directory here (for cleaning up after pods that are gone).
    func podUIDsOnDisk() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: podsRoot)) ?? []
    }

    // MARK: Helpers

    private func select(_ contents: [String: [UInt8]], items: [KeyToPath]?, defaultMode: Int32, optional: Bool,
                        what: String) throws(NodeError) -> [String: (bytes: [UInt8], mode: Int32)] {
        var files: [String: (bytes: [UInt8], mode: Int32)] = [:]
        guard let items, !items.isEmpty else {
            for (key, value) in contents { files[key] = (value, defaultMode) }
            return files
        }
        for item in items {
            guard let value = contents[item.key] else {
                if optional { continue }
                throw NodeError(.podSpec, detail: "\(what) has no key \"\(item.key)\"")
            }
            files[item.path] = (value, item.mode ?? defaultMode)
        }
        return files
    }

    private func checkHostPath(_ source: HostPathVolumeSource, volume: String) throws(NodeError) {
        var info = stat()
        let exists = stat(source.path, &info) == 0
        let type = info.st_mode & S_IFMT
        switch source.type ?? "" {
        case "DirectoryOrCreate":
            if !exists { try makeDirectory(source.path, mode: 0o755) } else if type != S_IFDIR {
                throw hostPathError(volume, source.path, "is not a directory")
            }
        case "Directory":
            guard exists, type == S_IFDIR else { throw hostPathError(volume, source.path, "is not a directory") }
        case "FileOrCreate":
            if !exists {
                let fd = open(source.path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw NodeError(.system, detail: "creating hostPath file \(source.path)", errno: errno) }
                close(fd)
            } else if type != S_IFREG { throw hostPathError(volume, source.path, "is not a file") }
        case "File":
            guard exists, type == S_IFREG else { throw hostPathError(volume, source.path, "is not a file") }
        case "Socket":
            guard exists, type == S_IFSOCK else { throw hostPathError(volume, source.path, "is not a socket") }
        case "CharDevice":
            guard exists, type == S_IFCHR else { throw hostPathError(volume, source.path, "is not a character device") }
        case "BlockDevice":
            guard exists, type == S_IFBLK else { throw hostPathError(volume, source.path, "is not a block device") }
        default:
            break
        }
    }

    private func hostPathError(_ volume: String, _ path: String, _ what: String) -> NodeError {
        NodeError(.podSpec, detail: "MountVolume.SetUp failed for volume \"\(volume)\" : hostPath type check failed: \(path) \(what)")
    }

    private func makeDirectory(_ path: String, mode: mode_t) throws(NodeError) {
        var current = ""
        for part in path.split(separator: "/") {
            current += "/\(part)"
            if mkdir(current, mode) != 0 && errno != EEXIST {
                throw NodeError(.system, detail: "creating directory \(current)", errno: errno)
            }
        }
        if mode == 0o777 { chmod(path, 0o777) }
    }

    private func mountTmpfs(_ path: String, size: Int64?) throws(NodeError) {
        if isMountPoint(path) { return }
        let options = size.map { "size=\($0),mode=0777" } ?? "mode=0777"
        guard mount("tmpfs", path, "tmpfs", UInt(MS_NODEV | MS_NOSUID), options) == 0 else {
            throw NodeError(.system, detail: "mounting a tmpfs on \(path)", errno: errno)
        }
    }

    private func isMountPoint(_ path: String) -> Bool {
        var own = stat(), parent = stat()
        guard stat(path, &own) == 0, stat(path + "/..", &parent) == 0 else { return false }
        return own.st_dev != parent.st_dev
    }

    /// The kubelet's AtomicWriter: files go into `..<timestamp>`, `..data` is switched to it by
    /// a rename, each top-level name is a link through `..data`, and the old directory goes.
    private func writeAtomically(_ path: String, files: [String: (bytes: [UInt8], mode: Int32)], tmpfs: Bool) throws(NodeError) {
        try makeDirectory(path, mode: 0o755)
        if tmpfs { try mountTmpfs(path, size: nil); chmod(path, 0o755) }
        let dataLink = path + "/..data"
        let previous = (try? FileManager.default.destinationOfSymbolicLink(atPath: dataLink))
        if let previous, Self.matches(directory: path + "/" + previous, files: files) { return }
        let stamp = "..\(Self.timestamp())"
        let target = path + "/" + stamp
        try makeDirectory(target, mode: 0o755)
        for (name, file) in files {
            guard !name.hasPrefix("/"), !name.split(separator: "/").contains("..") else {
                throw NodeError(.podSpec, detail: "volume file path \"\(name)\" must be relative without ..")
            }
            let full = target + "/" + name
            if let slash = full.lastIndex(of: "/") { try makeDirectory(String(full[..<slash]), mode: 0o755) }
            guard FileManager.default.createFile(atPath: full, contents: Data(file.bytes)) else {
                throw NodeError(.system, detail: "writing \(full)", errno: errno)
            }
            chmod(full, mode_t(file.mode))
        }
        let newLink = path + "/..data_tmp"
        unlink(newLink)
        guard symlink(stamp, newLink) == 0, rename(newLink, dataLink) == 0 else {
            throw NodeError(.system, detail: "switching \(dataLink)", errno: errno)
        }
        let tops = Set(files.keys.map { String($0.split(separator: "/").first ?? "") })
        for top in tops {
            let link = path + "/" + top
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == nil { _ = symlink("..data/" + top, link) }
        }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
            if entry.hasPrefix("..") && entry != "..data" && entry != stamp {
                try? FileManager.default.removeItem(atPath: path + "/" + entry)
            } else if !entry.hasPrefix("..") && !tops.contains(entry) {
                unlink(path + "/" + entry)
            }
        }
    }

    private static func matches(directory: String, files: [String: (bytes: [UInt8], mode: Int32)]) -> Bool {
        for (name, file) in files {
            guard let data = FileManager.default.contents(atPath: directory + "/" + name), Array(data) == file.bytes else { return false }
        }
        let present = FileManager.default.enumerator(atPath: directory)?.compactMap { entry -> String? in
            let path = entry as? String ?? ""
            var info = stat()
            return stat(directory + "/" + path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG ? path : nil
        } ?? []
        return Set(present) == Set(files.keys)
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return "\(now.tv_sec)_\(now.tv_nsec)"
    }

    static func shortID() -> String {
        String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }
}

/// The downward API: pod fields and container resources as strings.
enum DownwardAPI {
    static func value(_ file: DownwardAPIVolumeFile, pod: Pod, allocatable: [String: String] = [:]) throws(NodeError) -> String {
        if let field = file.fieldRef { return try fieldValue(field.fieldPath, pod: pod) }
        if let resource = file.resourceFieldRef { return try resourceValue(resource, pod: pod, container: nil, allocatable: allocatable) }
        throw NodeError(.podSpec, detail: "downward API item \"\(file.path)\" has neither fieldRef nor resourceFieldRef")
    }

    /// `metadata.name`, `metadata.namespace`, `metadata.uid`, `metadata.labels['k']`,
    /// `metadata.annotations['k']`, `metadata.labels`, `spec.nodeName`, `spec.serviceAccountName`,
    /// `status.podIP`, `status.hostIP`, `status.podIPs`.
    static func fieldValue(_ path: String, pod: Pod, podIPs: [String] = [], hostIP: String = "") throws(NodeError) -> String {
        func subscripted(_ prefix: String, _ map: [String: String]?) -> String? {
            guard path.hasPrefix(prefix + "['"), path.hasSuffix("']") else { return nil }
            let key = String(path.dropFirst(prefix.count + 2).dropLast(2))
            return map?[key] ?? ""
        }
        if let value = subscripted("metadata.labels", pod.metadata.labels) { return value }
        if let value = subscripted("metadata.annotations", pod.metadata.annotations) { return value }
        switch path {
        case "metadata.name": return pod.metadata.name ?? ""
        case "metadata.namespace": return pod.metadata.namespace ?? "default"
        case "metadata.uid": return pod.uid
        case "metadata.labels": return formatMap(pod.metadata.labels ?? [:])
        case "metadata.annotations": return formatMap(pod.metadata.annotations ?? [:])
        case "spec.nodeName": return pod.spec?.nodeName ?? ""
        case "spec.serviceAccountName": return pod.spec?.serviceAccountName ?? ""
        case "status.hostIP": return hostIP.isEmpty ? (pod.status?.hostIP ?? "") : hostIP
        case "status.podIP": return podIPs.first ?? pod.status?.podIP ?? ""
        case "status.podIPs": return (podIPs.isEmpty ? (pod.status?.podIPs?.map(\.ip) ?? []) : podIPs).joined(separator: ",")
        default: throw NodeError(.podSpec, detail: "unsupported downward API field path \"\(path)\"")
        }
    }

    /// `key="value"` lines sorted by key, values quoted as Go's `%q` (the kubelet's `FormatMap`).
    static func formatMap(_ map: [String: String]) -> String {
        map.keys.sorted().map { key in "\(key)=\(goQuoted(map[key]!))" }.joined(separator: "\n")
    }

    /// Go's `strconv.Quote`: backslash escapes for quotes, backslashes and control characters.
    static func goQuoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case "\u{07}": result += "\\a"
            case "\u{08}": result += "\\b"
            case "\u{0C}": result += "\\f"
            case "\u{0B}": result += "\\v"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    result += String(format: "\\x%02x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    /// `limits.cpu`, `requests.cpu`, `limits.memory`, `requests.memory`,
    /// `limits.ephemeral-storage`, `requests.ephemeral-storage` divided by the divisor (rounded
    /// up, as the kubelet's `ExtractContainerResourceValue`); an unset limit is the node's allocatable.
    static func resourceValue(_ selector: ResourceFieldSelector, pod: Pod, container: ContainerSpec?,
                              allocatable: [String: String] = [:]) throws(NodeError) -> String {
        let target = container ?? pod.spec?.containers.first { $0.name == selector.containerName }
        guard let target else {
            throw NodeError(.podSpec, detail: "resourceFieldRef names container \"\(selector.containerName ?? "")\" which the pod lacks")
        }
        let parts = selector.resource.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, ["limits", "requests"].contains(parts[0]) else {
            throw NodeError(.podSpec, detail: "unsupported resourceFieldRef resource \"\(selector.resource)\"")
        }
        let map = parts[0] == "limits" ? target.resources?.limits : target.resources?.requests
        let text = map?[parts[1]] ?? (parts[0] == "limits" ? allocatable[parts[1]] : nil) ?? "0"
        guard let quantity = try? Quantity(parsing: text) else { return "0" }
        // No divisor, or "0" (what the API server stores when none was given), is 1.
        let divisor = selector.divisor.flatMap { try? Quantity(parsing: $0) }.flatMap { $0.isZero ? nil : $0 }
        if parts[1] == "cpu" {
            let milliDivisor = divisor?.milliValue ?? 1000
            guard milliDivisor > 0 else { return "0" }
            return String((quantity.milliValue + milliDivisor - 1) / milliDivisor)
        }
        let divisorValue = divisor?.value ?? 1
        guard divisorValue > 0 else { return "0" }
        return String((quantity.value + divisorValue - 1) / divisorValue)
    }
}
