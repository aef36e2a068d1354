import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The CRIU binary a container is dumped with.
public struct CRIU: Sendable, Equatable {
    /// Where `hack/install-criu.sh` installs it.
    public static let defaultPath = "/usr/local/sbin/criu"

    /// The executable.
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// The first executable of: `configured` (when given, only it), ``defaultPath``, `criu`
    /// on `PATH`. Nil when there is none.
    public static func locate(configured: String? = nil) -> CRIU? {
        if let configured, !configured.isEmpty {
            return access(configured, X_OK) == 0 ? CRIU(path: configured) : nil
        }
        if access(defaultPath, X_OK) == 0 { return CRIU(path: defaultPath) }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/criu"
            if access(candidate, X_OK) == 0 { return CRIU(path: candidate) }
        }
        return nil
    }

    /// What `criu --version` says ("4.1.1"), nil if it does not run.
    public func version() -> String? {
        let scratch = NSTemporaryDirectory() + "swiftlet-criu-version-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(scratch) }
        let outcome = ToolProcess.run(path, ["--version"], output: scratch, timeout: .seconds(10))
        guard case .exited(0) = outcome, let text = try? String(contentsOfFile: scratch, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix("Version:") }
            .map { $0.dropFirst("Version:".count).trimmingCharacters(in: .whitespaces) }
    }
}

/// Why a container could not be dumped.
public struct ContainerDumpError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Sendable, Equatable {
        /// No container with that id.
        case notFound
        /// The container is not running.
        case notRunning
        /// The request is wrong in itself (a missing images directory, …).
        case invalidArgument
        /// CRIU is not installed (or not executable).
        case criuMissing
        /// CRIU ran and failed; `detail` has the end of its log.
        case criuFailed
        /// CRIU did not finish in time and was killed (the container was thawed).
        case timedOut
        /// Reading the container's state or writing files failed.
        case io
    }

    public var kind: Kind
    /// The container id or path concerned.
    public var context: String
    public var detail: String

    public init(_ kind: Kind, context: String, detail: String = "") {
        self.kind = kind
        self.context = context
        self.detail = detail
    }

    public var description: String {
        switch kind {
        case .notFound: return "container \(context) not found"
        case .notRunning: return "container \(context) is not running"
        case .invalidArgument: return "\(context): \(detail)"
        case .criuMissing: return "criu is not installed (\(detail)); hack/install-criu.sh installs it"
        case .criuFailed: return "criu dump of container \(context) failed: \(detail)"
        case .timedOut: return "criu dump of container \(context) timed out: \(detail)"
        case .io: return "checkpoint of container \(context): \(detail)"
        }
    }
}

/// What a CRIU dump of a container left outside its images, for a restore to supply: written
/// as `swiftlet-dump.json` next to the images.
///
/// A container's process tree and its own mount and PID namespaces are in the images; the
/// pod's (or the host's) files bound into it, its pinned network namespace, the host files its
/// descriptors reach (its stdin's /dev/null) and the pipes to its monitor (stdout, stderr) are
/// not: CRIU recorded them under the keys listed here (`--external`), and a restore maps each
/// key to a replacement (`--external mnt[key]:path`, `--inherit-fd fd[n]:key`).
public struct ContainerDump: Sendable, Equatable, Codable {
    /// A mount the container got from outside (a bind of a host file, a volume, its cgroups).
    public struct ExternalMount: Sendable, Equatable, Codable {
        /// CRIU's key for it (`mnt[<mountpoint>]:<key>` at dump, `mnt[<key>]:<path>` at restore).
        public var key: String
        /// Its mount point inside the container.
        public var mountpoint: String
        /// What was bound there, on the host.
        public var source: String
    }

    /// A namespace the container joined rather than owned (`net[<inode>]:<key>`).
    public struct ExternalNamespace: Sendable, Equatable, Codable {
        /// net, pid.
        public var kind: String
        public var key: String
        /// Its inode (what `/proc/<pid>/ns/<kind>` links to).
        public var inode: UInt64
        /// The file that pins it, if one does (a pod's `ns/net`).
        public var path: String?
    }

    /// A descriptor on a file outside the container's mounts (`file[<mnt id>:<inode>]`).
    public struct ExternalFile: Sendable, Equatable, Codable {
        public var key: String
        /// Its path on the host (e.g. /dev/null).
        public var path: String
        /// The descriptor number in the container's first process, if it has it there.
        public var fd: Int32?
    }

