import CSwiftletSyscalls
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A process started in a running container (the CRI's Exec and ExecSync): it joins the
/// container's namespaces and cgroups and runs with the container's user, capabilities,
/// seccomp filter and environment.
public final class ExecSession: Sendable {
    /// The process, as the agent's pid namespace sees it.
    public let pid: Int32
    private let monitorPid: Int32
    private let reportFD: Int32

    init(pid: Int32, monitorPid: Int32, reportFD: Int32) {
        self.pid = pid
        self.monitorPid = monitorPid
        self.reportFD = reportFD
    }

    deinit { close(reportFD) }

    /// The report pipe: readable when the process has ended (for callers that poll).
    public var exitDescriptor: Int32 { reportFD }

    /// Blocks until the process ended; its exit code (128 + signal when killed).
    public func waitBlocking() -> Int32 {
        let report = Launcher.readAll(reportFD, timeoutSeconds: Int(Int32.max / 1000)) ?? ""
        var status: Int32 = 0
        while waitpid(monitorPid, &status, 0) < 0 && errno == EINTR {}
        for line in report.split(separator: "\n") {
            let fields = line.split(separator: "\t")
            if fields.count == 3, fields[0] == "exit", let code = Int32(fields[1]) { return code }
        }
        return 255  // the monitor died without a report
    }

    /// Kills the process (not the container).
    public func kill(signal: Int32 = SIGKILL) {
        _ = Glibc.kill(pid, signal)
    }
}

/// What ExecSync returns.
public struct ExecResult: Sendable, Equatable {
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    public var exitCode: Int32
    /// The timeout passed and the process was killed.
    public var timedOut: Bool
    /// The call was cancelled and the process was killed.
    public var cancelled: Bool = false
}

/// Stops an ``Containerizer/execSync(id:args:timeout:outputLimit:cancellation:)`` from any
/// thread: its process is killed (not the container) and the call returns what it read. An
/// eventfd wakes the waiting call at once.
public final class ExecCancellation: Sendable {
    private let descriptor: Int32
    private let cancelled = Atomic<Bool>(false)

    public init() {
        descriptor = swl_eventfd()
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// Kills the exec's process; idempotent.
    public func cancel() {
        guard !cancelled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt64 = 1
        if descriptor >= 0 { _ = write(descriptor, &one, 8) }
    }

    /// Whether ``cancel()`` was called.
    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Readable once cancelled (-1 if no eventfd could be made: then only polled).
    var wakeDescriptor: Int32 { descriptor }
}

extension Containerizer {
    /// Starts `args` in the running container `id` with `stdin`, `stdout` and `stderr` (with
    /// `tty`, a terminal inside the container relayed to them; `resize` carries
    /// "<width> <height>\n" lines). The descriptors are the caller's: it closes them.
    public func exec(id: String, args: [String], tty: Bool = false, stdin: Int32, stdout: Int32, stderr: Int32,
                     resize: Int32? = nil) throws(ContainerizerError) -> ExecSession {
        guard let (info, config) = entries.withLock({ entries in entries[id].map { ($0.info, $0.config) } }) else {
            throw ContainerizerError(.notFound, context: id)
        }
        let checkpoint = Checkpoint(stateRoot: stateRoot, id: id)
        guard info.state == .running, access(checkpoint.exitPath, F_OK) != 0 else {
            throw ContainerizerError(.invalidArgument, context: "container \(id)", detail: "is not running")
        }
        guard !args.isEmpty else {
            throw ContainerizerError(.invalidArgument, context: "exec in \(id)", detail: "no command")
        }
        var spec = LaunchSpec()
        spec.add("mode", "exec")
        spec.add("id", id)
        for arg in args { spec.add("arg", arg) }
        for variable in config.env { spec.add("env", variable) }
        spec.add("cwd", config.workingDirectory.isEmpty ? "/" : config.workingDirectory)
        spec.add("user", String(config.user.uid), String(config.user.gid))
        for gid in config.user.additionalGids { spec.add("group", String(gid)) }
        // Every path is opened before the mount namespace is entered (it is joined last).
        let namespaces = "/proc/\(info.pid)/ns/"
        if config.namespaces.pid != .host { spec.add("join", "pid", namespaces + "pid") }
        for name in ["net", "ipc", "uts"] { spec.add("join", name, namespaces + name) }
        // The user namespace is entered after every other (the monitor defers it).
        if config.userNamespace != nil { spec.add("join", "user", namespaces + "user") }
        spec.add("join", "mount", namespaces + "mnt")
        for directory in cgroup(for: id, config).directories { spec.add("cgroup", directory) }
        try addSecurity(config, to: &spec)
        if tty { spec.add("tty", "1") }

        let specName = "exec-\(UUID().uuidString.prefix(8)).spec"
        let specPath = checkpoint.directory + "/" + specName
        try checkpoint.write(specName, spec.text)
        defer { unlink(specPath) }
        // The container must still be the process it was when the spec was written.
        guard processStartTime(info.monitorPid) == info.monitorStartTime, access(checkpoint.exitPath, F_OK) != 0 else {
            throw ContainerizerError(.invalidArgument, context: "container \(id)", detail: "is not running")
        }
        let started = try launcher.startExec(id: id, specPath: specPath, stdio: (stdin, stdout, stderr), resize: resize)
        return ExecSession(pid: started.pid, monitorPid: started.monitorPid, reportFD: started.reportFD)
    }

    /// Runs `args` in the container and collects its output (at most `outputLimit` bytes of
    /// each stream; the rest is read and dropped). Blocks: call it off the async executors.
    /// A timeout kills the process, not the container; so does `cancellation` (the result then
    /// has `cancelled` set).
    public func execSync(id: String, args: [String], timeout: Duration?, outputLimit: Int = 16 << 20,
                         cancellation: ExecCancellation? = nil) throws(ContainerizerError) -> ExecResult {
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard swl_pipe_cloexec(&outPipe) == 0 else { throw ContainerizerError(.launch(stage: "exec"), context: id, errno: errno, detail: "pipe") }
        guard swl_pipe_cloexec(&errPipe) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            throw ContainerizerError(.launch(stage: "exec"), context: id, errno: errno, detail: "pipe")
        }
        let devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(outPipe[0]); close(errPipe[0]); if devnull >= 0 { close(devnull) } }
        let session: ExecSession
        do {
            session = try exec(id: id, args: args, stdin: devnull, stdout: outPipe[1], stderr: errPipe[1])
            close(outPipe[1]); close(errPipe[1])
        } catch {
            close(outPipe[1]); close(errPipe[1])
            throw error
        }
        var output: [[UInt8]] = [[], []]
        var open = [true, true]
        var timedOut = false
        var cancelled = false
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let limitMs: Int64? = timeout.map { Int64($0.components.seconds) * 1000 + Int64($0.components.attoseconds / 1_000_000_000_000_000) }
        let startMs = Int64(deadline.tv_sec) * 1000 + Int64(deadline.tv_nsec) / 1_000_000
        var chunk = [UInt8](repeating: 0, count: 65536)
        var exitedAtMs: Int64?
        while open[0] || open[1] {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let nowMs = Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
            var wait: Int64 = 1000
            if let limitMs, !timedOut {
                if nowMs - startMs >= limitMs {
                    timedOut = true
                    session.kill()
                } else {
                    wait = min(wait, limitMs - (nowMs - startMs))
                }
            }
            if let cancellation, cancellation.isCancelled, !cancelled {
                cancelled = true
                session.kill()
            }
            // Once the process ended, what it left running may hold the pipes: drain briefly.
            if let exitedAtMs {
                if nowMs - exitedAtMs > 500 { break }
                wait = min(wait, 500 - (nowMs - exitedAtMs))
            }
            var fds = [pollfd(fd: open[0] ? outPipe[0] : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: open[1] ? errPipe[0] : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: exitedAtMs == nil ? session.exitDescriptor : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: cancelled ? -1 : cancellation?.wakeDescriptor ?? -1, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 4, Int32(max(0, wait)))
            if ready < 0 && errno != EINTR { break }
            for index in 0..<2 where open[index] && fds[index].revents != 0 {
                let count = chunk.withUnsafeMutableBytes { read(index == 0 ? outPipe[0] : errPipe[0], $0.baseAddress, $0.count) }
                if count > 0 {
                    let room = max(0, outputLimit - output[index].count)
                    output[index].append(contentsOf: chunk[0..<min(count, room)])
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    open[index] = false
                }
            }
            if fds[2].revents != 0 { exitedAtMs = nowMs }
        }
        let code = session.waitBlocking()
        return ExecResult(stdout: output[0], stderr: output[1], exitCode: code, timedOut: timedOut, cancelled: cancelled)
    }
}
