import CSwiftletStreaming
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The streaming server behind the CRI's Exec, Attach and PortForward, compatible with the
/// kubelet's (`pkg/kubelet/cri/streaming`): the CRI call returns a URL from
/// ``execURL(containerID:command:tty:stdin:stdout:stderr:)``,
/// ``attachURL(containerID:tty:stdin:stdout:stderr:)`` or
/// ``portForwardURL(podSandboxID:port:)``; the client (the kubelet, kubectl through the API
/// server, crictl) then upgrades a request to that URL to SPDY/3.1 or WebSocket and speaks
/// the k8s channel or port-forward protocol; the server runs the session against its
/// ``StreamingRuntime``.
///
/// Each connection has a thread of its own for its non-blocking I/O (a poll loop), and a
/// task in ``run()``'s task group for the runtime's calls.
///
/// ```swift
/// let server = StreamingServer(runtime: runtime, logger: logger)
/// try server.start()                       // binds 127.0.0.1 on a free port
/// try await withThrowingTaskGroup(of: Void.self) { group in
///     group.addTask { try await server.run() }   // until shutdown() or cancellation
///     …
/// }
/// ```
public final class StreamingServer: Sendable {
    private let runtime: any StreamingRuntime
    private let address: String
    private let requestedPort: Int
    private let tokens: TokenCache
    private let logger: Logger
    private let streamCreationTimeout: Duration
    private let lingerTimeout: Duration

    private struct State {
        var listener: OwnedFD?
        var wake: OwnedFD?
        var port = 0
        var running = false
        var shutdown = false
        var connections: [ObjectIdentifier: ConnectionMailbox] = [:]
    }

    private let state = Mutex(State())

    /// - Parameters:
    ///   - runtime: runs the sessions' processes and connections.
    ///   - address: the IP literal to listen on; loopback, as the kubelet's default.
    ///   - port: the TCP port; 0 picks a free one (see ``baseURL``).
    ///   - tokenTTL: how long a URL stays valid before its first use.
    ///   - logger: connection-level events at debug and info, failures at error.
    public convenience init(
        runtime: any StreamingRuntime, address: String = "127.0.0.1", port: Int = 0, tokenTTL: Duration = .seconds(60),
        logger: Logger
    ) {
        self.init(runtime: runtime, address: address, port: port, tokenTTL: tokenTTL,
                  streamCreationTimeout: .seconds(30), lingerTimeout: .seconds(5), logger: logger)
    }

    init(
        runtime: any StreamingRuntime, address: String, port: Int, tokenTTL: Duration,
        streamCreationTimeout: Duration, lingerTimeout: Duration, logger: Logger
    ) {
        self.runtime = runtime
        self.address = address
        self.requestedPort = port
        self.tokens = TokenCache(ttl: tokenTTL)
        self.logger = logger
        self.streamCreationTimeout = streamCreationTimeout
        self.lingerTimeout = lingerTimeout
    }

    /// Binds the listening socket. Call once, before ``run()``.
    /// - Throws: ``StreamingServerError`` with code `.bind` when the address cannot be bound.
    public func start() throws(StreamingServerError) {
        let bound: Result<(Int32, Int32, Int), StreamingServerError> = state.withLock { state in
            guard state.listener == nil, !state.shutdown else {
                return .failure(StreamingServerError(.bind, context: "start() called twice or after shutdown()"))
            }
            var port: Int32 = 0
            let fd = sws_listen_tcp(address, Int32(requestedPort), 128, &port)
            guard fd >= 0 else {
                return .failure(StreamingServerError(.bind, context: "\(address):\(requestedPort)", errno: -fd))
            }
            let wake = sws_wakefd_new()
            guard wake >= 0 else {
                _ = Glibc.close(fd)
                return .failure(StreamingServerError(.resources, context: "eventfd", errno: -wake))
            }
            state.listener = OwnedFD(fd)
            state.wake = OwnedFD(wake)
            state.port = Int(port)
            return .success((fd, wake, Int(port)))
        }
        _ = try bound.get()
        logger.info("streaming server listening", metadata: ["url": "\(baseURL)"])
    }

    /// `http://<address>:<port>` once started (IPv6 addresses in brackets).
    public var baseURL: String {
        let port = state.withLock { $0.port }
        let host = address.contains(":") ? "[\(address)]" : address
        return "http://\(host):\(port)"
    }

