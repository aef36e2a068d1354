import CSwiftletSyscalls
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A pod's network, IPC and UTS namespaces (and user namespace, when it has one) kept alive
/// with no process: created by `swiftlet-monitor` in pin mode and bind-mounted on files
/// (`<directory>/net`, `ipc`, `uts`, `user`), the way `ip netns add` keeps a network namespace
/// and the Mesos agent keeps a pod's.
public struct NamespacePins: Sendable {
    /// The namespaces a pod can share.
    public enum Kind: String, Sendable, CaseIterable, Codable { case net, ipc, uts, user }

    /// One line of a user namespace's uid or gid map: `length` ids from `containerID` inside
    /// are `hostID`… on the host.
    public struct IDMap: Sendable, Equatable, Codable {
        public var containerID: UInt32
        public var hostID: UInt32
        public var length: UInt32
        public init(containerID: UInt32, hostID: UInt32, length: UInt32) {
            self.containerID = containerID
            self.hostID = hostID
            self.length = length
        }
    }

    /// Where the files are: `<directory>/<kind>`.
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The file holding namespace `kind`.
    public func path(_ kind: Kind) -> String { "\(directory)/\(kind.rawValue)" }

    /// Creates new namespaces of `kinds`, sets the hostname (UTS) and the namespaced
    /// `sysctls` in them, brings up loopback (net), and pins them. With `.user` among the
    /// kinds, the user namespace gets `uidMap` and `gidMap` and owns the others. On failure
    /// nothing stays pinned.
    public func create(_ kinds: Set<Kind>, hostname: String?, sysctls: [(String, String)], uidMap: [IDMap] = [], gidMap: [IDMap] = [],
                       monitorPath: String) throws(ContainerizerError) {
        guard !kinds.isEmpty else { return }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ContainerizerError(.checkpoint, context: directory, detail: "\(error)")
        }
        var spec = LaunchSpec()
        spec.add("mode", "pin")
        for kind in Kind.allCases where kinds.contains(kind) {
            let file = path(kind)
            let fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ContainerizerError(.checkpoint, context: file, errno: errno) }
            close(fd)
            spec.add("namespace", kind.rawValue)
            spec.add("pin", kind.rawValue, file)
        }
        if kinds.contains(.user) {
            guard !uidMap.isEmpty, !gidMap.isEmpty else {
                remove()
                throw ContainerizerError(.invalidArgument, context: "user namespace", detail: "needs a uid map and a gid map")
            }
            for (name, maps) in [("uid", uidMap), ("gid", gidMap)] {
                for map in maps { spec.add("idmap", name, String(map.containerID), String(map.hostID), String(map.length)) }
            }
        }
        if let hostname, !hostname.isEmpty, kinds.contains(.uts) { spec.add("hostname", hostname) }
        for (key, value) in sysctls { spec.add("sysctl", key, value) }
        let specPath = directory + "/pin.spec"
        do {
            try spec.text.write(toFile: specPath, atomically: true, encoding: .utf8)
        } catch {
            throw ContainerizerError(.checkpoint, context: specPath, detail: "\(error)")
        }
        defer { unlink(specPath) }
        do {
            let started = try Launcher(monitorPath: monitorPath).launch(id: "pod namespaces", specPath: specPath)
            var status: Int32 = 0
            while waitpid(started.monitorPid, &status, 0) < 0 && errno == EINTR {}
        } catch {
            remove()
            throw error
        }
    }

    /// Whether namespace `kind` is pinned here.
    public func isPinned(_ kind: Kind) -> Bool {
        var mine = stat(), parent = stat()
        guard stat(path(kind), &mine) == 0, stat(directory, &parent) == 0 else { return false }
        return mine.st_dev != parent.st_dev  // an nsfs file, not the empty placeholder
    }

    /// A TCP connection to `port` on the loopback of network namespace `netns` (a pinned
    /// file), or of the agent's own namespace when nil: port-forward's way into a pod.
    /// Blocking; returns the connected socket.
    public static func connectLoopback(port: UInt16, netns: String?) throws(ContainerizerError) -> Int32 {
        let fd = netns.map { swl_socket_in_netns($0, AF_INET, Int32(SOCK_STREAM.rawValue)) }
            ?? socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ContainerizerError(.invalidArgument, context: "socket in \(netns ?? "the host")", errno: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw ContainerizerError(.invalidArgument, context: "connect to 127.0.0.1:\(port)", errno: code)
        }
        return fd
    }

    /// Unpins every kind, leaving the (now empty) files for whoever removes the directory;
    /// namespaces no process uses any more end. Idempotent.
    public func unpin() {
        for kind in Kind.allCases {
            while umount2(path(kind), Int32(MNT_DETACH)) == 0 {}
        }
    }

    /// Unpins `kinds` (every kind by default) and removes their files; namespaces no process
    /// uses any more end. Idempotent.
    public func remove(_ kinds: Set<Kind> = Set(Kind.allCases)) {
        for kind in kinds {
            let file = path(kind)
            while umount2(file, Int32(MNT_DETACH)) == 0 {}
            unlink(file)
        }
        if kinds.count == Kind.allCases.count { rmdir(directory) }
    }
}
