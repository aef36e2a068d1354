import Foundation
import KubeClient
import Testing

/// The libcurl transport against a tiny local HTTP server: what goes on the wire (method,
/// headers, bearer token, body), bodies of error statuses, and cancellation.
@Suite("transport")
struct TransportTests {
    @Test func requestOnTheWireAndErrorStatusBodies() async throws {
        let server = try TinyHTTPServer { request in
            if request.contains("GET /api/v1/namespaces/default/pods/missing") {
                return (404, #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"missing\" not found","reason":"NotFound","details":{"name":"missing","kind":"pods"},"code":404}"#)
            }
            if request.contains("GET /broken") { return (502, "<html>bad gateway</html>") }
            return (201, #"{"kind":"ConfigMap","metadata":{"name":"x","resourceVersion":"7"}}"#)
        }
        defer { server.stop() }
        let client = KubeClient(configuration: KubeClientConfiguration(server: "http://127.0.0.1:\(server.port)/", bearerToken: "s3cr3t"))

        let created = try await client.patch("/api/v1/namespaces/default/configmaps/x", ["data": ["a": "b"]] as JSONValue, type: .strategicMerge)
        #expect(created.resourceVersion == "7")
        let wire = try #require(server.requests.last)
        #expect(wire.hasPrefix("PATCH /api/v1/namespaces/default/configmaps/x HTTP/1.1\r\n"))
        #expect(wire.contains("\r\nAuthorization: Bearer s3cr3t\r\n"))
        #expect(wire.contains("\r\nContent-Type: application/strategic-merge-patch+json\r\n"))
        #expect(wire.contains("\r\nAccept: application/json\r\n"))
        #expect(wire.hasSuffix("\r\n\r\n{\"data\":{\"a\":\"b\"}}"))

        _ = try await client.list("/api/v1/pods", labelSelector: "app in (a,b)", fieldSelector: "spec.nodeName=n 1")
        #expect(server.requests.last?.hasPrefix("GET /api/v1/pods?labelSelector=app%20in%20%28a%2Cb%29&fieldSelector=spec.nodeName%3Dn%201 HTTP/1.1") == true)

        try await client.delete("/api/v1/namespaces/default/pods/p", options: DeleteOptions(gracePeriodSeconds: 0))
        #expect(server.requests.last?.hasPrefix("DELETE /api/v1/namespaces/default/pods/p HTTP/1.1") == true)
        #expect(server.requests.last?.contains("\"gracePeriodSeconds\":0") == true)

        let missing = try await #require(throws: KubeAPIError.self) { try await client.get("/api/v1/namespaces/default/pods/missing") }
        #expect(missing.isNotFound && missing.status?.details?.name == "missing")
        #expect(missing.description == "GET /api/v1/namespaces/default/pods/missing: 404 NotFound: pods \"missing\" not found")
        let broken = try await #require(throws: KubeAPIError.self) { try await client.get("/broken") }
        #expect(broken.httpStatus == 502 && broken.status == nil && broken.detail == "<html>bad gateway</html>")
        #expect(broken.isTransient)
    }

    @Test func cancellingTheCallerCancelsTheTransfer() async throws {
        let server = try TinyHTTPServer { _ in nil }  // accepts, never answers
        defer { server.stop() }
        let client = KubeClient(configuration: KubeClientConfiguration(server: "http://127.0.0.1:\(server.port)", requestTimeoutSeconds: 0))
        let call = Task { () async throws(KubeAPIError) -> JSONValue in try await client.get("/hang") }
        // Cancel once the request is in flight (the server has it), not after a guessed delay.
        try await waitUntil { server.requests.count >= 1 }
        call.cancel()
        let result = await call.result
        guard case .failure(let error) = result else { Issue.record("a cancelled call succeeded"); return }
        #expect((error as? KubeAPIError)?.kind == .cancelled, "\(error)")

        // A watch whose consumer goes away ends its transfer too (the server sees the close).
        let watchTask = Task {
            for try await _ in client.watch("/api/v1/pods") {}
        }
        try await waitUntil { server.requests.count >= 2 }
        watchTask.cancel()
        _ = await watchTask.result
        try await waitUntil { server.closedConnections >= 2 }
        #expect(server.closedConnections >= 2)
    }

    /// Polls `condition` (generously: the machine may be busy), without asserting on time.
    func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    }

    @Test func manyOpenWatchesDoNotStarveRequests() async throws {
        let server = try TinyHTTPServer { request in request.contains("watch=1") ? nil : (200, #"{"kind":"Status"}"#) }
        defer { server.stop() }
        let client = KubeClient(configuration: KubeClientConfiguration(server: "http://127.0.0.1:\(server.port)"))
        let watches = (0..<12).map { _ in Task { for try await _ in client.watch("/api/v1/pods") {} } }
        try await waitUntil { server.requests.count >= 12 }
        #expect(server.requests.count == 12)
        // A starved request would never be answered: it must be, while the watches stay open
        // (the 60 s bound only keeps a regression from hanging the suite).
        let answered = await withTaskGroup(of: Bool.self) { group in
            group.addTask { (try? await client.get("/version")["kind"]) == "Status" }
            group.addTask { try? await Task.sleep(for: .seconds(60)); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        #expect(answered)
        for watch in watches { watch.cancel() }
        for watch in watches { _ = await watch.result }
    }

    @Test func connectionRefusedIsATransientTransportError() async throws {
        let refused = try RefusedPort()
        let port = refused.port
        let client = KubeClient(configuration: KubeClientConfiguration(server: "http://127.0.0.1:\(port)"))
        let error = try await #require(throws: KubeAPIError.self) { try await client.get("/version") }
        #expect(error.kind == .transport && error.isTransient, "\(error)")
        #expect(error.path.hasSuffix("/version"))
        withExtendedLifetime(refused) {}
    }
}

/// One-request-per-connection HTTP/1.1 on 127.0.0.1 (a thread per connection): records each
/// request's text; the handler's (status, body) is answered, or nothing (the connection then
/// stays open until the client closes it).
final class TinyHTTPServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var _requests: [String] = []
    private var _closed = 0
    private let handler: @Sendable (String) -> (Int, String)?

    var requests: [String] { lock.withLock { _requests } }
    var closedConnections: Int { lock.withLock { _closed } }

    init(handler: @escaping @Sendable (String) -> (Int, String)?) throws {
        self.handler = handler
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(listener, pointer, length) == 0, listen(listener, 16) == 0 else { return -1 }
                return getsockname(listener, pointer, &length)
            }
        }
        guard bound == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// Wakes the accept thread, which closes the listener: closing it here, under a blocked
    /// accept, would free the descriptor number for another test's socket, and this server's
    /// thread would then accept (and never answer) that test's connections.
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
    }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                close(listener)
                return
            }
            Thread { [self] in serve(connection) }.start()
        }
    }

    private func serve(_ connection: Int32) {
        defer {
            close(connection)
            lock.withLock { _closed += 1 }
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(connection, &buffer, buffer.count)
            if count <= 0 { return }
            received += buffer[..<count]
            let text = String(decoding: received, as: UTF8.self)
            guard let end = text.range(of: "\r\n\r\n") else { continue }
            let head = text[..<end.lowerBound].lowercased()
            let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
            if text.utf8.count - text.utf8.distance(from: text.startIndex, to: end.upperBound) < length { continue }
            lock.withLock { _requests.append(text) }
            guard let (status, body) = handler(text) else {
                while read(connection, &buffer, buffer.count) > 0 {}  // until the client goes away
                return
            }
            let response = "HTTP/1.1 \(status) X\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            _ = response.withCString { send(connection, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            return
        }
    }
}

/// A loopback port that refuses connections while this value lives: bound, never listening,
/// so no other test can take the port meanwhile.
final class RefusedPort {
    let port: Int
    private let fd: Int32

    init() throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = self.fd
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}