    /// The port bound by ``start()`` (0 before).
    public var port: Int { state.withLock { $0.port } }

    // MARK: Tokens

    /// The URL for one exec session (the CRI `ExecResponse.url`): single use, valid for
    /// the token TTL. With `tty` the process's stderr goes to the terminal, so the CRI
    /// requires `stderr` false (``validate(tty:stdin:stdout:stderr:)``).
    public func execURL(containerID: String, command: [String], tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) -> String {
        url(for: .exec(containerID: containerID, command: command,
                       options: StreamOptions(stdin: stdin, stdout: stdout, stderr: stderr, tty: tty)))
    }

    /// The URL for one attach session (the CRI `AttachResponse.url`).
    public func attachURL(containerID: String, tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) -> String {
        url(for: .attach(containerID: containerID, options: StreamOptions(stdin: stdin, stdout: stdout, stderr: stderr, tty: tty)))
    }

    /// The URL for one port-forward connection (the CRI `PortForwardResponse.url`). SPDY
    /// clients name ports per stream; a WebSocket client names them in the `port` query
    /// parameter, or gets `port` when it names none.
    public func portForwardURL(podSandboxID: String, port: Int32?) -> String {
        url(for: .portForward(podSandboxID: podSandboxID, port: port))
    }

    /// The kubelet's checks of an Exec or Attach request: one of stdin, stdout and stderr,
    /// and not stderr with a tty.
    public static func validate(tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) throws(StreamingError) {
        if tty && stderr { throw StreamingError(.invalidArgument, "tty and stderr cannot both be true") }
        if !stdin && !stdout && !stderr {
            throw StreamingError(.invalidArgument, "one of stdin, stdout, or stderr must be set")
        }
    }

    private func url(for request: StreamRequest) -> String {
        "\(baseURL)/\(request.pathSegment)/\(tokens.insert(request))"
    }

    // MARK: Serving

    /// Serves connections until ``shutdown()`` or until the calling task is cancelled; then
    /// ends every connection and returns once their tasks (and the runtime calls they
    /// started) returned.
    /// - Throws: ``StreamingServerError`` `.notStarted` without ``start()``, `.thread` when
    ///   the accept thread cannot start.
    public func run() async throws(StreamingServerError) {
        let handles: (OwnedFD, OwnedFD)? = state.withLock { state in
            guard let listener = state.listener, let wake = state.wake, !state.running else { return nil }
            state.running = true
            return (listener, wake)
        }
        guard let (listener, wake) = handles else {
            throw StreamingServerError(.notStarted, context: "run() needs start(), once")
        }
        let (accepted, acceptedSink) = AsyncStream.makeStream(of: Int32.self)
        let context = ConnectionContext(
            runtime: runtime, tokens: tokens, logger: logger,
            streamCreationTimeout: streamCreationTimeout, lingerTimeout: lingerTimeout)
        let acceptFailure = await withTaskCancellationHandler {
            await withTaskGroup(of: StreamingServerError?.self) { group in
                group.addTask { [self] in
                    do throws(StreamingServerError) {
                        try await DedicatedThread.run(name: "swiftlet-stream") {
                            self.acceptLoop(listener: listener.raw, wake: wake.raw, sink: acceptedSink)
                        }
                        return nil
                    } catch {
                        acceptedSink.finish()
                        return error
                    }
                }
                for await fd in accepted {
                    group.addTask { [self] in
                        await self.serve(socket: OwnedFD(fd), context: context)
                        return nil
                    }
                }
                // The listener closed: end every connection, then the runtime calls.
                abortConnections()
                group.cancelAll()
                var failure: StreamingServerError?
                for await result in group where result != nil { failure = result }
                return failure
            }
        } onCancel: {
            self.shutdown()
        }
        state.withLock { state in
            state.listener = nil
            state.wake = nil
        }
        listener.close()
        if let acceptFailure { throw acceptFailure }
    }

    /// Stops accepting; ``run()`` then ends the connections and returns. Safe from any
    /// thread, more than once, before or after ``run()``.
    public func shutdown() {
        let wake = state.withLock { state -> OwnedFD? in
            state.shutdown = true
            return state.wake
        }
        if let wake { sws_wakefd_signal(wake.raw) }
    }

    private func abortConnections() {
        let mailboxes = state.withLock { Array($0.connections.values) }
        for mailbox in mailboxes { mailbox.post(.abort) }
    }

