import CSwiftletTLS
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The kubelet API (port 10250) that the API server calls for `kubectl logs`, `exec`,
/// `attach`, `port-forward` and `top`, and the kubelet's plain-HTTP healthz (127.0.0.1:10248,
/// ``healthz(address:port:checks:logger:)``).
///
/// HTTPS (OpenSSL, TLS 1.2+) or plain HTTP/1.1 with keep-alive; each connection is served on a
/// thread of its own (kubelet API traffic is low-volume, its streams long-lived), the
/// backend's async calls as child tasks of ``run()``. Requests are authenticated (client
/// certificate, bearer token through a ``TokenReviewer``, or anonymous when enabled) and
/// authorized (``Authorizer``) as the kubelet does, then routed to the ``KubeletAPIBackend``;
/// exec, attach and port-forward upgrades are proxied to the runtime's streaming server.
///
/// ```swift
/// let server = KubeletAPIServer(configuration: configuration, backend: backend, logger: logger)
/// try server.start()                              // binds; loads the certificate
/// try await withThrowingTaskGroup(of: Void.self) { group in
///     group.addTask { try await server.run() }    // until shutdown() or cancellation
///     …
/// }
/// ```
public final class KubeletAPIServer: Sendable {
    /// Where and how the server listens, and who may call it.
    public struct Configuration: Sendable {
        /// The IP literal to listen on (the kubelet's `address`, default 0.0.0.0).
        public var address: String
        /// The TCP port (the kubelet's `port`, 10250); 0 picks a free one (see ``port``).
        public var port: Int
        /// The node's name: the `nodes/<name>` authorized.
        public var nodeName: String
        /// The serving certificate and key, and the client CA (`authentication.x509.clientCAFile`,
        /// which enables client-certificate authentication); nil serves plain HTTP.
        public var tls: TLSFiles?
        /// `authentication.anonymous.enabled` (kubeadm: false).
        public var anonymousAuthEnabled: Bool
        /// `authentication.webhook.enabled`: bearer tokens reviewed; nil refuses them.
        public var tokenReviewer: (any TokenReviewer)?
        /// `authorization.mode`: ``AlwaysAllowAuthorizer`` or a webhook (SubjectAccessReview).
        public var authorizer: any Authorizer
        public var limits: Limits

        public init(
            address: String = "0.0.0.0", port: Int = 10250, nodeName: String, tls: TLSFiles?,
            anonymousAuthEnabled: Bool = false, tokenReviewer: (any TokenReviewer)? = nil,
            authorizer: any Authorizer = AlwaysAllowAuthorizer(), limits: Limits = Limits()
        ) {
            self.address = address
            self.port = port
            self.nodeName = nodeName
            self.tls = tls
            self.anonymousAuthEnabled = anonymousAuthEnabled
            self.tokenReviewer = tokenReviewer
            self.authorizer = authorizer
            self.limits = limits
        }
    }

    /// PEM files (the kubelet's `tlsCertFile`, `tlsPrivateKeyFile`, `authentication.x509.clientCAFile`).
    public struct TLSFiles: Sendable, Hashable {
        public var certificateFile: String
        public var keyFile: String
        public var clientCAFile: String?

