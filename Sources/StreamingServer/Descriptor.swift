import CSwiftletStreaming
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A file descriptor closed exactly once: by ``close()`` or when the last reference goes.
final class OwnedFD: Sendable {
    private let storage: Mutex<Int32>

    init(_ fd: Int32) { storage = Mutex(fd) }

    /// The descriptor, or -1 once closed.
    var raw: Int32 { storage.withLock { $0 } }

    func close() {
        let fd = storage.withLock { fd in
            defer { fd = -1 }
            return fd
        }
        if fd >= 0 { _ = Glibc.close(fd) }
    }

    deinit { close() }
}

/// The outcome of one non-blocking read or write.
enum IOOutcome: Equatable {
    case transferred(Int)
    case wouldBlock
    case endOfFile
    case failed(Int32)
}

enum Syscall {
    /// read(2), retrying EINTR.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> IOOutcome {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n > 0 { return .transferred(n) }
            if n == 0 { return .endOfFile }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return .failed(errno)
            }
        }
    }

    /// write(2) (send(2) with MSG_NOSIGNAL on sockets), retrying EINTR. The calling thread
    /// must have SIGPIPE blocked (``DedicatedThread``): a pipe whose reader is gone answers
    /// EPIPE, and the pending signal is cleared here.
    static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, socket: Bool) -> IOOutcome {
        while true {
            let n = socket
                ? Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
                : Glibc.write(fd, bytes.baseAddress, bytes.count)
            if n >= 0 { return .transferred(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            case EPIPE:
                if !socket { sws_clear_sigpipe() }
                return .failed(EPIPE)
            default: return .failed(errno)
            }
        }
    }

    /// A pipe whose one end (`nonBlockingEnd`: 0 read, 1 write) is non-blocking for the
    /// server; the other end stays blocking for the process it is given to.
    static func pipe(nonBlockingEnd: Int) -> (read: OwnedFD, write: OwnedFD)? {
        var fds: [Int32] = [-1, -1]
        guard sws_pipe(&fds) == 0 else { return nil }
        let pair = (read: OwnedFD(fds[0]), write: OwnedFD(fds[1]))
        guard sws_set_nonblocking(fds[nonBlockingEnd]) == 0 else { return nil }
        return pair
    }
}
