import CSwiftletTLS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An `http://host[:port]/path?query` streaming URL.
struct StreamingURL: Equatable {
    var host: String
    var port: Int
    var pathAndQuery: String

    init?(_ text: String) {
        guard text.lowercased().hasPrefix("http://") else { return nil }
        let rest = text.dropFirst("http://".count)
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<slash]
        let path = rest[slash...]
        pathAndQuery = path.hasPrefix("/") ? String(path) : "/" + path
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.isEmpty {
                port = 80
            } else {
                guard after.hasPrefix(":"), let number = Int(after.dropFirst()), (1...65535).contains(number) else { return nil }
                port = number
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let number = Int(authority[authority.index(after: colon)...]), (1...65535).contains(number) else { return nil }
            port = number
        } else {
            host = String(authority)
            port = 80
        }
        guard !host.isEmpty else { return nil }
    }

    /// `host:port` as in a Host field (IPv6 in brackets).
    var hostPort: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension HTTPConnection {
    /// Fields never sent to the upstream: hop-by-hop framing, the client's credentials, and
    /// Host (replaced by the upstream's).
    private static let withheldFields: Set<String> = [
        "host", "authorization", "proxy-authorization", "content-length", "transfer-encoding", "te", "trailer",
        "keep-alive", "expect",
    ]

    /// apimachinery's `UpgradeAwareHandler` (upgrade required): dials `location`, sends the
    /// client's request (method, the location's path and query, the client's fields), relays
    /// the upstream's response, and after a 101 relays bytes both ways until either side ends.
    /// The connection closes after.
    func proxyUpgrade(_ request: HTTPRequest, to location: String) -> ResponseDisposition {
        guard let url = StreamingURL(location) else {
            respondError(to: request, status: 500, "unsupported streaming URL \"\(location)\"", close: true)
            return .close
        }
        let fd = swt_connect_tcp(url.host, Int32(url.port), stopFD, limits.upstreamTimeout.pollMilliseconds)
        guard fd >= 0 else {
            if -fd != ECANCELED {
                respondError(
                    to: request, status: 500, "error dialing backend: dial tcp \(url.hostPort): connect: \(errnoText(-fd))",
                    close: true)
            }
            return .close
        }
        let upstream = PlainTransport(socket: OwnedFD(fd))
        defer { upstream.close() }

        var head = "\(request.method) \(url.pathAndQuery) HTTP/1.1\r\nHost: \(url.hostPort)\r\n"
        for (name, value) in request.headers where !Self.withheldFields.contains(name) {
            head += "\(Self.canonicalName(name)): \(value)\r\n"
        }
        head += "\r\n"
        let deadline = ContinuousClock.now + limits.upstreamTimeout
        guard write(Array(head.utf8) + request.body, via: upstream, deadline: deadline) else {
            respondError(to: request, status: 500, "error proxying: cannot send the request to \(url.hostPort)", close: true)
            return .close
        }

        // The upstream's response head.
        var response = InputBuffer()
        var headLength = 0
        while true {
            let end: Int? = try? response.withBytes { bytes throws(HTTPError) in
                bytes.indices.dropLast(3).first { bytes[$0] == 13 && bytes[$0 + 1] == 10 && bytes[$0 + 2] == 13 && bytes[$0 + 3] == 10 }
                    .map { $0 - bytes.startIndex + 4 }
            }
            if let end {
                headLength = end
                break
            }
            guard response.count <= limits.maxHeaderBytes else {
                respondError(to: request, status: 500, "error proxying: response head too large", close: true)
                return .close
            }
            switch read(from: upstream, into: &response, deadline: deadline) {
            case .data:
                continue
            case .stopped:
                return .close
            case .endOfFile, .timedOut, .failed:
                respondError(to: request, status: 500, "error proxying: no response from \(url.hostPort)", close: true)
                return .close
            }
        }
        let bytes = response.takeAll()
        let headText = String(decoding: bytes[0..<headLength], as: UTF8.self)
        let statusLine = headText.prefix { $0 != "\r" && $0 != "\n" }
        let statusParts = statusLine.split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            respondError(to: request, status: 500, "error proxying: malformed response from \(url.hostPort)", close: true)
            return .close
        }
        logger.debug("kubelet server: upstream answered", metadata: ["status": "\(status)", "upstream": "\(url.hostPort)"])

        if status == 101 {
            relay(upstream: upstream, toUpstream: input.takeAll(), toClient: bytes, bodyRemaining: nil)
        } else {
            // An error: its head and body reach the client, then both connections close.
            var remaining: Int?
            for line in headText.split(separator: "\r\n").dropFirst() {
                let pieces = line.split(separator: ":", maxSplits: 1)
                if pieces.count == 2, pieces[0].lowercased() == "content-length" {
                    remaining = Int(pieces[1].trimmingCharacters(in: " \t")).map { max(0, $0 - (bytes.count - headLength)) }
                }
            }
            relay(upstream: upstream, toUpstream: nil, toClient: bytes, bodyRemaining: remaining)
        }
        return .close
    }

    /// Go's `CanonicalHeaderKey`.
    static func canonicalName(_ lowered: String) -> String {
        var upper = true
        return String(lowered.map { character -> Character in
            defer { upper = character == "-" }
            return upper ? Character(character.uppercased()) : character
        })
    }

    /// Copies bytes both ways (`toUpstream` nil: upstream to client only, for at most
    /// `bodyRemaining` more bytes when given) until the upstream ends (its bytes delivered),
    /// either side fails, or the server stops. The client's end of stream is passed on as a
    /// half-close; the upstream then has the linger timeout to finish.
    private func relay(upstream: PlainTransport, toUpstream: [UInt8]?, toClient: [UInt8], bodyRemaining: Int?) {
        struct Direction {
            var buffer: [UInt8]
            var offset = 0
            var sourceDone = false
            var sinkClosed = false
            var pending: Bool { offset < buffer.count }
        }
        var up = Direction(buffer: toUpstream ?? [])
        if toUpstream == nil {
            up.sourceDone = true
            up.sinkClosed = true
        }
        var down = Direction(buffer: toClient)
        var remaining = bodyRemaining
        if let remaining, remaining <= 0 { down.sourceDone = true }
        var deadline: ContinuousClock.Instant? = toUpstream == nil ? .now + limits.upstreamTimeout : nil
        var buffer = [UInt8](repeating: 0, count: 64 << 10)

        /// Writes what `direction` holds; false on failure.
        func flush(_ direction: inout Direction, to sink: any Transport, events: inout Int16) -> Bool? {
            guard direction.pending else { return nil }
            let result = direction.buffer.withUnsafeBytes { sink.write(UnsafeRawBufferPointer(rebasing: $0[direction.offset...])) }
            switch result {
            case .transferred(let n):
                direction.offset += n
                if !direction.pending {
                    direction.buffer = []
                    direction.offset = 0
                }
                return true
            case .wouldBlock(let wanted):
                events |= wanted
                return nil
            case .endOfFile, .failed:
                return false
            }
        }

        /// Reads into an empty `direction`; false on failure.
        func fill(_ direction: inout Direction, from source: any Transport, events: inout Int16) -> Bool? {
            guard !direction.pending, !direction.sourceDone else { return nil }
            let result = buffer.withUnsafeMutableBytes { source.read(into: $0) }
            switch result {
            case .transferred(let n):
                direction.buffer = Array(buffer[0..<n])
                direction.offset = 0
                return true
            case .endOfFile:
                direction.sourceDone = true
                return true
            case .wouldBlock(let wanted):
                events |= wanted
                return nil
            case .failed:
                return false
            }
        }

        while true {
            var clientEvents: Int16 = 0
            var upstreamEvents: Int16 = 0
            var progressed = true
            while progressed {
                progressed = false
                for step in 0..<4 {
                    let outcome: Bool?
                    switch step {
                    case 0: outcome = flush(&up, to: upstream, events: &upstreamEvents)
                    case 1: outcome = flush(&down, to: transport, events: &clientEvents)
                    case 2: outcome = up.sinkClosed ? nil : fill(&up, from: transport, events: &clientEvents)
                    default:
                        outcome = fill(&down, from: upstream, events: &upstreamEvents)
                        if outcome == true, let left = remaining {
                            remaining = left - down.buffer.count
                            if left - down.buffer.count <= 0 { down.sourceDone = true }
                        }
                    }
                    if outcome == false { return }
                    if outcome == true { progressed = true }
                }
            }
            // The upstream ended and everything it sent reached the client: done.
            if down.sourceDone && !down.pending { return }
            // The client ended: pass it on, and give the upstream the linger time to finish.
            if up.sourceDone && !up.pending && !up.sinkClosed {
                upstream.closeWrite()
                up.sinkClosed = true
                deadline = .now + limits.proxyLingerTimeout
            }
            var fds = [
                pollfd(fd: clientEvents == 0 ? -1 : transport.fd, events: clientEvents, revents: 0),
                pollfd(fd: upstreamEvents == 0 ? -1 : upstream.fd, events: upstreamEvents, revents: 0),
                pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0),
            ]
            let ready = pollUntil(&fds, deadline: deadline)
            if ready <= 0 || fds[2].revents != 0 { return }
        }
    }

    /// Writes all of `bytes` to `sink` before `deadline`.
    func write(_ bytes: [UInt8], via sink: any Transport, deadline: ContinuousClock.Instant) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { sink.write(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            switch result {
            case .transferred(let n): offset += n
            case .wouldBlock(let events):
                guard waitFor(sink.fd, events: events, deadline: deadline) == .ready else { return false }
            case .endOfFile, .failed: return false
            }
        }
        return true
    }

    /// Reads what `source` has into `buffer`, waiting until `deadline`.
    func read(from source: any Transport, into buffer: inout InputBuffer, deadline: ContinuousClock.Instant) -> ReadOutcome {
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let result = chunk.withUnsafeMutableBytes { source.read(into: $0) }
            switch result {
            case .transferred(let n):
                chunk.withUnsafeBytes { buffer.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                return .data
            case .endOfFile: return .endOfFile
            case .failed(let why): return .failed(why)
            case .wouldBlock(let events):
                switch waitFor(source.fd, events: events, deadline: deadline) {
                case .ready: continue
                case .stopped: return .stopped
                case .timedOut: return .timedOut
                }
            }
        }
    }
}