        public init(certificateFile: String, keyFile: String, clientCAFile: String? = nil) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.clientCAFile = clientCAFile
        }
    }

    /// Sizes and timeouts that keep a stalled or hostile client from pinning a thread.
    public struct Limits: Sendable, Hashable {
        /// A request head (request line and fields) at most (Go's `MaxHeaderBytes`, 1 MiB); 431 beyond.
        public var maxHeaderBytes = 1 << 20
        /// A request body at most; 413 beyond.
        public var maxBodyBytes = 1 << 20
        /// The TLS handshake must end within this.
        public var handshakeTimeout: Duration = .seconds(10)
        /// A request, once its first byte arrived, must be complete within this.
        public var requestTimeout: Duration = .seconds(60)
        /// A kept-alive connection with no request closes after this (the kubelet's 90 s).
        public var idleTimeout: Duration = .seconds(90)
        /// A response write that makes no progress for this long ends the connection.
        public var writeTimeout: Duration = .seconds(120)
        /// Dialing the streaming server and reading its response head.
        public var upstreamTimeout: Duration = .seconds(30)
        /// After the client ended a proxied stream, the time the upstream has to finish.
        public var proxyLingerTimeout: Duration = .seconds(30)

        public init() {}
    }

    private let address: String
    private let requestedPort: Int
    private let tlsFiles: KubeletAPIServer.TLSFiles?
    private let limits: Limits
    private let handler: any RequestHandler
    private let logger: Logger
    /// Thread names: "<tag>-accept", "<tag>-conn" (15 bytes kept).
    let threadTag: String

    private struct State {
        var listener: OwnedFD?
        var stop: OwnedFD?
        var tls: TLSContext?
        var port = 0
        var running = false
        var shutdown = false
    }

    private let state = Mutex(State())

    /// The kubelet API on `configuration.address:port`.
    public convenience init(configuration: Configuration, backend: any KubeletAPIBackend, logger: Logger) {
        self.init(configuration: configuration, backend: backend, threadTag: "kubeapi", logger: logger)
    }

    convenience init(configuration: Configuration, backend: any KubeletAPIBackend, threadTag: String, logger: Logger) {
        let handler = KubeletAPIHandler(
            nodeName: configuration.nodeName,
            authenticator: RequestAuthenticator(
                x509Enabled: configuration.tls?.clientCAFile != nil, tokenReviewer: configuration.tokenReviewer,
                anonymousEnabled: configuration.anonymousAuthEnabled),
            authorizer: configuration.authorizer, backend: backend,
            healthz: HealthzRoutes(includeLog: true, extra: backend.healthChecks))
        self.init(
            address: configuration.address, port: configuration.port, tls: configuration.tls, limits: configuration.limits,
            handler: handler, threadTag: threadTag, logger: logger)
    }

    /// The kubelet's healthz server (`healthzBindAddress`:`healthzPort`): plain HTTP, no
    /// authentication, `/healthz` and `/healthz/ping` ("ok"), plus `checks`.
    public static func healthz(
        address: String = "127.0.0.1", port: Int = 10248, checks: [KubeletHealthCheck] = [], logger: Logger
    ) -> KubeletAPIServer {
        KubeletAPIServer(
            address: address, port: port, tls: nil, limits: Limits(),
            handler: HealthzOnlyHandler(routes: HealthzRoutes(includeLog: false, extra: checks)), threadTag: "kubehz",
            logger: logger)
    }

    init(
        address: String, port: Int, tls: KubeletAPIServer.TLSFiles?, limits: Limits, handler: any RequestHandler,
        threadTag: String, logger: Logger
    ) {
        self.address = address
        self.requestedPort = port
        self.tlsFiles = tls
        self.limits = limits
        self.handler = handler
        self.threadTag = threadTag
        self.logger = logger
    }

    /// Loads the certificate, key and client CA, and binds the listening socket. Call once,
    /// before ``run()``.
    /// - Throws: ``KubeletServerError`` `.tls` for unreadable or mismatched PEM files,
    ///   `.bind` when the address cannot be bound.
    public func start() throws(KubeletServerError) {
        let tls = try tlsFiles.map { files throws(KubeletServerError) in
            try TLSContext(certificateFile: files.certificateFile, keyFile: files.keyFile, clientCAFile: files.clientCAFile)
        }
        let result: Result<Int, KubeletServerError> = state.withLock { state in
            guard state.listener == nil, !state.shutdown else {
                return .failure(KubeletServerError(.bind, context: "start() called twice or after shutdown()"))
            }
            var port: Int32 = 0
            let fd = swt_listen_tcp(address, Int32(requestedPort), 128, &port)
            guard fd >= 0 else {
                return .failure(KubeletServerError(.bind, context: "\(address):\(requestedPort)", errno: -fd))
            }
            let stop = swt_eventfd()
            guard stop >= 0 else {
                _ = Glibc.close(fd)
                return .failure(KubeletServerError(.resources, context: "eventfd", errno: -stop))
            }
            state.listener = OwnedFD(fd)
            state.stop = OwnedFD(stop)
            state.tls = tls
            state.port = Int(port)
            return .success(Int(port))
        }
        let port = try result.get()
        logger.info("kubelet server listening", metadata: [
            "address": "\(address)", "port": "\(port)", "tls": "\(tls != nil)",
        ])
    }

    /// The port bound by ``start()`` (0 before).
    public var port: Int { state.withLock { $0.port } }

    /// Serves connections until ``shutdown()`` or until the calling task is cancelled; then
    /// ends every connection and returns once their threads and backend calls are done.
    /// - Throws: ``KubeletServerError`` `.notStarted` without ``start()``, `.thread` when the
    ///   accept thread cannot start.
    public func run() async throws(KubeletServerError) {
        let handles: (OwnedFD, OwnedFD, TLSContext?)? = state.withLock { state in
            guard let listener = state.listener, let stop = state.stop, !state.running else { return nil }
            state.running = true
            return (listener, stop, state.tls)
        }
        guard let (listener, stop, tls) = handles else {
            throw KubeletServerError(.notStarted, context: "run() needs start(), once")
        }
        let context = ConnectionContext(handler: handler, limits: limits, stop: stop, tls: tls, logger: logger)
        let (accepted, acceptedSink) = AsyncStream.makeStream(of: Int32.self)
        let tag = threadTag
        let failure = await withTaskCancellationHandler {
            await withTaskGroup(of: KubeletServerError?.self) { group in
                group.addTask { [self] in
                    do throws(KubeletServerError) {
                        try await DedicatedThread.run(name: "\(tag)-accept") {
                            self.acceptLoop(listener: listener.raw, stop: stop.raw, sink: acceptedSink)
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
                // The accept loop ended: shutting down. Connections see `stop` and end.
                var failure: KubeletServerError?
                for await result in group where result != nil { failure = result }
                return failure
            }
        } onCancel: {
            self.shutdown()
        }
        state.withLock { state in
            state.listener = nil
            state.stop = nil
            state.tls = nil
        }
        listener.close()
        stop.close()
        logger.info("kubelet server stopped", metadata: ["address": "\(address)", "port": "\(port)"])
        if let failure { throw failure }
    }

    /// Stops accepting and ends every connection (streams included); ``run()`` then returns.
    /// Safe from any thread, more than once, before or after ``run()``.
    public func shutdown() {
        state.withLock { state in
            state.shutdown = true
            if let stop = state.stop { swt_eventfd_signal(stop.raw) }
        }
    }

    /// The accept thread: polls the listener and the stop eventfd.
    private func acceptLoop(listener: Int32, stop: Int32, sink: AsyncStream<Int32>.Continuation) {
        defer { sink.finish() }
        while true {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0), pollfd(fd: stop, events: Int16(POLLIN), revents: 0)]
            let ready = pollUntil(&fds, deadline: nil)
            if ready < 0 {
                logger.error("kubelet server: poll failed", metadata: ["errno": "\(errno)"])
                return
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            while true {
                let fd = swt_accept_fd(listener)
                if fd >= 0 {
                    if case .terminated = sink.yield(fd) { _ = Glibc.close(fd) }
                    continue
                }
                if -fd == EMFILE || -fd == ENFILE || -fd == ENOBUFS || -fd == ENOMEM {
                    // Out of descriptors: back off instead of spinning.
                    logger.error("kubelet server: accept failed", metadata: ["errno": "\(-fd)"])
                    var wait = [pollfd(fd: stop, events: Int16(POLLIN), revents: 0)]
                    _ = pollUntil(&wait, deadline: .now + .milliseconds(100))
                }
                break
            }
        }
    }

    /// One connection: its thread, and its jobs as child tasks.
    private func serve(socket: OwnedFD, context: ConnectionContext) async {
        let wakeFD = swt_eventfd()
        guard wakeFD >= 0 else {
            logger.error("kubelet server: cannot serve a connection", metadata: ["errno": "\(-wakeFD)"])
            socket.close()
            return
        }
        let wake = OwnedFD(wakeFD)
        let (jobs, jobSink) = AsyncStream.makeStream(of: Job.self)
        let name = "\(threadTag)-conn"
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await DedicatedThread.run(name: name) {
                        let connection = HTTPConnection(
                            socket: socket, wake: wake, jobs: JobSubmitter(sink: jobSink), context: context)
                        connection.serve()
                    }
                } catch {
                    context.logger.error("kubelet server: cannot start a connection thread", metadata: ["error": "\(error)"])
                }
                socket.close()
                jobSink.finish()
            }
            for await job in jobs {
                group.addTask { await job.run() }
            }
        }
        wake.close()
    }
}
