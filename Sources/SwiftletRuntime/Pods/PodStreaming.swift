import CRI
import Containerizer
import Foundation
import Synchronization
import StreamingServer

#if canImport(Glibc)
import Glibc
#endif

/// The streaming server's sessions on this node's pods: exec through the containerizer's
/// exec, attach through the container's monitor, port-forward into the pod's network
/// namespace.
public struct PodStreaming: StreamingRuntime {
    let pods: PodRuntime

    public init(pods: PodRuntime) {
        self.pods = pods
    }

    static func streamingError(_ error: CRIError) -> StreamingError {
        switch error.code {
        case .notFound: StreamingError(.notFound, error.message)
        case .failedPrecondition: StreamingError(.notRunning, error.message)
        case .invalidArgument: StreamingError(.invalidArgument, error.message)
        default: StreamingError(.internal, error.message)
        }
    }

    public func exec(containerID: String, command: [String], io: StreamIO) async throws -> Int32 {
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if devnull >= 0 { close(devnull) } }
        var resizePipe: [Int32] = [-1, -1]
        if io.tty {
            // The monitor closes every descriptor it was not given, so a pipe without
            // O_CLOEXEC (Glibc's Swift module lacks pipe2) reaches no container.
            if pipe(&resizePipe) != 0 { resizePipe = [-1, -1] }
            for fd in resizePipe where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        defer { for fd in resizePipe where fd >= 0 { close(fd) } }
        let stdout = io.stdout ?? devnull
        let session: ExecSession
        let pods = self.pods, stdin = io.stdin ?? devnull, stderr = io.stderr ?? (io.tty ? stdout : devnull)
        let resize = resizePipe[0] >= 0 ? resizePipe[0] : nil
        do {
            // Spawning the monitor and waiting for its exec can block (a hung mount): off the pool.
            session = try await Offload.throwing { () throws(CRIError) -> ExecSession in
                try pods.startExec(containerID, command: command, tty: io.tty, stdin: stdin, stdout: stdout, stderr: stderr, resize: resize)
            }
        } catch {
            throw Self.streamingError(error)
        }
        let resizeWriter = resizePipe[1]
        return await withTaskGroup(of: Int32?.self) { group in
            group.addTask {
                for await size in io.resize where resizeWriter >= 0 {
                    let line = Array("\(size.width) \(size.height)\n".utf8)
                    _ = line.withUnsafeBytes { write(resizeWriter, $0.baseAddress, $0.count) }
                }
                return nil
            }
            group.addTask { await Offload.run { session.waitBlocking() } }
            var code: Int32 = 255
            while let result = await group.next() {
                if let result {
                    code = result
                    group.cancelAll()
                }
            }
            return code
        }
    }

    public func attach(containerID: String, io: StreamIO) async throws {
        let session: AttachSession
        do {
            let record = try pods.container(containerID)
            guard pods.containerState(record) == .containerRunning else {
                throw CRIError(.failedPrecondition, "container \(containerID) is not running")
            }
            if io.stdin != nil && !(record.launch.stdin ?? false) {
                throw CRIError.invalidArgument("container \(containerID) was not created with stdin")
            }
            session = try pods.containerizer.attach(id: containerID)
        } catch let error as CRIError {
            throw Self.streamingError(error)
        } catch {
            throw StreamingError(.internal, "\(error)")
        }
        let finished = Finished()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await Offload.run { session.pumpOutput(stdout: io.stdout, stderr: io.stderr) }
                finished.set()
            }
            if let stdin = io.stdin {
                group.addTask {
                    await Offload.run { Self.forwardInput(from: stdin, to: session, until: finished) }
                }
            }
            group.addTask {
                for await size in io.resize { session.resize(width: size.width, height: size.height) }
            }
            await group.next()  // the output ended: the container exited
            group.cancelAll()
        }
    }

    /// Copies the client's stdin to the session (polling, so it stops when the output does).
    static func forwardInput(from fd: Int32, to session: AttachSession, until finished: Finished) {
        var buffer = [UInt8](repeating: 0, count: 32768)
        while !finished.isSet {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 200)
            if ready < 0 && errno != EINTR { return }
            if ready <= 0 { continue }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                session.sendStdin([])
                return
            }
            guard session.sendStdin(buffer[0..<count]) else { return }
        }
    }

    /// A flag one task sets for the others.
    final class Finished: Sendable {
        private let flag = Mutex(false)
        func set() { flag.withLock { $0 = true } }
        var isSet: Bool { flag.withLock { $0 } }
    }

    public func portForward(podSandboxID: String, port: Int32) async throws -> Int32 {
        let pods = self.pods
        do {
            return try await Offload.throwing { () throws(CRIError) -> Int32 in try pods.connect(sandboxID: podSandboxID, port: port) }
        } catch {
            throw Self.streamingError(error)
        }
    }
}
