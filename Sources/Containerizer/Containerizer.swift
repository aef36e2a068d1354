import CSwiftletSyscalls
import Dispatch
import Foundation
import Synchronization

/// A container's lifecycle state.
public enum ContainerState: String, Sendable, Codable {
    case running, exited
}

/// How a container ended.
public struct ExitStatus: Sendable, Equatable, Codable {
    /// The exit code, or 128 + the signal that killed it.
    public var exitCode: Int32
    /// The signal that killed it, 0 if it exited.
    public var signal: Int32
    /// When, in nanoseconds since the epoch.
    public var finishedAt: Int64
    /// `Completed`, `Error`, `OOMKilled`, or `Lost` (its monitor vanished without a record).
    public var reason: String
}

/// What the containerizer knows of one container.
public struct ContainerInfo: Sendable, Equatable, Codable {
    public var id: String
    public var pid: Int32
    public var monitorPid: Int32
    public var monitorStartTime: UInt64
    /// Nanoseconds since the epoch.
    public var createdAt: Int64
    public var startedAt: Int64
    public var state: ContainerState
    public var exit: ExitStatus?
    public var labels: [String: String]
    public var logPath: String?
}

/// Runs and isolates containers the way the Mesos containerizer does: a launcher (here the
/// `swiftlet-monitor` process per container) and isolators with the recover / prepare /
/// isolate / update / usage / cleanup hooks. State is checkpointed under `stateRoot`, so a new
/// Containerizer over the same state (after the agent restarts, even after `kill -9`) recovers
/// every container, and those that ended meanwhile report their real exit.
public final class Containerizer: Sendable {
    public let stateRoot: String
    /// The cgroup under each hierarchy that holds the containers (Mesos' `--cgroups_root`).
    public let cgroupsRoot: String
    public let layout: CgroupLayout
    private let isolators: [any Isolator]
    let launcher: Launcher
    private let cgroupVersion: CgroupVersion

    /// Which cgroup version containers get.
    public enum CgroupVersion: String, Sendable {
        /// v1 controllers (this fleet's machines are hybrid: v1 has cpu, memory and pids).
        case v1
        /// The unified hierarchy, where it offers cpu, memory and pids.
        case v2
    }

    struct Entry: Sendable {
        var info: ContainerInfo
        var config: ContainerConfig
        var waiters: [CheckedContinuation<ExitStatus, Never>] = []
        var watch: ExitWatch?
    }

    let entries = Mutex<[String: Entry]>([:])
    /// Deletes moved-aside checkpoints (``destroy(id:deferRemoval:)``) off the caller's path;
    /// callers may queue their own garbage on it too.
    public let removals = BackgroundRemovals()
    /// Tells moved-aside checkpoints of one id apart.
    private let removalCounter = Atomic<Int>(0)
    /// Called with every exit as it is recorded (the CRI's container events).
    private let onExit: (@Sendable (ContainerInfo) -> Void)?

    /// - Parameters:
    ///   - isolation: isolator names (`--isolation`), Isolators.defaultNames by default.
    ///   - layout: the machine's cgroup hierarchies (read from /proc/self/mountinfo by default).
    public init(
        stateRoot: String, cgroupsRoot: String = "swiftlet", isolation: [String] = Isolators.defaultNames,
        monitorPath: String = Launcher.defaultMonitorPath(), layout: CgroupLayout? = nil,
        onExit: (@Sendable (ContainerInfo) -> Void)? = nil
    ) throws(ContainerizerError) {
        self.stateRoot = stateRoot
        self.cgroupsRoot = cgroupsRoot
        let layout = layout ?? CgroupLayout.current()
        self.layout = layout
        self.isolators = try Isolators.named(isolation)
        self.launcher = Launcher(monitorPath: monitorPath)
        self.onExit = onExit
        let v2Complete = ["cpu", "memory", "pids"].allSatisfy(layout.v2Controllers.contains)
        self.cgroupVersion = layout.v2Mount != nil && v2Complete ? .v2 : .v1
        guard !cgroupsRoot.isEmpty, !cgroupsRoot.hasPrefix("/"),
              cgroupsRoot.split(separator: "/", omittingEmptySubsequences: false).allSatisfy({ $0 != ".." && $0 != "." && !$0.isEmpty }) else {
            throw ContainerizerError(.invalidArgument, context: "cgroups root \(cgroupsRoot)", detail: "must be a relative path without ..")
        }
    }

