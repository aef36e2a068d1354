import CSwiftletSyscalls

#if canImport(Glibc)
import Glibc
#endif

/// Starts `swiftlet-monitor` for a container and reads its report.
///
/// The agent never forks Swift code: it `posix_spawn`s the monitor with the spec path and a
/// report pipe on fd 3. The monitor starts its own session, clones the container, and reports
/// `ok <pid> <monitor pid>` or
/// `error <stage> <errno> <detail>` — exec format error, missing binary, permission denied,
/// a mount that failed — before closing the pipe.
public struct Launcher: Sendable {
    /// The monitor executable.
    public let monitorPath: String
    /// How long a container may take from spawn to exec before the launch fails.
    public let timeoutSeconds: Int

    public init(monitorPath: String, timeoutSeconds: Int = 60) {
        self.monitorPath = monitorPath
        self.timeoutSeconds = timeoutSeconds
    }

    /// `swiftlet-monitor` next to the running executable (the agent's, or the test runner's).
    public static func defaultMonitorPath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return "/usr/local/bin/swiftlet-monitor" }
        let executable = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = executable[..<(executable.lastIndex(of: "/") ?? executable.endIndex)]
        return directory + "/swiftlet-monitor"
    }

    /// What the monitor reported.
    public struct Started: Sendable, Equatable {
        public var pid: Int32
        public var monitorPid: Int32
    }

    /// Spawns the monitor on `specPath`; returns once the container runs or failed to. A
    /// monitor that reported success is left running as a child of this process: whoever
    /// watches it reaps it (ExitWatch).
    public func launch(id: String, specPath: String) throws(ContainerizerError) -> Started {
        let (pid, reportFD) = try spawn(id: id, arguments: [specPath, "3"], stdio: nil, resize: nil)
        defer { close(reportFD) }
        return try readReport(id: id, monitor: pid, reportFD: reportFD, untilEOF: true)
    }

    /// A started exec: the report pipe stays open until the process ends ("exit" line).
    struct StartedExec {
        var pid: Int32
        var monitorPid: Int32
        var reportFD: Int32
    }

    /// Spawns the monitor in exec mode with `stdio` as its standard descriptors.
    func startExec(id: String, specPath: String, stdio: (Int32, Int32, Int32), resize: Int32?) throws(ContainerizerError) -> StartedExec {
        let arguments = resize == nil ? [specPath, "3"] : [specPath, "3", "4"]
        let (pid, reportFD) = try spawn(id: id, arguments: arguments, stdio: stdio, resize: resize)
        do {
            let started = try readReport(id: id, monitor: pid, reportFD: reportFD, untilEOF: false)
            return StartedExec(pid: started.pid, monitorPid: started.monitorPid, reportFD: reportFD)
        } catch {
            close(reportFD)
            throw error
        }
    }

    /// posix_spawns the monitor with a report pipe on fd 3 (and `resize` on 4, `stdio` on
    /// 0–2 when given); returns its pid and the pipe's read end.
    private func spawn(id: String, arguments: [String], stdio: (Int32, Int32, Int32)?, resize: Int32?) throws(ContainerizerError) -> (Int32, Int32) {
        var pipeEnds: [Int32] = [0, 0]
        guard swl_pipe_cloexec(&pipeEnds) == 0 else {
            throw ContainerizerError(.launch(stage: "monitor"), context: id, errno: errno, detail: "pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdio {
            posix_spawn_file_actions_adddup2(&actions, stdio.0, 0)
            posix_spawn_file_actions_adddup2(&actions, stdio.1, 1)
            posix_spawn_file_actions_adddup2(&actions, stdio.2, 2)
        }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 3)
        if let resize { posix_spawn_file_actions_adddup2(&actions, resize, 4) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The monitor must not inherit the agent's blocked signals or ignored SIGPIPE.
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = [monitorPath] + arguments
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArgs { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, monitorPath, &actions, &attributes, &cArgs, environ)
        close(pipeEnds[1])
        guard spawned == 0 else {
            close(pipeEnds[0])
            throw ContainerizerError(.launch(stage: "monitor"), context: id, errno: spawned,
                                     detail: "spawn \(monitorPath): \(String(cString: strerror(spawned)))")
        }
        return (pid, pipeEnds[0])
    }

    /// Reads the monitor's "ok" or "error" line (to EOF for a container launch).
    private func readReport(id: String, monitor pid: Int32, reportFD: Int32, untilEOF: Bool) throws(ContainerizerError) -> Started {
        guard let report = untilEOF ? Self.readAll(reportFD, timeoutSeconds: timeoutSeconds)
                                    : Self.readLine(reportFD, timeoutSeconds: timeoutSeconds) else {
            // Stuck before exec (a hung FUSE or NFS path, a join that blocks): give up on it.
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            throw ContainerizerError(.launch(stage: "monitor"), context: id, errno: ETIMEDOUT,
                                     detail: "the container did not start within \(timeoutSeconds) s")
        }
        let fields = report.split(separator: "\n").first.map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) } ?? []
        if fields.count == 3, fields[0] == "ok", let child = Int32(fields[1]), let monitor = Int32(fields[2]) {
            // The monitor stays this process's child: the exit watch reaps it.
            return Started(pid: child, monitorPid: monitor)
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if fields.count >= 4, fields[0] == "error" {
            let code = Int32(fields[2]) ?? 0
            throw ContainerizerError(.launch(stage: fields[1]), context: id, errno: code == 0 ? nil : code,
                                     detail: fields[3...].joined(separator: "\t"))
        }
        throw ContainerizerError(.launch(stage: "monitor"), context: id,
                                 detail: "monitor exited \(status) without a report\(report.isEmpty ? "" : ": \(report)")")
    }

    /// Reads one line (or to EOF); nil if nothing ends it within the timeout.
    static func readLine(_ fd: Int32, timeoutSeconds: Int) -> String? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        deadline.tv_sec += timeoutSeconds
        while true {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let left = Int32(max(0, (deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1_000_000))
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, left)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { return nil }
            let count = Glibc.read(fd, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 || byte == UInt8(ascii: "\n") { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads until EOF; nil if nothing ends it within the timeout.
    static func readAll(_ fd: Int32, timeoutSeconds: Int) -> String? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        deadline.tv_sec += timeoutSeconds
        while true {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let left = Int32(max(0, (deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1_000_000))
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, left)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { return nil }
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
