import Foundation
import StreamingServer
import Synchronization

/// write(2) from a thread that has not blocked SIGPIPE (this runtime's calls run on the
/// cooperative pool): once the session is gone its pipe has no reader, and that write's
/// SIGPIPE would end the test process. It is blocked for the write and taken back.
func writeWithoutSIGPIPE(_ fd: Int32, _ bytes: [UInt8]) -> Int {
    var pipeSignal = sigset_t()
    var previous = sigset_t()
    sigemptyset(&pipeSignal)
    sigaddset(&pipeSignal, SIGPIPE)
    pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    if written < 0 && errno == EPIPE {
        var zero = timespec()
        while sigtimedwait(&pipeSignal, nil, &zero) == SIGPIPE {}
    }
    pthread_sigmask(SIG_SETMASK, &previous, nil)
    return written
}

/// A `StreamingRuntime` over real local processes: exec runs the command with posix_spawn
/// on the session's descriptors; `resize-echo N` writes the first N terminal sizes to
/// stdout instead; attach runs `cat`; port-forward connects to 127.0.0.1.
final class TestRuntime: StreamingRuntime {
    /// Every exec that returned, in order (container ID, exit code).
    let finished: AsyncStream<(String, Int32)>
    private let finishedSink: AsyncStream<(String, Int32)>.Continuation

    init() {
        (finished, finishedSink) = AsyncStream.makeStream(of: (String, Int32).self)
    }

    func exec(containerID: String, command: [String], io: StreamIO) async throws -> Int32 {
        guard containerID != "missing" else { throw StreamingError(.notFound, "container \"missing\" not found") }
        if command.first == "resize-echo", let count = Int(command.last ?? "") {
            var seen = 0
            for await size in io.resize {
                let line = Array("\(size.width)x\(size.height)\n".utf8)
                _ = writeWithoutSIGPIPE(io.stdout!, line)
                seen += 1
                if seen == count { break }
            }
            finishedSink.yield((containerID, 0))
            return 0
        }
        let code = try await Self.spawnAndWait(command, io: io)
        finishedSink.yield((containerID, code))
        return code
    }

    func attach(containerID: String, io: StreamIO) async throws {
        guard containerID != "missing" else { throw StreamingError(.notFound, "container \"missing\" not found") }
        _ = try await Self.spawnAndWait(["/bin/cat"], io: io)
    }

    func portForward(podSandboxID: String, port: Int32) async throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw StreamingError(.internal, "dial tcp 127.0.0.1:\(port): connect: \(String(cString: strerror(code)))")
        }
        return fd
    }

    /// posix_spawn with the session's descriptors as 0, 1 and 2 (/dev/null for absent ones;
    /// stdout as stderr with a tty), then waitpid on a thread of its own.
    static func spawnAndWait(_ command: [String], io: StreamIO) async throws -> Int32 {
        let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(devNull) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, io.stdin ?? devNull, 0)
        posix_spawn_file_actions_adddup2(&actions, io.stdout ?? devNull, 1)
        posix_spawn_file_actions_adddup2(&actions, io.stderr ?? (io.tty ? (io.stdout ?? devNull) : devNull), 2)
        var argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, command[0], &actions, nil, &argv, &envp)
        guard spawned == 0 else { throw StreamingError(.internal, "spawn \(command[0]): errno \(spawned)") }
        let child = pid
        return await withCheckedContinuation { continuation in
            let thread = Thread {
                var status: Int32 = 0
                while waitpid(child, &status, 0) < 0 && errno == EINTR {}
                let exited = status & 0x7f == 0
                continuation.resume(returning: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f))
            }
            thread.start()
        }
    }
}

/// A TCP echo server on 127.0.0.1: each connection gets back what it sends, as it sends it;
/// the server closes when the client's side ends.
final class EchoServer: Sendable {
    let port: UInt16
    private let fd: Int32

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(listener, pointer, length) == 0, listen(listener, 16) == 0 else { return -1 }
                return getsockname(listener, pointer, &length)
            }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        fd = listener
        port = UInt16(bigEndian: address.sin_port)
        Thread {
            while true {
                let client = accept(listener, nil, nil)
                // Closed here, not in stop(): closing under a blocked accept would free the
                // number for another test's socket, which this thread would then accept from.
                if client < 0 { close(listener); return }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                Thread {
                    var buffer = [UInt8](repeating: 0, count: 65536)
                    reading: while true {
                        let n = read(client, &buffer, buffer.count)
                        if n <= 0 { break }
                        var offset = 0
                        while offset < n {
                            let written = buffer[offset..<n].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                            if written <= 0 { break reading }
                            offset += written
                        }
                    }
                    close(client)
                }.start()
            }
        }.start()
    }

    /// Wakes the accept thread, which closes the listener.
    func stop() { shutdown(fd, Int32(SHUT_RDWR)) }
}

/// A port on 127.0.0.1 nothing listens on (bound, then closed).
/// A loopback TCP port that refuses connections for as long as this value lives: its socket
/// stays bound without listening, so no other test can take the port meanwhile.
final class ClosedPort: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32

    init() {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = self.fd
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                _ = bind(fd, pointer, length)
                return getsockname(fd, pointer, &length)
            }
        }
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit { close(fd) }
}