    /// The cgroup of container `id`: `<parent>/<id>`, the parent being the cgroups root or
    /// the container's own `cgroupParent`.
    public func cgroup(for id: String, parent: String? = nil) -> any ContainerCgroup {
        let parentPath = parent.map { $0.split(separator: "/").joined(separator: "/") }.flatMap { $0.isEmpty ? nil : $0 }
        let root = parentPath ?? cgroupsRoot
        switch cgroupVersion {
        case .v1: return CgroupV1(layout: layout, root: root, id: id)
        case .v2: return CgroupV2(mount: layout.v2Mount!, root: root, id: id, available: layout.v2Controllers)
        }
    }

    /// The cgroup of a container with `config`.
    func cgroup(for id: String, _ config: ContainerConfig) -> any ContainerCgroup {
        cgroup(for: id, parent: config.cgroupParent)
    }

    static func validate(cgroupParent: String?) throws(ContainerizerError) {
        guard let parent = cgroupParent else { return }
        let parts = parent.split(separator: "/")
        guard parent.utf8.count < 1024, !parts.contains(".."), !parts.contains("."), !parent.contains("\0") else {
            throw ContainerizerError(.invalidArgument, context: "cgroup parent \"\(parent)\"", detail: "must be a cgroup path without . or ..")
        }
    }