    /// One of the container's first process's standard descriptors that is a pipe (to its
    /// monitor): a restore gives a new pipe's end with `--inherit-fd fd[n]:<key>`.
    public struct StdioPipe: Sendable, Equatable, Codable {
        /// 0, 1 or 2.
        public var fd: Int32
        /// `pipe:[<inode>]`.
        public var key: String
    }

    public var id: String
    /// `criu --version`'s.
    public var criuVersion: String?
    /// The container's first process at the dump, on the host.
    public var pid: Int32
    /// The container's root filesystem (the overlay mount) at the dump.
    public var rootfs: String
    public var mounts: [ExternalMount] = []
    public var namespaces: [ExternalNamespace] = []
    public var files: [ExternalFile] = []
    public var pipes: [StdioPipe] = []
    /// Namespaces the container joined that the images hold a copy of (ipc, uts): a restore
    /// into the same pod joins the originals (`--join-ns <kind>:<path>`).
    public var joined: [String: String] = [:]
    /// The `criu dump` arguments used.
    public var arguments: [String] = []
    /// The container's config.
    public var config: ContainerConfig

    /// The file name the dump is recorded under, in the images directory.
    public static let fileName = "swiftlet-dump.json"
}

/// How a container is dumped.
public struct DumpOptions: Sendable, Equatable {
    /// The container runs on after the dump (what the CRI's CheckpointContainer does); off,
    /// CRIU kills it once dumped.
    public var leaveRunning = true
    /// Dump established TCP connections (`--tcp-established`); without it CRIU refuses a
    /// container that has some.
    public var tcpEstablished = false
    /// Kill CRIU (and thaw the container) after this long; nil waits.
    public var timeout: Duration? = .seconds(120)

    public init(leaveRunning: Bool = true, tcpEstablished: Bool = false, timeout: Duration? = .seconds(120)) {
        self.leaveRunning = leaveRunning
        self.tcpEstablished = tcpEstablished
        self.timeout = timeout
    }
}

