import Foundation
@testable import StreamingServer

struct ClientError: Error, CustomStringConvertible {
    var description: String
    init(_ text: String) { description = text }
}

/// A blocking TCP connection to the server (30 s receive timeout so a bug fails a test
/// rather than hanging it; no test asserts on time).
final class TestConnection {
    let fd: Int32
    var buffer = ByteQueue()
    let path: String

    init(url: String) throws {
        // http://127.0.0.1:PORT/path
        guard url.hasPrefix("http://") else { throw ClientError("bad url \(url)") }
        let rest = url.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let hostPort = rest[..<slash]
        path = String(rest[slash...])
        guard let colon = hostPort.lastIndex(of: ":"), let port = UInt16(hostPort[hostPort.index(after: colon)...]) else {
            throw ClientError("bad url \(url)")
        }
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(port.bigEndian)
        address.sin_addr.s_addr = inet_addr(String(hostPort[..<colon]))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw ClientError("connect failed: errno \(errno)") }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ClientError("send failed: errno \(errno)") }
            offset += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Reads more into `buffer`; false at end of file (or reset).
    func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = read(fd, &chunk, chunk.count)
        if n > 0 {
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
        if n == 0 || errno == ECONNRESET { return false }
        throw ClientError("read failed: errno \(errno)")
    }

    /// Sends a GET with `headers` and reads the response head.
    func request(_ headers: [(String, String)], method: String = "GET", path: String? = nil) throws -> (status: Int, headers: [(String, String)], body: String) {
        var text = "\(method) \(path ?? self.path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        try send(text)
        return try readResponse()
    }

    func readResponse() throws -> (status: Int, headers: [(String, String)], body: String) {
        while buffer.firstOffset(of: [13, 10, 13, 10]) == nil {
            guard try fill() else { throw ClientError("connection closed before a response") }
        }
        let end = buffer.firstOffset(of: [13, 10, 13, 10])!
        let head = String(decoding: buffer.consume(end + 4), as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let statusLine = lines.removeFirst()
        let status = Int(statusLine.split(separator: " ")[1]) ?? 0
        let headers = lines.map { line -> (String, String) in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]).lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body = ""
        if status != 101, let length = headers.first(where: { $0.0 == "content-length" }).flatMap({ Int($0.1) }) {
            while buffer.count < length { guard try fill() else { break } }
            body = String(decoding: buffer.consume(min(length, buffer.count)), as: UTF8.self)
        }
        return (status, headers, body)
    }
}

/// Everything a SPDY client saw on a connection until the server closed it.
struct SPDYTranscript {
    var replies: [UInt32: UInt8] = [:]
    var data: [UInt32: [UInt8]] = [:]
    var finished: Set<UInt32> = []
    var resets: [UInt32: UInt32] = [:]
    var goAway: UInt32?
    var pings: [UInt32] = []

    func text(_ stream: UInt32) -> String { String(decoding: data[stream] ?? [], as: UTF8.self) }
}

/// A minimal SPDY/3.1 client (the server's own frame codec and a second zlib pair).
final class SPDYTestClient {
    let connection: TestConnection
    let codec = SPDYHeaderCodec()!
    private var nextStreamID: UInt32 = 1
    var transcript = SPDYTranscript()

    /// Connects and upgrades; throws unless the answer is 101 with `expectProtocol`.
    init(url: String, protocols: [String], expectProtocol: String? = nil) throws {
        connection = try TestConnection(url: url)
        let response = try connection.request([
            ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
        ] + protocols.map { ("X-Stream-Protocol-Version", $0) })
        guard response.status == 101 else { throw ClientError("upgrade refused: \(response.status) \(response.body)") }
        let chosen = response.headers.first { $0.0 == "x-stream-protocol-version" }?.1
        if let expectProtocol, chosen != expectProtocol { throw ClientError("negotiated \(chosen ?? "nothing")") }
    }

    @discardableResult
    func openStream(_ headers: [(String, String)], fin: Bool = false) throws -> UInt32 {
        let id = nextStreamID
        nextStreamID += 2
        try connection.send(SPDYFrameCodec.encode(.synStream(
            streamID: id, associatedStreamID: 0, priority: 0, flags: fin ? SPDYFrame.flagFin : 0,
            headerBlock: codec.encode(headers.map { (name: $0.0, value: $0.1) }))))
        return id
    }

    func send(_ bytes: [UInt8], on stream: UInt32, fin: Bool = false) throws {
        try connection.send(SPDYFrameCodec.encode(.data(streamID: stream, flags: fin ? SPDYFrame.flagFin : 0, payload: bytes)))
    }

    func sendFrame(_ frame: SPDYFrame) throws { try connection.send(SPDYFrameCodec.encode(frame)) }

    /// Reads one frame into the transcript; nil at end of file.
    func readFrame() throws -> SPDYFrame? {
        while true {
            if let frame = try SPDYFrameCodec.parse(&connection.buffer) {
                record(frame)
                return frame
            }
            guard try connection.fill() else { return nil }
        }
    }