    static func validate(id: String) throws(ContainerizerError) {
        let allowed = id.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }
        guard !id.isEmpty, id.count <= 128, allowed, id != ".", id != ".." else {
            throw ContainerizerError(.invalidArgument, context: "container id \"\(id)\"",
                                     detail: "use 1–128 letters, digits, '-', '_' or '.'")
        }
    }

    /// Launches a container: checkpoint, cgroup, isolators' prepare, the monitor, isolate.
    /// On any failure everything made so far is undone and the error names the stage.
    @discardableResult
    public func launch(id: String, config: ContainerConfig) throws(ContainerizerError) -> ContainerInfo {
        try Self.validate(id: id)
        let exists = entries.withLock { $0[id] != nil }
        let checkpoint = Checkpoint(stateRoot: stateRoot, id: id)
        guard !exists, access(checkpoint.directory, F_OK) != 0 else { throw ContainerizerError(.alreadyExists, context: id) }
        try Self.validate(cgroupParent: config.cgroupParent)
        let createdAt = Self.now()
        let launchLock = try checkpoint.createLocked()
        defer { close(launchLock) }
        let cgroup = cgroup(for: id, config)
        let context = IsolationContext(id: id, config: config, cgroup: cgroup)
        var started: Launcher.Started?
        do {
            try checkpoint.writeJSON("config.json", config)
            try cgroup.create()
            if config.privileged, let v1 = cgroup as? CgroupV1 { try v1.allowAllDevices() }
            if !config.privileged, let v1 = cgroup as? CgroupV1 {
                for device in config.devices ?? [] { try v1.allowDevice(try Self.deviceRule(device)) }
            }
            if !config.privileged, let v2 = cgroup as? CgroupV2 {
                var rules = DeviceRules.defaultAllowed
                for device in config.devices ?? [] { rules.append(try Self.deviceRule(device)) }
                try v2.restrictDevices(to: rules)
            }
            var spec = try baseSpec(id: id, config: config, checkpoint: checkpoint, cgroup: cgroup)
            for isolator in isolators { try isolator.prepare(context, into: &spec) }
            try checkpoint.write("launch.spec", spec.text)
            let launched = try launcher.launch(id: id, specPath: checkpoint.specPath)
            started = launched
            let startTime = processStartTime(launched.monitorPid) ?? 0
            try checkpoint.write("monitor", "\(launched.monitorPid) \(startTime)\n")
            for isolator in isolators { try isolator.isolate(context, pid: launched.pid) }
            let info = ContainerInfo(id: id, pid: launched.pid, monitorPid: launched.monitorPid, monitorStartTime: startTime,
                                     createdAt: createdAt, startedAt: Self.now(), state: .running, exit: nil,
                                     labels: config.labels, logPath: config.logPath)
            try checkpoint.writeJSON("status.json", info)
            entries.withLock { $0[id] = Entry(info: info, config: config) }
            watch(id)
            return info
        } catch {
            try? cgroup.killAll()
            if let started {
                // The monitor is this process's child: wait for it (it exits once the killed
                // container's output is drained), so it is not left a zombie.
                var status: Int32 = 0
                while waitpid(started.monitorPid, &status, 0) < 0 && errno == EINTR {}
            }
            for isolator in isolators.reversed() { try? isolator.cleanup(context) }
            try? cgroup.destroy()
            checkpoint.remove()
            throw error
        }
    }

    /// The devices-cgroup rule of a host device: "c 10:229 rw".
    static func deviceRule(_ device: ContainerConfig.Device) throws(ContainerizerError) -> String {
        var info = stat()
        guard stat(device.hostPath, &info) == 0 else {
            throw ContainerizerError(.invalidArgument, context: "device \(device.hostPath)", errno: errno)
        }
        let kind: String
        switch info.st_mode & S_IFMT {
        case S_IFCHR: kind = "c"
        case S_IFBLK: kind = "b"
        default: throw ContainerizerError(.invalidArgument, context: "device \(device.hostPath)", detail: "is not a device node")
        }
        let permissions = device.permissions.isEmpty ? "rwm" : device.permissions
        guard permissions.allSatisfy({ "rwm".contains($0) }) else {
            throw ContainerizerError(.invalidArgument, context: "device \(device.hostPath)", detail: "permissions \"\(permissions)\" are not some of rwm")
        }
        let major = (info.st_rdev >> 8) & 0xfff | ((info.st_rdev >> 32) & ~0xfff)
        let minor = (info.st_rdev & 0xff) | ((info.st_rdev >> 12) & ~0xff)
        return "\(kind) \(major):\(minor) \(permissions)"
    }

    /// The monitor's spec before the isolators add theirs: process, user, security, I/O.
    private func baseSpec(id: String, config: ContainerConfig, checkpoint: Checkpoint, cgroup: any ContainerCgroup) throws(ContainerizerError) -> LaunchSpec {
        let holdsPIDNamespace = config.holdsPIDNamespace ?? false
        guard !config.args.isEmpty || holdsPIDNamespace else {
            throw ContainerizerError(.invalidArgument, context: "container \(id)", detail: "no command")
        }
        var spec = LaunchSpec()
        spec.add("id", id)
        if holdsPIDNamespace { spec.add("pause", "1") }
        for arg in config.args { spec.add("arg", arg) }
        for variable in config.env { spec.add("env", variable) }
        spec.add("cwd", config.workingDirectory.isEmpty ? "/" : config.workingDirectory)
        if !config.hostname.isEmpty { spec.add("hostname", config.hostname) }
        spec.add("user", String(config.user.uid), String(config.user.gid))
        for gid in config.user.additionalGids { spec.add("group", String(gid)) }
        for (name, mode) in [("net", config.namespaces.network), ("ipc", config.namespaces.ipc), ("uts", config.namespaces.uts)] {
            switch mode {
            case .new: spec.add("namespace", name)
            case .host: break
            case .join(let path): spec.add("join", name, path)
            }
        }
        if let userns = config.userNamespace {
            spec.add("join", "user", userns.path)
            spec.add("userns_root", String(userns.rootUID), String(userns.rootGID))
        }
        for directory in cgroup.directories { spec.add("cgroup", directory) }
        addCgroupFilesystem(cgroup, privileged: config.privileged, to: &spec)
        try addSecurity(config, to: &spec)
        if config.tty { spec.add("tty", "1") }
        if config.stdin ?? false { spec.add("stdin", "1") }
        if config.stdinOnce ?? false { spec.add("stdin_once", "1") }
        let attachPath = attachSocketPath(id)
        if attachPath.utf8.count < 108 {
            mkdir(stateRoot + "/attach", 0o700)
            spec.add("attach", attachPath)
        }
        if let log = config.logPath { spec.add("log", log) }
        spec.add("exit", checkpoint.exitPath)
        spec.add("pid", checkpoint.pidPath)
        return spec
    }

    /// The container's own cgroups at /sys/fs/cgroup, as runc shows them: on v1 one directory
    /// per hierarchy (named as the host mounts it, "cpu,cpuacct", with links for each
    /// controller); on v2 the container's directory is the root.
    func addCgroupFilesystem(_ cgroup: any ContainerCgroup, privileged: Bool, to spec: inout LaunchSpec) {
        if privileged { spec.add("cgroupfs_writable", "1") }
        if let v2 = cgroup as? CgroupV2 {
            spec.add("cgroupfs", v2.path, ".")
            return
        }
        guard let v1 = cgroup as? CgroupV1 else { return }
        var hierarchies: [String: String] = [:]  // name -> directory
        var links: [String: String] = [:]
        for (controller, directory) in v1.paths {
            guard let mount = v1.mounts[controller] else { continue }
            let name = String(mount.split(separator: "/").last ?? Substring(controller))
            hierarchies[name] = directory
            if name != controller { links[controller] = name }
        }
        for (name, directory) in hierarchies.sorted(by: { $0.key < $1.key }) { spec.add("cgroupfs", directory, name) }
        for (alias, name) in links.sorted(by: { $0.key < $1.key }) where hierarchies[alias] == nil { spec.add("cgroupfs_link", alias, name) }
    }

    /// Capabilities, no_new_privs, seccomp, oom_score_adj and rlimits: what a container's
    /// processes (its first, and every exec) run with.
    func addSecurity(_ config: ContainerConfig, to spec: inout LaunchSpec) throws(ContainerizerError) {
        // Nothing beyond what this process holds can be granted (capset would fail).
        let capabilities = Capabilities(mask: (config.privileged ? Capabilities.all : config.capabilities).mask & Capabilities.grantable.mask)
        spec.add("caps", String(capabilities.mask, radix: 16))
        if config.noNewPrivileges { spec.add("no_new_privs", "1") }
        if !config.privileged, let filter = try config.seccomp.filter(capabilities: capabilities) {
            spec.add("seccomp_default", filter.defaultAction)
            for rule in filter.rules {
                spec.add("seccomp", fields: [rule.action, rule.syscall] + rule.args.flatMap {
                    [String($0.0), $0.1, String($0.2), String($0.3)]
                })
            }
        }
        if let adjust = config.oomScoreAdj { spec.add("oom_score_adj", String(max(0, adjust))) }
        for limit in config.rlimits {
            spec.add("rlimit", limit.name, String(limit.soft), String(limit.hard))
        }
    }

    // MARK: Exits

    /// Watches the monitor's pidfd: it exits right after recording the container's exit.
    private func watch(_ id: String) {
        guard let info = entries.withLock({ $0[id]?.info }), info.state == .running else { return }
        let watch = ExitWatch(pid: info.monitorPid) { [weak self] in self?.monitorExited(id) }
        entries.withLock { $0[id]?.watch = watch }
        watch.start()
    }

    private func monitorExited(_ id: String) {
        guard let entry = entries.withLock({ $0[id] }), entry.info.state == .running else { return }
        let checkpoint = Checkpoint(stateRoot: stateRoot, id: id)
        let exitRecord = checkpoint.readExit()
        var usage = CgroupUsage()
        let context = IsolationContext(id: id, config: entry.config, cgroup: cgroup(for: id, entry.config))
        for isolator in isolators { try? isolator.usage(context, into: &usage) }
        let status: ExitStatus
        if let exitRecord {
            let oom = exitRecord.signal == SIGKILL && usage.oomKills > 0
            status = ExitStatus(exitCode: exitRecord.exitCode, signal: exitRecord.signal, finishedAt: exitRecord.finishedAt,
                                reason: oom ? "OOMKilled" : exitRecord.exitCode == 0 ? "Completed" : "Error")
        } else {
            // The monitor died without a record (killed by hand): whatever still runs in the
            // cgroup is unsupervised; stop it and say so.
            try? context.cgroup.killAll()
            status = ExitStatus(exitCode: 255, signal: 0, finishedAt: Self.now(), reason: "Lost")
        }
        record(exit: status, for: id)
    }

    private func record(exit status: ExitStatus, for id: String) {
        let (info, waiters) = entries.withLock { entries -> (ContainerInfo?, [CheckedContinuation<ExitStatus, Never>]) in
            guard var entry = entries[id] else { return (nil, []) }
            entry.info.state = .exited
            entry.info.exit = status
            entry.watch = nil
            let waiters = entry.waiters
            entry.waiters = []
            entries[id] = entry
            return (entry.info, waiters)
        }
        guard let info else { return }
        try? Checkpoint(stateRoot: stateRoot, id: id).writeJSON("status.json", info)
        for waiter in waiters { waiter.resume(returning: status) }
        onExit?(info)
    }

    // MARK: Operations

    /// Waits for the container to exit.
    public func wait(id: String) async throws(ContainerizerError) -> ExitStatus {
        let known = entries.withLock { $0[id] != nil }
        guard known else { throw ContainerizerError(.notFound, context: id) }
        return await withCheckedContinuation { continuation in
            let done = entries.withLock { entries -> ExitStatus? in
                if let exit = entries[id]?.info.exit { return exit }
                entries[id]?.waiters.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// Sends `signal` to the container's first process (SIGKILL kills the whole cgroup).
    public func kill(id: String, signal: Int32 = SIGTERM) throws(ContainerizerError) {
        guard let (info, config) = entries.withLock({ entries in entries[id].map { ($0.info, $0.config) } }) else {
            throw ContainerizerError(.notFound, context: id)
        }
        guard info.state == .running else { return }
        // Exited already (its monitor may still be draining the output): its pid may be reused.
        if access(Checkpoint(stateRoot: stateRoot, id: id).exitPath, F_OK) == 0 { return }
        if signal == SIGKILL {
            try cgroup(for: id, config).killAll()
        } else if Glibc.kill(info.pid, signal) != 0 && errno != ESRCH {
            throw ContainerizerError(.invalidArgument, context: "signal \(signal) to container \(id)", errno: errno)
        }
    }

    /// Changes the limits of a running container.
    public func update(id: String, resources: ResourceLimits) throws(ContainerizerError) {
        guard var config = entries.withLock({ $0[id]?.config }) else { throw ContainerizerError(.notFound, context: id) }
        let context = IsolationContext(id: id, config: config, cgroup: cgroup(for: id, config))
        for isolator in isolators { try isolator.update(context, resources) }
        config.resources = resources
        try Checkpoint(stateRoot: stateRoot, id: id).writeJSON("config.json", config)
        entries.withLock { $0[id]?.config = config }
    }

    /// CPU, memory (working set as the kubelet computes it), pids and OOM kills.
    public func usage(id: String) throws(ContainerizerError) -> CgroupUsage {
        guard let config = entries.withLock({ $0[id]?.config }) else { throw ContainerizerError(.notFound, context: id) }
        var usage = CgroupUsage()
        let context = IsolationContext(id: id, config: config, cgroup: cgroup(for: id, config))
        for isolator in isolators { try isolator.usage(context, into: &usage) }
        return usage
    }

    /// Kills what still runs, undoes every isolator, removes the cgroup and the checkpoint.
    ///
    /// With `deferRemoval` the checkpoint is moved aside (one rename: the id is free and
    /// recovery no longer sees the container when this returns) and its files are deleted on
    /// ``removals``; a move-aside left by a crash is deleted by ``recover()``.
    public func destroy(id: String, deferRemoval: Bool = false) throws(ContainerizerError) {
        // Taken out of the table first, so the exit its killing causes is not recorded into a
        // checkpoint that is being removed.
        guard let entry = entries.withLock({ $0.removeValue(forKey: id) }) else { throw ContainerizerError(.notFound, context: id) }
        entry.watch?.cancel()
        let cgroup = cgroup(for: id, entry.config)
        let context = IsolationContext(id: id, config: entry.config, cgroup: cgroup)
        do {
            try cgroup.killAll()
            for isolator in isolators.reversed() { try isolator.cleanup(context) }
            try cgroup.destroy()
        } catch {
            var restored = entry
            restored.watch = nil
            entries.withLock { $0[id] = restored }
            if restored.info.state == .running { watch(id) }
            throw error
        }
        // The monitor records the exit into the checkpoint as it goes: let it finish (it drains
        // the container's output for at most 2 s) before the checkpoint is removed.
        var waited = 0
        while waited < 500, entry.info.monitorStartTime != 0, processStartTime(entry.info.monitorPid) == entry.info.monitorStartTime {
            usleep(10_000)
            waited += 1
        }
        unlink(attachSocketPath(id))
        // Its exit watch was cancelled: reap it here if it is this process's child.
        var status: Int32 = 0
        _ = waitpid(entry.info.monitorPid, &status, WNOHANG)
        let killed = entry.info.exit ?? ExitStatus(exitCode: 137, signal: SIGKILL, finishedAt: Self.now(), reason: "Error")
        for waiter in entry.waiters { waiter.resume(returning: killed) }
        let checkpoint = Checkpoint(stateRoot: stateRoot, id: id)
        if deferRemoval {
            let aside = "\(stateRoot)/containers/\(Self.removingPrefix)\(id)-\(removalCounter.add(1, ordering: .relaxed).newValue)"
            if rename(checkpoint.directory, aside) == 0 {
                removals.remove(aside)
                return
            }
        }
        checkpoint.remove()
    }

    /// Makes the monitor reopen the container's log file (after it was rotated).
    public func reopenLog(id: String) throws(ContainerizerError) {
        guard let info = self.info(id: id) else { throw ContainerizerError(.notFound, context: id) }
        guard info.state == .running else {
            throw ContainerizerError(.invalidArgument, context: "container \(id)", detail: "is not running")
        }
        // The new file exists when this returns (the kubelet's log rotation checks); the
        // monitor then reopens it by path.
        if let path = info.logPath {
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            if fd >= 0 { close(fd) }
        }
        guard processStartTime(info.monitorPid) == info.monitorStartTime, Glibc.kill(info.monitorPid, SIGUSR1) == 0 else {
            throw ContainerizerError(.invalidArgument, context: "container \(id)", errno: errno, detail: "its monitor is gone")
        }
    }

    /// The container's state alone (cheaper than ``info(id:)`` for list calls).
    public func state(id: String) -> ContainerState? {
        entries.withLock { $0[id]?.info.state }
    }

    public func info(id: String) -> ContainerInfo? {
        entries.withLock { $0[id]?.info }
    }

    /// Every container, by creation time.
    public func list() -> [ContainerInfo] {
        entries.withLock { $0.values.map(\.info) }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    // MARK: Recovery

    /// What recovery found.
    public struct RecoveryReport: Sendable, Equatable {
        /// Still running, supervised again.
        public var running: [String] = []
        /// Ended while nobody watched, with their recorded exit.
        public var exited: [String] = []
        /// Half-created (no launch record): cleaned up.
        public var removed: [String] = []
    }

    /// Reads every checkpoint under the state root: running containers are watched again,
    /// those that ended meanwhile get their recorded exit, half-created ones are removed
    /// (their processes killed, their cgroups deleted).
    @discardableResult
    public func recover() throws(ContainerizerError) -> RecoveryReport {
        var report = RecoveryReport()
        let directory = stateRoot + "/containers"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        var recovered: [ContainerInfo] = []
        for name in names where name.hasPrefix(".launching-") {
            // A launch that died before its directory got its name (".launching-<id>-<pid>").
            if let pid = name.split(separator: "-").last.flatMap({ Int32($0) }), Glibc.kill(pid, 0) != 0, errno == ESRCH {
                try? FileManager.default.removeItem(atPath: directory + "/" + name)
            }
        }
        for name in names where name.hasPrefix(Self.removingPrefix) {
            // A destroyed container's checkpoint whose deferred removal the process did not finish.
            BackgroundRemovals.removeTree(directory + "/" + name)
        }
        for id in names where !id.hasPrefix(".") {
            let checkpoint = Checkpoint(stateRoot: stateRoot, id: id)
            if Checkpoint.isLaunching(checkpoint.directory) { continue }  // another process is launching it
            if entries.withLock({ $0[id] != nil }) { continue }
            let storedConfig = checkpoint.readJSON("config.json", as: ContainerConfig.self)
            guard let config = storedConfig, var info = checkpoint.readJSON("status.json", as: ContainerInfo.self) else {
                // Killed between creating the directory and finishing the launch.
                let cgroup = cgroup(for: id, parent: storedConfig?.cgroupParent)
                try? cgroup.killAll()
                try? cgroup.destroy()
                checkpoint.remove()
                report.removed.append(id)
                continue
            }
            if info.state == .running {
                let monitorAlive = processStartTime(info.monitorPid) == info.monitorStartTime && info.monitorStartTime != 0
                if !monitorAlive {
                    // It ended while the agent was away: the monitor recorded how.
                    entries.withLock { $0[id] = Entry(info: info, config: config) }
                    monitorExited(id)
                    info = self.info(id: id) ?? info
                    report.exited.append(id)
                } else {
                    entries.withLock { $0[id] = Entry(info: info, config: config) }
                    watch(id)
                    report.running.append(id)
                }
            } else {
                entries.withLock { $0[id] = Entry(info: info, config: config) }
                report.exited.append(id)
            }
            recovered.append(info)
        }
        for isolator in isolators { try isolator.recover(recovered) }
        return report
    }

    /// The name a destroyed container's checkpoint is moved to before its deferred removal:
    /// `.removing-<id>-<n>` (hidden: recovery skips it as a container).
    static let removingPrefix = ".removing-"

    static func now() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}

/// Fires once when a process exits, through a pidfd (Linux 5.3+) on a dispatch source, and
/// reaps it when it is a child of this process.
final class ExitWatch: Sendable {
    /// Dispatch sources are thread-safe but not marked Sendable.
    private struct Source: @unchecked Sendable { let source: any DispatchSourceProtocol }
    private let source: Mutex<Source?>
    private let pidfd: Int32
    private let handler: @Sendable () -> Void

    private let pid: Int32
    private let openError: Int32

    init(pid: Int32, handler: @escaping @Sendable () -> Void) {
        self.pid = pid
        self.pidfd = swl_pidfd_open(pid)
        self.openError = pidfd < 0 ? errno : 0
        self.handler = handler
        self.source = Mutex(nil)
    }

    func start() {
        guard pidfd >= 0 else {
            if openError == ESRCH {
                // Already gone: report at once.
                DispatchQueue.global().async { [handler] in handler() }
            } else {
                // No pidfd to be had (out of descriptors, …): poll rather than declare the
                // container dead.
                let start = processStartTime(pid)
                let timer = DispatchSource.makeTimerSource(queue: .global())
                timer.schedule(deadline: .now() + 1, repeating: 1)
                let handler = self.handler, pid = self.pid
                timer.setEventHandler { [weak self] in
                    guard processStartTime(pid) != start || start == nil else { return }
                    var status: Int32 = 0
                    _ = waitpid(pid, &status, WNOHANG)
                    self?.cancel()
                    handler()
                }
                source.withLock { $0 = Source(source: timer) }
                timer.resume()
            }
            return
        }
        let source = DispatchSource.makeReadSource(fileDescriptor: pidfd, queue: .global())
        let handler = self.handler
        let fd = pidfd
        source.setEventHandler { [weak self] in
            // Reap it if it is this process's child (it is, unless the agent restarted).
            _ = swl_reap_pidfd(fd)
            self?.cancel()
            handler()
        }
        source.setCancelHandler { close(fd) }
        let box = Source(source: source)
        self.source.withLock { $0 = box }
        source.resume()
    }

    func cancel() {
        source.withLock { $0?.source.cancel() }
    }
}