extension Containerizer {
    /// Dumps a running container's process tree with CRIU into `directory` (which must exist
    /// and be empty): the images, CRIU's log `dump.log`, and ``ContainerDump/fileName``.
    ///
    /// The container's mounts from outside (binds, volumes, cgroups), its pod's network
    /// namespace, descriptors on host files and its pipes to the monitor are declared
    /// external (see ``ContainerDump``); its cgroup's freezer holds it still while CRIU works.
    /// A container with a terminal (`tty`) cannot be dumped: its terminal's master is in the
    /// monitor.
    @discardableResult
    public func dump(id: String, into directory: String, criu: CRIU, options: DumpOptions = DumpOptions()) throws(ContainerDumpError) -> ContainerDump {
        guard let (info, config) = entries.withLock({ entries in entries[id].map { ($0.info, $0.config) } }) else {
            throw ContainerDumpError(.notFound, context: id)
        }
        let checkpoint = Checkpoint(stateRoot: stateRoot, id: id)
        guard info.state == .running, access(checkpoint.exitPath, F_OK) != 0, Glibc.kill(info.pid, 0) == 0 else {
            throw ContainerDumpError(.notRunning, context: id)
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ContainerDumpError(.invalidArgument, context: directory, detail: "is not a directory")
        }
        guard access(criu.path, X_OK) == 0 else { throw ContainerDumpError(.criuMissing, context: id, detail: "\(criu.path) is not executable") }
        guard let specText = try? String(contentsOfFile: checkpoint.specPath, encoding: .utf8) else {
            throw ContainerDumpError(.io, context: id, detail: "cannot read \(checkpoint.specPath)")
        }
        let spec = Self.parseLaunchSpec(specText)
        if spec.first(where: { $0.first == "tty" })?.dropFirst().first == "1" {
            throw ContainerDumpError(.invalidArgument, context: id, detail: "a container with a terminal (tty) cannot be checkpointed")
        }
        var dump = ContainerDump(id: id, criuVersion: criu.version(), pid: info.pid,
                                 rootfs: spec.first { $0.first == "rootfs" }.map { $0.count > 1 ? $0[1] : "" } ?? config.rootfs,
                                 config: config)

        // Mounts from outside: the binds and cgroup directories the monitor mounted, and
        // whatever is mounted below them (recursive binds).
        var outside: [(target: String, source: String)] = []
        for fields in spec {
            if fields.first == "bind", fields.count >= 3 { outside.append((fields[2], fields[1])) }
            if fields.first == "cgroupfs", fields.count >= 3 {
                outside.append((fields[2] == "." ? "/sys/fs/cgroup" : "/sys/fs/cgroup/\(fields[2])", fields[1]))
            }
        }
        let mounts = Self.mountInfo(pid: info.pid)
        guard !mounts.isEmpty else { throw ContainerDumpError(.io, context: id, detail: "cannot read /proc/\(info.pid)/mountinfo") }
        var seen = Set<String>()
        for mount in mounts.dropFirst() where !seen.contains(mount.mountpoint) {
            guard let bind = outside.last(where: { mount.mountpoint == $0.target || mount.mountpoint.hasPrefix($0.target + "/") }) else { continue }
            seen.insert(mount.mountpoint)
            let source = bind.source + mount.mountpoint.dropFirst(bind.target.count)
            dump.mounts.append(.init(key: "swl-mnt-\(dump.mounts.count)", mountpoint: mount.mountpoint, source: source))
        }

        // Namespaces: the pod's network namespace is external; PID too when the container
        // shares its pod's (its first process is not that namespace's init).
        for fields in spec where fields.first == "join" && fields.count >= 3 && fields[1] != "net" && fields[1] != "pid" {
            dump.joined[fields[1]] = fields[2]
        }
        if let inode = Self.namespaceInode(pid: info.pid, "net"), inode != Self.namespaceInode(pid: getpid(), "net") {
            let pin = spec.first { $0.count >= 3 && $0[0] == "join" && $0[1] == "net" }?[2]
            dump.namespaces.append(.init(kind: "net", key: "swiftlet-net", inode: inode, path: pin))
        }
        if !Self.isNamespaceInit(pid: info.pid), let inode = Self.namespaceInode(pid: info.pid, "pid") {
            let pin = spec.first { $0.count >= 3 && $0[0] == "join" && $0[1] == "pid" }?[2]
            dump.namespaces.append(.init(kind: "pid", key: "swiftlet-pid", inode: inode, path: pin))
        }

        // Descriptors on files the container's mounts do not show (opened by the monitor
        // before the pivot_root: its stdin's /dev/null), and its stdio pipes.
        let mountIDs = Set(mounts.map(\.id))
        var fileKeys = Set<String>()
        for pid in Self.processTree(root: info.pid) {
            let fdDirectory = "/proc/\(pid)/fd"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: fdDirectory)) ?? [] {
                guard let fd = Int32(name), let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDirectory)/\(name)") else { continue }
                if pid == info.pid, fd <= 2, target.hasPrefix("pipe:[") {
                    dump.pipes.append(.init(fd: fd, key: target))
                    continue
                }
                guard target.hasPrefix("/"), let mountID = Self.fdMountID(pid: pid, fd: fd), !mountIDs.contains(mountID) else { continue }
                var status = stat()
                guard stat("\(fdDirectory)/\(name)", &status) == 0 else { continue }
                let key = "file[\(String(mountID, radix: 16)):\(String(UInt64(status.st_ino), radix: 16))]"
                if fileKeys.insert(key).inserted {
                    dump.files.append(.init(key: key, path: target, fd: pid == info.pid ? fd : nil))
                }
            }
        }
        dump.pipes.sort { $0.fd < $1.fd }

        var arguments = ["dump", "--tree", String(info.pid), "--images-dir", directory, "--log-file", "dump.log", "-v4",
                         "--ext-unix-sk", "--file-locks", "--manage-cgroups=soft"]
        if options.leaveRunning { arguments.append("--leave-running") }
        if options.tcpEstablished { arguments.append("--tcp-established") }
        let freezer = freezerPath(id: id, config)
        if let freezer { arguments += ["--freeze-cgroup", freezer] }
        for mount in dump.mounts { arguments += ["--external", "mnt[\(mount.mountpoint)]:\(mount.key)"] }
        for namespace in dump.namespaces { arguments += ["--external", "\(namespace.kind)[\(namespace.inode)]:\(namespace.key)"] }
        for file in dump.files { arguments += ["--external", file.key] }
        dump.arguments = arguments

        let output = directory + "/criu.out"
        switch ToolProcess.run(criu.path, arguments, output: output, timeout: options.timeout) {
        case .exited(0):
            unlink(output)
        case .exited(let code):
            throw ContainerDumpError(.criuFailed, context: id, detail: "exit status \(code): \(Self.logTail(directory + "/dump.log", fallback: output))")
        case .timedOut:
            if let freezer { Self.thaw(freezer) }
            let limit = options.timeout.map { "\($0)" } ?? "?"
            throw ContainerDumpError(.timedOut, context: id, detail: "killed after \(limit): \(Self.logTail(directory + "/dump.log", fallback: output))")
        case .notStarted(let code):
            throw ContainerDumpError(.criuMissing, context: id, detail: "cannot run \(criu.path): \(String(cString: strerror(code)))")
        }
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(dump).write(to: URL(fileURLWithPath: directory + "/" + ContainerDump.fileName))
        } catch {
            throw ContainerDumpError(.io, context: id, detail: "cannot write \(ContainerDump.fileName): \(error)")
        }
        return dump
    }

    /// The container's v1 freezer directory (or its v2 cgroup), which CRIU freezes the tree with.
    private func freezerPath(id: String, _ config: ContainerConfig) -> String? {
        let directories = cgroup(for: id, config).directories
        if let v1 = directories.first(where: { $0.contains("/freezer/") }) { return v1 }
        if let v2 = directories.first, access(v2 + "/cgroup.freeze", F_OK) == 0 { return v2 }
        return nil
    }

    private static func thaw(_ freezer: String) {
        let (file, value) = access(freezer + "/freezer.state", F_OK) == 0 ? (freezer + "/freezer.state", "THAWED") : (freezer + "/cgroup.freeze", "0")
        try? value.write(toFile: file, atomically: false, encoding: .utf8)
    }

    /// The launch spec's lines, split at tabs.
    static func parseLaunchSpec(_ text: String) -> [[String]] {
        text.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    }

    struct MountEntry: Equatable {
        var id: Int
        var mountpoint: String
    }

    /// `/proc/<pid>/mountinfo`'s mount ids and mount points (unescaped), in order.
    static func mountInfo(pid: Int32) -> [MountEntry] {
        guard let text = CgroupLayout.readFile("/proc/\(pid)/mountinfo") else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 4, let id = Int(fields[0]) else { return nil }
            return MountEntry(id: id, mountpoint: CgroupLayout.unescapeMountPath(String(fields[4])))
        }
    }

    static func namespaceInode(pid: Int32, _ kind: String) -> UInt64? {
        var status = stat()
        guard stat("/proc/\(pid)/ns/\(kind)", &status) == 0 else { return nil }
        return UInt64(status.st_ino)
    }

    /// Whether `pid` is its PID namespace's first process (its innermost NSpid is 1).
    static func isNamespaceInit(pid: Int32) -> Bool {
        guard let text = CgroupLayout.readFile("/proc/\(pid)/status"),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") }) else { return false }
        return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last == "1"
    }

    /// `pid` and its descendants (through /proc/<pid>/task/*/children).
    static func processTree(root: Int32) -> [Int32] {
        var result: [Int32] = []
        var pending = [root]
        var seen = Set<Int32>()
        while let pid = pending.popLast() {
            guard seen.insert(pid).inserted else { continue }
            result.append(pid)
            for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
                let children = CgroupLayout.readFile("/proc/\(pid)/task/\(task)/children") ?? ""
                pending += children.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
        }
        return result
    }

    static func fdMountID(pid: Int32, fd: Int32) -> Int? {
        guard let text = CgroupLayout.readFile("/proc/\(pid)/fdinfo/\(fd)"),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("mnt_id:") }) else { return nil }
        return Int(line.dropFirst("mnt_id:".count).trimmingCharacters(in: .whitespaces))
    }

    /// The end of CRIU's log: its error lines if it has some, else its last lines.
    static func logTail(_ path: String, fallback: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? (try? String(contentsOfFile: fallback, encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n").map(String.init)
        // CRIU cannot raise RLIMIT_NOFILE without CAP_SYS_RESOURCE; it says so, and goes on.
        let errors = lines.filter { $0.contains("Error") && !$0.contains("RLIMIT_NOFILE") }
        let chosen = errors.isEmpty ? Array(lines.suffix(8)) : Array(errors.suffix(8))
        let tail = chosen.joined(separator: "\n")
        return tail.isEmpty ? "no log" : String(tail.suffix(2000))
    }
}
