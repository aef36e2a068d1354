import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a connection's current protocol does with its bytes: the HTTP handshake first,
/// then a SPDY or WebSocket session.
protocol ConnectionHandler: AnyObject {
    /// Consumes what it can of `input` (bytes read from the client).
    func receive(_ input: inout ByteQueue)
    func handle(_ event: ConnectionEvent)
    var wantsInputPaused: Bool { get }
    /// The connection ends: release everything.
    func teardown()
}

/// Everything a connection needs from its server.
struct ConnectionContext: Sendable {
    var runtime: any StreamingRuntime
    var tokens: TokenCache
    var logger: Logger
    /// How long a client has to send its request head, and to open the streams of a session.
    var streamCreationTimeout: Duration
    /// How long a finished connection waits for the client to close before it closes.
    var lingerTimeout: Duration
}

/// One client connection, on a thread of its own: a poll(2) loop over the non-blocking
/// socket, the mailbox's eventfd and the session's pumps. Everything in here is confined to
/// that thread; the owning task talks to it only through the mailbox and the commands.
final class ConnectionLoop {
    let socket: OwnedFD
    let mailbox: ConnectionMailbox
    let context: ConnectionContext
    private let commands: AsyncStream<ConnectionCommand>.Continuation
    var logger: Logger

    private var input = ByteQueue()
    private var output = ByteQueue()
    private var pumps: [Pump] = []
    private var handler: ConnectionHandler?

    private enum Phase { case open, draining, lingering, closed }
    private var phase = Phase.open
    private var writeShut = false
    /// The client closed its side: the socket is no longer polled for input.
    private var readClosed = false
    /// When the current phase times out (request head, stream creation, linger).
    private var deadline: ContinuousClock.Instant?
    private var onDeadline: (() -> Void)?

    init(socket: OwnedFD, mailbox: ConnectionMailbox, commands: AsyncStream<ConnectionCommand>.Continuation,
         context: ConnectionContext, logger: Logger) {
        self.socket = socket
        self.mailbox = mailbox
        self.commands = commands
        self.context = context
        self.logger = logger
    }

    // MARK: Services for handlers and sessions

    /// Bytes queued for the socket.
    var outputBacklog: Int { output.count }

    func write<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
        guard phase == .open || phase == .draining else { return }
        output.append(contentsOf: bytes)
    }

    /// Replaces the protocol handler (after an upgrade); it gets the unconsumed input next.
    func switchHandler(to next: ConnectionHandler) {
        handler = next
    }

    func addPump(_ pump: Pump) { pumps.append(pump) }

    func submit(_ command: ConnectionCommand) { commands.yield(command) }

    /// Calls `action` on the loop thread at `instant` unless replaced or cleared first.
    func setDeadline(_ instant: ContinuousClock.Instant?, _ action: (() -> Void)? = nil) {
        deadline = instant
        onDeadline = action
    }

    /// Ends the connection once everything queued is written: then the write side shuts and
    /// the loop waits (a while) for the client to close, so that no reset loses the tail.
    func finishAfterFlush() {
        guard phase == .open else { return }
        phase = .draining
        setDeadline(nil)
        for pump in pumps { pump.cancel() }
        pumps.removeAll()
    }

    /// Ends the connection now.
    func abort() { phase = .closed }

    // MARK: The loop

    func run(initial: ConnectionHandler) {
        handler = initial
        defer { teardown() }
        var readBuffer = [UInt8](repeating: 0, count: 64 << 10)
        while phase != .closed {
            flushOutput()
            if phase == .draining && output.isEmpty && !writeShut {
                _ = shutdown(socket.raw, Int32(SHUT_WR))
                writeShut = true
                if readClosed { break }
                phase = .lingering
                setDeadline(.now + context.lingerTimeout) { [unowned self] in self.abort() }
            }
            if phase == .closed { break }
            pumps.removeAll { $0.finished }

            var fds: [pollfd] = []
            var socketEvents: Int16 = 0
            let paused = (handler?.wantsInputPaused ?? false) && phase == .open
            if !paused && !readClosed { socketEvents |= Int16(POLLIN) }
            if !output.isEmpty { socketEvents |= Int16(POLLOUT) }
            fds.append(pollfd(fd: socket.raw, events: socketEvents, revents: 0))
            fds.append(pollfd(fd: mailbox.wakeFD.raw, events: Int16(POLLIN), revents: 0))
            var polled: [Pump] = []
            for pump in pumps {
                let events = pump.pollEvents(outputBacklog: output.count)
                if events != 0 {
                    fds.append(pollfd(fd: pump.fd.raw, events: events, revents: 0))
                    polled.append(pump)
                }
            }
            var timeout: Int32 = -1
            if let deadline {
                let remaining = ContinuousClock.now.duration(to: deadline)
                let milliseconds = remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000
                timeout = Int32(clamping: max(0, milliseconds + 1))
            }
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                logger.error("poll failed", metadata: ["errno": "\(errno)"])
                break
            }
            if fds[0].revents != 0 {
                if fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    readSocket(&readBuffer)
                }
            }
            if phase == .closed { break }
            if fds[1].revents != 0 {
                for event in mailbox.take() {
                    if case .abort = event {
                        abort()
                        break
                    }
                    if phase == .open { handler?.handle(event) }
                }
            }
            for (index, pump) in polled.enumerated() where phase == .open {
                let revents = fds[index + 2].revents
                if revents != 0 { pump.service(revents) }
            }
            if let deadline, ContinuousClock.now >= deadline {
                let action = onDeadline
                setDeadline(nil)
                action?()
            }
        }
    }

    private func readSocket(_ buffer: inout [UInt8]) {
        // A bounded number of reads per round keeps pumps and the mailbox served.
        for _ in 0..<4 {
            let outcome = buffer.withUnsafeMutableBytes { Syscall.read(socket.raw, into: $0) }
            switch outcome {
            case .transferred(let count):
                if phase != .open { continue }  // draining or lingering: discard
                input.append(contentsOf: buffer[0..<count])
                deliverInput()
                if phase == .closed { return }
            case .wouldBlock:
                return
            case .endOfFile:
                // The client sends nothing more: what is queued still goes out (an error
                // response, say), then the connection closes.
                switch phase {
                case .open:
                    logger.debug("client closed the connection")
                    finishAfterFlush()
                case .draining:
                    break
                case .lingering, .closed:
                    abort()
                }
                readClosed = true
                return
            case .failed(let code):
                logger.debug("connection read failed", metadata: ["errno": "\(code)"])
                abort()
                return
            }
        }
    }

    private func deliverInput() {
        // A handler that upgrades hands the rest of the input to its successor.
        while phase == .open, let current = handler {
            current.receive(&input)
            if handler === current || phase != .open { break }
        }
    }

    private func flushOutput() {
        while !output.isEmpty {
            let outcome = output.withUnsafeBytes { Syscall.write(socket.raw, $0, socket: true) }
            switch outcome {
            case .transferred(let count):
                output.skip(count)
            case .wouldBlock:
                return
            case .endOfFile, .failed:
                output.removeAll()
                abort()
                return
            }
        }
    }

    private func teardown() {
        phase = .closed
        for pump in pumps { pump.cancel() }
        pumps.removeAll()
        handler?.teardown()
        handler = nil
        mailbox.close()
        commands.finish()
        socket.close()
    }
}
