import CSwiftletSyscalls
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs a helper tool (criu, tar) to completion, its output into a file, with a time limit.
public enum ToolProcess {
    /// How a run ended.
    public enum Outcome: Sendable, Equatable {
        /// It exited with this status (128 + the signal that killed it).
        case exited(Int32)
        /// It ran past the timeout and was killed.
        case timedOut
        /// It could not be started (the errno).
        case notStarted(Int32)
    }

    /// Runs `binary` with `arguments` (stdin /dev/null, stdout and stderr into `output`),
    /// killing it (SIGKILL) once `timeout` has passed.
    public static func run(_ binary: String, _ arguments: [String], output: String, timeout: Duration?) -> Outcome {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let words: [String] = [binary] + arguments
        var argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, binary, &actions, nil, &argv, &envp)
        guard spawned == 0 else { return .notStarted(spawned) }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let pidfd = swl_pidfd_open(pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { return .exited(127) }
            var waitMilliseconds: Int32 = 100
            if let deadline {
                let left = deadline - ContinuousClock.now
                if left <= .zero {
                    Glibc.kill(pid, SIGKILL)
                    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                    return .timedOut
                }
                let (seconds, attoseconds) = left.components
                waitMilliseconds = Int32(min(1000, seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1))
            }
            if pidfd >= 0 {
                var descriptor = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
                _ = poll(&descriptor, 1, waitMilliseconds)
            } else {
                usleep(10_000)
            }
        }
        return .exited((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f))
    }
}