    /// The accept thread: polls the listener and the wake eventfd.
    private func acceptLoop(listener: Int32, wake: Int32, sink: AsyncStream<Int32>.Continuation) {
        defer { sink.finish() }
        while !state.withLock({ $0.shutdown }) {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                logger.error("streaming server: poll failed", metadata: ["errno": "\(errno)"])
                return
            }
            if fds[1].revents != 0 { sws_wakefd_drain(wake) }
            guard fds[0].revents != 0 else { continue }
            while true {
                let fd = sws_accept(listener)
                if fd >= 0 {
                    if case .terminated = sink.yield(fd) { _ = Glibc.close(fd) }
                    continue
                }
                if -fd == EAGAIN || -fd == EWOULDBLOCK { break }
                if -fd == EMFILE || -fd == ENFILE || -fd == ENOBUFS || -fd == ENOMEM {
                    // Out of descriptors: back off briefly instead of spinning.
                    logger.error("streaming server: accept failed", metadata: ["errno": "\(-fd)"])
                    usleep(100_000)
                }
                break
            }
        }
    }

    /// One connection: its loop on a dedicated thread; the runtime calls it asks for as
    /// child tasks here.
    private func serve(socket: OwnedFD, context: ConnectionContext) async {
        let mailbox: ConnectionMailbox
        do {
            mailbox = try ConnectionMailbox()
        } catch {
            logger.error("streaming server: cannot serve a connection", metadata: ["error": "\(error)"])
            return
        }
        let key = ObjectIdentifier(mailbox)
        let admitted = state.withLock { state -> Bool in
            guard !state.shutdown else { return false }
            state.connections[key] = mailbox
            return true
        }
        guard admitted else { return }
        defer { _ = state.withLock { $0.connections.removeValue(forKey: key) } }

        let (commands, commandSink) = AsyncStream.makeStream(of: ConnectionCommand.self)
        var connectionLogger = logger
        connectionLogger[metadataKey: "connection"] = "\(socket.raw)"
        let loopLogger = connectionLogger
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await DedicatedThread.run(name: "swiftlet-conn") {
                        let loop = ConnectionLoop(socket: socket, mailbox: mailbox, commands: commandSink, context: context, logger: loopLogger)
                        loop.run(initial: HandshakeHandler(loop: loop))
                    }
                } catch {
                    loopLogger.error("streaming server: cannot start a connection thread", metadata: ["error": "\(error)"])
                    socket.close()
                    mailbox.close()
                    commandSink.finish()
                }
            }
            for await command in commands {
                group.addTask { await Self.perform(command, runtime: context.runtime, mailbox: mailbox) }
            }
        }
    }

    /// Runs one runtime call and reports its outcome to the connection's loop.
    private static func perform(_ command: ConnectionCommand, runtime: any StreamingRuntime, mailbox: ConnectionMailbox) async {
        switch command {
        case .exec(let containerID, let words, let io, let keepAlive):
            let outcome: Result<Int32?, StreamingError>
            do {
                outcome = .success(try await runtime.exec(containerID: containerID, command: words, io: io))
            } catch let error as StreamingError {
                outcome = .failure(error)
            } catch {
                outcome = .failure(StreamingError(.internal, "\(error)"))
            }
            // The process's ends close before the loop hears of the end: its output then
            // reaches end of file.
            for fd in keepAlive { fd.close() }
            mailbox.post(.remoteCommandFinished(outcome))
        case .attach(let containerID, let io, let keepAlive):
            let outcome: Result<Int32?, StreamingError>
            do {
                try await runtime.attach(containerID: containerID, io: io)
                outcome = .success(nil)
            } catch let error as StreamingError {
                outcome = .failure(error)
            } catch {
                outcome = .failure(StreamingError(.internal, "\(error)"))
            }
            for fd in keepAlive { fd.close() }
            mailbox.post(.remoteCommandFinished(outcome))
        case .portForward(let podSandboxID, let port, let requestID):
            do {
                let fd = try await runtime.portForward(podSandboxID: podSandboxID, port: port)
                // Dropped with the event when the connection has ended meanwhile.
                mailbox.post(.portForwardConnected(requestID: requestID, socket: OwnedFD(fd)))
            } catch let error as StreamingError {
                mailbox.post(.portForwardFailed(requestID: requestID, message: error.message))
            } catch {
                mailbox.post(.portForwardFailed(requestID: requestID, message: "\(error)"))
            }
        }
    }
}
