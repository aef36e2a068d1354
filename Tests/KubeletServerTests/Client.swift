import Foundation

/// A response as a test client read it.
struct TestResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? { headers.first { $0.0 == name.lowercased() }?.1 }
}

/// A blocking TCP connection (30 s receive timeout so a bug fails a test rather than
/// hanging it; no test asserts on time).
final class TestClient: @unchecked Sendable {
    /// The socket; -1 once ``close()`` closed it.
    private(set) var fd: Int32
    var buffer: [UInt8] = []

    init(port: Int, host: String = "127.0.0.1") throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            _ = Glibc.close(fd)
            throw ClientError("connect failed: errno \(errno)")
        }
    }

    deinit { close() }

    /// The client leaves: closes the socket, once. (A test must never close `fd` itself: this
    /// object closes it again when it goes, and by then the number may be another test's
    /// descriptor — a pipe, an eventfd, a server's socket.)
    func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ClientError("send failed: errno \(errno)") }
            offset += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads more into `buffer`; false at end of file (or reset).
    @discardableResult
    func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = Glibc.read(fd, &chunk, chunk.count)
        if n > 0 {
            buffer += chunk[0..<n]
            return true
        }
        if n == 0 || errno == ECONNRESET { return false }
        throw ClientError("read failed: errno \(errno)")
    }

    /// Reads until the server closes; everything buffered.
    func readToEnd() throws -> [UInt8] {
        while try fill() {}
        defer { buffer = [] }
        return buffer
    }

    /// Reads until `count` bytes are buffered, and takes them.
    func read(count: Int) throws -> [UInt8] {
        while buffer.count < count {
            guard try fill() else { throw ClientError("closed after \(buffer.count) of \(count) bytes") }
        }
        defer { buffer.removeFirst(count) }
        return Array(buffer[0..<count])
    }

    /// A request; `headers` after Host.
    func request(_ method: String = "GET", _ target: String, headers: [(String, String)] = [], body: [UInt8] = []) throws -> TestResponse {
        try sendRequest(method, target, headers: headers, body: body)
        return try readResponse(method: method)
    }

    func sendRequest(_ method: String = "GET", _ target: String, headers: [(String, String)] = [], body: [UInt8] = []) throws {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if !body.isEmpty { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        try send(Array(text.utf8) + body)
    }

    /// The response head only.
    func readHead() throws -> TestResponse {
        while true {
            if let end = buffer.firstRange(of: [13, 10, 13, 10]) {
                let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
                buffer.removeSubrange(..<end.upperBound)
                var lines = head.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst()
                let parts = statusLine.split(separator: " ")
                guard parts.count >= 2, let status = Int(parts[1]) else { throw ClientError("bad status line \(statusLine)") }
                let headers = lines.map { line -> (String, String) in
                    let colon = line.firstIndex(of: ":") ?? line.endIndex
                    let value = colon < line.endIndex ? line[line.index(after: colon)...] : ""
                    return (line[..<colon].lowercased(), value.trimmingCharacters(in: .whitespaces))
                }
                return TestResponse(status: status, headers: headers, body: [])
            }
            guard try fill() else { throw ClientError("connection closed before a response") }
        }
    }

    /// A whole response: Content-Length or chunked body (or to the end).
    func readResponse(method: String = "GET") throws -> TestResponse {
        var response = try readHead()
        if method == "HEAD" || response.status == 101 || response.status == 204 { return response }
        if response.header("transfer-encoding") == "chunked" {
            while let chunk = try readChunk() { response.body += chunk }
        } else if let length = response.header("content-length").flatMap(Int.init) {
            response.body = try read(count: length)
        } else {
            response.body = try readToEnd()
        }
        return response
    }

    /// One chunk of a chunked body; nil after the last.
    func readChunk() throws -> [UInt8]? {
        while buffer.firstRange(of: [13, 10]) == nil {
            guard try fill() else { throw ClientError("closed inside a chunk header") }
        }
        let end = buffer.firstRange(of: [13, 10])!
        let sizeText = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
        buffer.removeSubrange(..<end.upperBound)
        guard let size = Int(sizeText, radix: 16) else { throw ClientError("bad chunk size \(sizeText)") }
        let data = try read(count: size + 2)
        if size == 0 { return nil }
        return Array(data[0..<size])
    }
}

/// A one-connection upstream for proxy tests: records the request head, answers `response`
/// and then echoes (or, with `closeAfter`, sends it and closes).
final class TestUpstream: @unchecked Sendable {
    let listener: Int32
    let port: Int
    private let lock = NSLock()
    private var _head = ""
    private var _sawEndOfFile = false
    private let done = DispatchSemaphore(value: 0)

    init(response: String, closeAfter: String? = nil) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        listener = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 4) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw ClientError("upstream bind failed: errno \(errno)") }
        port = Int(UInt16(bigEndian: address.sin_port))
        let listener = self.listener
        Thread { [self] in
            defer {
                close(listener)
                done.signal()
            }
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            defer { close(fd) }
            var buffer: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while buffer.firstRange(of: [13, 10, 13, 10]) == nil {
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            let end = buffer.firstRange(of: [13, 10, 13, 10])!
            lock.withLock { _head = String(decoding: buffer[..<end.upperBound], as: UTF8.self) }
            var rest = Array(buffer[end.upperBound...])
            _ = Array(response.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if let closeAfter {
                _ = Array(closeAfter.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                return
            }
            while true {
                if !rest.isEmpty {
                    _ = rest.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    rest = []
                }
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 {
                    lock.withLock { _sawEndOfFile = n == 0 }
                    return
                }
                rest = Array(chunk[0..<n])
            }
        }.start()
    }

    var url: String { "http://127.0.0.1:\(port)/exec/token123" }
    var head: String { lock.withLock { _head } }
    var sawEndOfFile: Bool { lock.withLock { _sawEndOfFile } }

    /// Waits for the connection to end.
    func wait() -> Bool { done.wait(timeout: .now() + 20) == .success }
}
