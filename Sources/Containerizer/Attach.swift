import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A connection to a running container's stdio through its monitor (the CRI's Attach): the
/// container's output as it is produced, and its stdin when it was created with one.
///
/// The monitor's protocol, on a unix socket in a root-only directory of the state: frames of one type
/// byte, a 4-byte big-endian length and the data. Output: 1 stdout, 2 stderr. Input: 0 stdin
/// (empty: end of input), 4 a terminal size "<width> <height>".
public final class AttachSession: Sendable {
    private let fd: Int32

    init(fd: Int32) { self.fd = fd }
    deinit { Glibc.close(fd) }

    /// Copies the container's output to `stdout` and `stderr` (nil: discarded) until the
    /// container exits or ``close()`` is called. Blocking.
    public func pumpOutput(stdout: Int32?, stderr: Int32?) {
        var header = [UInt8](repeating: 0, count: 5)
        var data = [UInt8](repeating: 0, count: 65536)
        while readFully(&header, count: 5) {
            let length = Int(header[1]) << 24 | Int(header[2]) << 16 | Int(header[3]) << 8 | Int(header[4])
            guard length <= data.count, readFully(&data, count: length) else { return }
            let target = header[0] == 1 ? stdout : header[0] == 2 ? stderr : nil
            if let target, !Self.writeAll(target, data, count: length) { return }
        }
    }

    /// Sends input to the container's stdin; an empty chunk ends this client's input.
    @discardableResult
    public func sendStdin(_ bytes: ArraySlice<UInt8>) -> Bool { send(type: 0, bytes) }

    /// Resizes the container's terminal.
    @discardableResult
    public func resize(width: UInt16, height: UInt16) -> Bool { send(type: 4, ArraySlice(Array("\(width) \(height)".utf8))) }

    /// Ends the session: ``pumpOutput(stdout:stderr:)`` returns.
    public func close() { shutdown(fd, Int32(SHUT_RDWR)) }

    private func send(type: UInt8, _ bytes: ArraySlice<UInt8>) -> Bool {
        let length = bytes.count
        var frame: [UInt8] = [type, UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
                              UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
        frame.append(contentsOf: bytes)
        return Self.writeAll(fd, frame, count: frame.count, flags: Int32(MSG_NOSIGNAL))
    }

    private func readFully(_ buffer: inout [UInt8], count: Int) -> Bool {
        var done = 0
        while done < count {
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, count - done) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { return false }
            done += got
        }
        return true
    }

    /// Writes all of `bytes` (send(2) with `flags` on a socket, write(2) on a pipe). A pipe
    /// whose reader is gone raises SIGPIPE, which kills a process that does not ignore it (the
    /// agent does; a test process running this in-process does not): the write blocks SIGPIPE on
    /// this thread for its duration and takes back one it raised.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], count: Int, flags: Int32 = 0) -> Bool {
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        var pending = sigset_t()
        sigpending(&pending)
        let wasPending = sigismember(&pending, SIGPIPE) == 1
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
        defer {
            if !wasPending {
                var zero = timespec(tv_sec: 0, tv_nsec: 0)
                while sigtimedwait(&pipeSignal, nil, &zero) == SIGPIPE {}
            }
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        var done = 0
        while done < count {
            let wrote = bytes.withUnsafeBytes { buffer in
                flags == 0 ? write(fd, buffer.baseAddress! + done, count - done) : Glibc.send(fd, buffer.baseAddress! + done, count - done, flags)
            }
            if wrote < 0 && errno == EINTR { continue }
            if wrote <= 0 { return false }
            done += wrote
        }
        return true
    }
}

extension Containerizer {
    /// Where a container's attach socket is: `<state>/attach/<hash of the id>.sock` (short:
    /// a unix socket path must fit 108 bytes), in a directory only root may enter.
    func attachSocketPath(_ id: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let hex = String(hash, radix: 16)
        return "\(stateRoot)/attach/\(String(repeating: "0", count: 16 - hex.count) + hex).sock"
    }

    /// Attaches to the running container `id`.
    public func attach(id: String) throws(ContainerizerError) -> AttachSession {
        guard let info = info(id: id) else { throw ContainerizerError(.notFound, context: id) }
        guard info.state == .running else {
            throw ContainerizerError(.invalidArgument, context: "container \(id)", detail: "is not running")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ContainerizerError(.invalidArgument, context: "attach to \(id)", errno: errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let name = Array(attachSocketPath(id).utf8)
        guard name.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw ContainerizerError(.invalidArgument, context: "attach to \(id)", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            for (index, byte) in name.enumerated() { path[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
        guard connected == 0 else {
            let code = errno
            Glibc.close(fd)
            throw ContainerizerError(.invalidArgument, context: "attach to \(id)", errno: code,
                                     detail: "its monitor does not accept attach connections (started by an older swiftlet?)")
        }
        return AttachSession(fd: fd)
    }
}
