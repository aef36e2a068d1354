#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Moves bytes between a non-blocking descriptor and a session, driven by a connection's
/// poll loop.
class Pump {
    let fd: OwnedFD
    /// Set once the pump is done; the loop then drops it.
    fileprivate(set) var finished = false

    init(fd: OwnedFD) { self.fd = fd }

    /// The poll(2) events wanted now; 0 leaves the descriptor out of this round.
    func pollEvents(outputBacklog: Int) -> Int16 { 0 }

    /// Handles the events poll(2) reported.
    func service(_ revents: Int16) {}

    /// Stops the pump without notifying its session.
    func cancel() { finished = true }
}

/// Reads a descriptor (a process's stdout, a forwarded socket) and hands the bytes on;
/// reports the end of the data once.
final class OutputPump: Pump {
    /// Output stops being read while the socket has this much queued.
    static let highWater = 1 << 20
    private let onData: ([UInt8]) -> Void
    private let onEnd: () -> Void

    init(fd: OwnedFD, onData: @escaping ([UInt8]) -> Void, onEnd: @escaping () -> Void) {
        self.onData = onData
        self.onEnd = onEnd
        super.init(fd: fd)
    }

    override func pollEvents(outputBacklog: Int) -> Int16 {
        finished || outputBacklog >= Self.highWater ? 0 : Int16(POLLIN)
    }

    override func service(_ revents: Int16) {
        guard !finished else { return }
        var buffer = [UInt8](repeating: 0, count: 32 << 10)
        let outcome = buffer.withUnsafeMutableBytes { Syscall.read(fd.raw, into: $0) }
        switch outcome {
        case .transferred(let count):
            onData(Array(buffer[0..<count]))
        case .wouldBlock:
            break
        case .endOfFile, .failed:
            finished = true
            onEnd()
        }
    }
}

/// Writes what the client sends into a descriptor (a process's stdin, a forwarded
/// socket); at the client's end of data closes it (a pipe) or shuts its write side (a
/// socket).
final class InputPump: Pump {
    /// Input from the client pauses while this much is waiting to be written.
    static let highWater = 1 << 20
    private var buffer = ByteQueue()
    private var ending = false
    private let isSocket: Bool

    init(fd: OwnedFD, isSocket: Bool) {
        self.isSocket = isSocket
        super.init(fd: fd)
    }

    var backlog: Int { buffer.count }

    func feed(_ bytes: [UInt8]) {
        guard !finished, !ending else { return }
        buffer.append(contentsOf: bytes)
    }

    /// No more data will come: end the descriptor once the buffer is written.
    func finishInput() {
        guard !finished else { return }
        ending = true
        if buffer.isEmpty { end() }
    }

    override func pollEvents(outputBacklog: Int) -> Int16 {
        finished || buffer.isEmpty ? 0 : Int16(POLLOUT)
    }

    override func service(_ revents: Int16) {
        guard !finished, !buffer.isEmpty else { return }
        let outcome = buffer.withUnsafeBytes { Syscall.write(fd.raw, $0, socket: isSocket) }
        switch outcome {
        case .transferred(let count):
            buffer.skip(count)
            if buffer.isEmpty && ending { end() }
        case .wouldBlock:
            break
        case .endOfFile, .failed:
            // The reader is gone: what the client sends from now on is dropped.
            buffer.removeAll()
            finished = true
            if !isSocket { fd.close() }
        }
    }

    private func end() {
        finished = true
        if isSocket {
            _ = shutdown(fd.raw, Int32(SHUT_WR))
        } else {
            fd.close()
        }
    }
}