    /// Reads until `condition` holds on the transcript (or end of file).
    func read(until condition: (SPDYTranscript) -> Bool) throws {
        while !condition(transcript) {
            guard try readFrame() != nil else { return }
        }
    }

    /// Reads until the server closes the connection.
    func readToEnd() throws -> SPDYTranscript {
        while try readFrame() != nil {}
        return transcript
    }

    private func record(_ frame: SPDYFrame) {
        switch frame {
        case .synReply(let id, let flags, let block):
            _ = try? codec.decode(block)
            transcript.replies[id] = flags
            if flags & SPDYFrame.flagFin != 0 { transcript.finished.insert(id) }
        case .data(let id, let flags, let payload):
            transcript.data[id, default: []].append(contentsOf: payload)
            if flags & SPDYFrame.flagFin != 0 { transcript.finished.insert(id) }
        case .rstStream(let id, let status):
            transcript.resets[id] = status
        case .goAway(_, let status):
            transcript.goAway = status
        case .ping(let id):
            transcript.pings.append(id)
        default:
            break
        }
    }
}

/// Everything a WebSocket client saw, per channel.
struct WebSocketTranscript {
    var channels: [UInt8: [UInt8]] = [:]
    /// Messages in order (channel, payload), including empty ones.
    var messages: [(UInt8, [UInt8])] = []
    var closeCode: UInt16?
    var pongs: [[UInt8]] = []

    func text(_ channel: UInt8) -> String { String(decoding: channels[channel] ?? [], as: UTF8.self) }
}

/// A minimal RFC 6455 client for the k8s channel protocols.
final class WebSocketTestClient {
    let connection: TestConnection
    let base64: Bool
    var transcript = WebSocketTranscript()
    private(set) var chosenProtocol: String?

    init(url: String, protocols: [String], path: String? = nil) throws {
        connection = try TestConnection(url: url)
        base64 = protocols.first?.contains("base64") ?? false
        let key = Base64.encode((0..<16).map { _ in UInt8.random(in: 0...255) })
        var headers = [
            ("Connection", "Upgrade"), ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", key),
        ]
        if !protocols.isEmpty { headers.append(("Sec-WebSocket-Protocol", protocols.joined(separator: ", "))) }
        let response = try connection.request(headers, path: path)
        guard response.status == 101 else { throw ClientError("upgrade refused: \(response.status) \(response.body)") }
        guard response.headers.first(where: { $0.0 == "sec-websocket-accept" })?.1 == WebSocketFrameCodec.acceptValue(forKey: key) else {
            throw ClientError("bad Sec-WebSocket-Accept")
        }
        chosenProtocol = response.headers.first { $0.0 == "sec-websocket-protocol" }?.1
    }

    func sendFrame(_ frame: WebSocketFrame) throws {
        try connection.send(WebSocketFrameCodec.encode(frame, mask: (0..<4).map { _ in UInt8.random(in: 0...255) }))
    }

    func send(_ bytes: [UInt8], on channel: UInt8) throws {
        if base64 {
            try sendFrame(WebSocketFrame(fin: true, opcode: .text, payload: [UInt8(ascii: "0") + channel] + Array(Base64.encode(bytes).utf8)))
        } else {
            try sendFrame(WebSocketFrame(fin: true, opcode: .binary, payload: [channel] + bytes))
        }
    }

    /// Reads frames until the server's close frame (answered) or end of file.
    func readToEnd() throws -> WebSocketTranscript {
        while try readFrame() {}
        return transcript
    }

    /// Reads until `condition` holds (or the connection ends).
    func read(until condition: (WebSocketTranscript) -> Bool) throws {
        while !condition(transcript) {
            guard try readFrame() else { return }
        }
    }

    /// Sends a close frame and reads the rest.
    func close() throws -> WebSocketTranscript {
        try sendFrame(WebSocketFrame(fin: true, opcode: .close, payload: WebSocketFrameCodec.closePayload(WebSocketCloseCode.normal)))
        return try readToEnd()
    }

    /// Reads one frame into the transcript; false once the connection is over.
    private func readFrame() throws -> Bool {
        while true {
            guard let frame = try WebSocketFrameCodec.parse(&connection.buffer, requireMask: false, maxPayload: 1 << 26) else {
                guard try connection.fill() else { return false }
                continue
            }
            switch frame.opcode {
            case .binary, .text:
                guard var channel = frame.payload.first else { continue }
                var data = Array(frame.payload.dropFirst())
                if base64 {
                    channel -= UInt8(ascii: "0")
                    data = Base64.decode(data) ?? []
                }
                transcript.messages.append((channel, data))
                transcript.channels[channel, default: []].append(contentsOf: data)
                return true
            case .close:
                transcript.closeCode = frame.payload.count >= 2 ? UInt16(frame.payload[0]) << 8 | UInt16(frame.payload[1]) : nil
                try? sendFrame(WebSocketFrame(fin: true, opcode: .close, payload: frame.payload))
                while try connection.fill() {}
                return false
            case .pong:
                transcript.pongs.append(frame.payload)
                return true
            default:
                continue
            }
        }
    }
}
