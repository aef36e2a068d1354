import CSwiftletTLS
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Serves requests read off a connection (on the connection's thread).
protocol RequestHandler: Sendable {
    /// Answers `request` through `connection`'s writers; says whether the connection may
    /// carry another request.
    func handle(_ request: HTTPRequest, on connection: HTTPConnection) -> ResponseDisposition
}

enum ResponseDisposition: Equatable {
    case keepAlive
    case close
}

/// What every connection of one server shares.
struct ConnectionContext: Sendable {
    let handler: any RequestHandler
    let limits: KubeletAPIServer.Limits
    /// Readable once the server shuts down (never drained).
    let stop: OwnedFD
    let tls: TLSContext?
    let logger: Logger
}

/// One client connection, served on its own thread: the TLS handshake, then HTTP/1.1
/// requests (keep-alive) until the client closes, a limit is hit, or the server stops. Async
/// work (the backend, the authenticator) runs as jobs in the connection's task; the thread
/// waits for their results on `wake` while watching `stop` (and the client, when streaming).
final class HTTPConnection {
    let socket: OwnedFD
    let wake: OwnedFD
    let jobs: JobSubmitter
    let context: ConnectionContext
    var logger: Logger
    private(set) var transport: any Transport
    var input = InputBuffer()
    private var scratch = [UInt8](repeating: 0, count: 64 << 10)

    init(socket: OwnedFD, wake: OwnedFD, jobs: JobSubmitter, context: ConnectionContext) {
        self.socket = socket
        self.wake = wake
        self.jobs = jobs
        self.context = context
        self.logger = context.logger
        self.logger[metadataKey: "connection"] = "\(socket.raw)"
        self.transport = PlainTransport(socket: socket)
    }

    var limits: KubeletAPIServer.Limits { context.limits }
    var stopFD: Int32 { context.stop.raw }

    // MARK: Serving

    func serve() {
        defer { transport.close() }
        if let tls = context.tls {
            switch tls.accept(socket: socket, cancel: stopFD, timeout: limits.handshakeTimeout) {
            case .session(let session):
                transport = session
            case .timedOut:
                logger.debug("kubelet server: TLS handshake timed out")
                return
            case .cancelled:
                return
            case .failed(let why):
                logger.debug("kubelet server: TLS handshake failed", metadata: ["error": "\(why)"])
                return
            }
        }
        while true {
            switch readRequest() {
            case .closed:
                return
            case .refused(let error):
                logger.debug("kubelet server: bad request", metadata: ["status": "\(error.status)", "error": "\(error.message)"])
                writeGoServerError(error)
                return
            case .request(let request):
                let disposition = context.handler.handle(request, on: self)
                guard disposition == .keepAlive, request.keepAlive else { return }
            }
        }
    }

    enum RequestOutcome {
        case request(HTTPRequest)
        case closed
        case refused(HTTPError)
    }

    /// The next request (head and body), within the idle timeout for its first byte and the
    /// request timeout for the rest.
    func readRequest() -> RequestOutcome {
        var deadline = ContinuousClock.now + (input.isEmpty ? limits.idleTimeout : limits.requestTimeout)
        var parsed: (HTTPRequest, BodyFraming)?
        var sentContinue = false
        while true {
            do throws(HTTPError) {
                if parsed == nil { parsed = try HTTPParser.parseHead(&input, maxHeaderBytes: limits.maxHeaderBytes) }
                if let (parsedRequest, framing) = parsed {
                    var request = parsedRequest
                    switch framing {
                    case .none:
                        return .request(request)
                    case .length(let length):
                        guard length <= limits.maxBodyBytes else { throw HTTPError(413, "413 Request Entity Too Large") }
                        if input.count >= length {
                            request.body = input.consume(length)
                            return .request(request)
                        }
                    case .chunked:
                        if let (body, consumed) = try input.withBytes({ bytes throws(HTTPError) in
                            try HTTPParser.decodeChunked(bytes, limit: limits.maxBodyBytes)
                        }) {
                            _ = input.consume(consumed)
                            request.body = body
                            return .request(request)
                        }
                    }
                    if !sentContinue, request.hasToken("expect", "100-continue") {
                        sentContinue = true
                        guard write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) else { return .closed }
                    }
                }
            } catch {
                return .refused(error)
            }
            let wasEmpty = input.isEmpty
            switch readMore(deadline: deadline) {
            case .data:
                if wasEmpty && parsed == nil { deadline = .now + limits.requestTimeout }
            case .endOfFile, .stopped, .timedOut, .failed:
                return .closed
            }
        }
    }

    // MARK: Reading and waiting

    enum ReadOutcome: Equatable {
        case data
        case endOfFile
        case stopped
        case timedOut
        case failed(String)
    }

    /// Reads what is available into `input`, waiting until `deadline` for something.
    func readMore(deadline: ContinuousClock.Instant?) -> ReadOutcome {
        while true {
            let result = scratch.withUnsafeMutableBytes { transport.read(into: $0) }
            switch result {
            case .transferred(let n):
                scratch.withUnsafeBytes { input.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                return .data
            case .endOfFile:
                return .endOfFile
            case .failed(let why):
                return .failed(why)
            case .wouldBlock(let events):
                switch waitFor(transport.fd, events: events, deadline: deadline) {
                case .ready: continue
                case .stopped: return .stopped
                case .timedOut: return .timedOut
                }
            }
        }
    }

    enum Readiness {
        case ready
        case stopped
        case timedOut
    }

    /// Polls `fd` for `events` and the server's stop descriptor.
    func waitFor(_ fd: Int32, events: Int16, deadline: ContinuousClock.Instant?) -> Readiness {
        var fds = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
        let ready = pollUntil(&fds, deadline: deadline)
        if ready == 0 { return .timedOut }
        if ready < 0 || fds[1].revents != 0 { return .stopped }
        return .ready
    }

    enum WakeReason: Equatable {
        /// A job posted (or there may be something to take).
        case wake
        case stopped
        /// The client closed or reset the connection (only when watched).
        case clientGone
        case timedOut
    }

    /// Waits for the connection's jobs; with `watchClient`, also for the client's end (bytes
    /// it sends meanwhile are kept in `input`, as a pipelined request).
    func waitForWake(watchClient: Bool, deadline: ContinuousClock.Instant? = nil) -> WakeReason {
        var fds = [pollfd(fd: wake.raw, events: Int16(POLLIN), revents: 0), pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
        if watchClient { fds.append(pollfd(fd: transport.fd, events: Int16(POLLIN) | pollReadHangup, revents: 0)) }
        let ready = pollUntil(&fds, deadline: deadline)
        if ready == 0 { return .timedOut }
        if ready < 0 || fds[1].revents != 0 { return .stopped }
        if watchClient && fds[2].revents != 0 {
            guard input.count <= limits.maxHeaderBytes else { return .clientGone }
            let result = scratch.withUnsafeMutableBytes { transport.read(into: $0) }
            switch result {
            case .transferred(let n):
                scratch.withUnsafeBytes { input.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            case .endOfFile, .failed:
                return .clientGone
            case .wouldBlock:
                if fds[2].revents & Int16(POLLHUP | POLLERR) != 0 { return .clientGone }
            }
        }
        if fds[0].revents != 0 { swt_eventfd_drain(wake.raw) }
        return .wake
    }

    // MARK: Async work

    /// Runs `body` as a job of the connection's task and waits for its value; nil when the
    /// server stops first (the job is then cancelled).
    func call<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T? {
        let handoff = Handoff<T>(capacity: 1, wake: wake)
        let job = Job {
            let value = await body()
            _ = await handoff.send(value)
            handoff.finish()
        }
        guard jobs.submit(job) else { return nil }
        while true {
            let (events, _) = handoff.take()
            if let value = events.first { return value }
            switch waitForWake(watchClient: false) {
            case .wake, .timedOut, .clientGone:
                continue
            case .stopped:
                job.cancel()
                handoff.abandon()
                return nil
            }
        }
    }

    // MARK: Writing

    /// Writes all of `bytes`; false when the client is gone, stalls past the write timeout,
    /// or the server stops.
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { write($0) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        var deadline = ContinuousClock.now + limits.writeTimeout
        while offset < bytes.count {
            switch transport.write(UnsafeRawBufferPointer(rebasing: bytes[offset...])) {
            case .transferred(let n):
                offset += n
                deadline = .now + limits.writeTimeout
            case .wouldBlock(let events):
                guard waitFor(transport.fd, events: events, deadline: deadline) == .ready else { return false }
            case .endOfFile, .failed:
                return false
            }
        }
        return true
    }

    /// A complete response with a Content-Length body (none for HEAD).
    @discardableResult
    func respond(
        to request: HTTPRequest?, status: Int, headers: [(String, String)] = [], body: [UInt8] = [], close: Bool = false
    ) -> Bool {
        var head = "HTTP/1.1 \(status) \(HTTPStatus.reason(status))\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body.count)\r\n"
        if close || request?.keepAlive == false { head += "Connection: close\r\n" }
        head += "\r\n"
        var bytes = Array(head.utf8)
        if request?.method != "HEAD" { bytes += body }
        return write(bytes)
    }

    /// Go's `http.Error`: the message and a newline, as text.
    @discardableResult
    func respondError(to request: HTTPRequest?, status: Int, _ message: String, headers: [(String, String)] = [], close: Bool = false) -> Bool {
        respond(
            to: request, status: status,
            headers: headers + [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")],
            body: Array((message + "\n").utf8), close: close)
    }

    /// go-restful's `WriteErrorString`: the message alone (text by Go's sniffing).
    @discardableResult
    func respondRestfulError(to request: HTTPRequest?, status: Int, _ message: String) -> Bool {
        respond(to: request, status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array(message.utf8))
    }

    /// What Go's server writes for a request it could not read, before closing.
    private func writeGoServerError(_ error: HTTPError) {
        let text = "HTTP/1.1 \(error.status) \(HTTPStatus.reason(error.status))\r\n"
            + "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
            + "Content-Length: \(error.message.utf8.count)\r\n\r\n" + error.message
        write(Array(text.utf8))
    }
}

enum HTTPStatus {
    static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 413: "Request Entity Too Large"
        case 422: "Unprocessable Entity"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Status \(status)"
        }
    }
}
