import Foundation
import Testing
@testable import KubeletServer

extension ServerTests {
    private static let switching = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"

    @Test func execUpgradeIsProxiedBothWays() async throws {
        let upstream = try TestUpstream(response: Self.switching)
        let authorizer = TestAuthorizer()
        let configuration = KubeletAPIServer.Configuration(
            address: "127.0.0.1", port: 0, nodeName: "node-1", tls: nil, anonymousAuthEnabled: true, authorizer: authorizer)
        try await withServer(configuration) { server, backend in
            backend.state.withLock { $0.streamingURL = upstream.url }
            try await blocking {
                let client = try TestClient(port: server.port)
                try client.sendRequest("POST", "/exec/default/web/uid-9/app?command=sh&command=-c&command=echo%20hi&input=1&output=1&error=1&tty=1", headers: [
                    ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
                    ("X-Stream-Protocol-Version", "v3.channel.k8s.io"), ("Authorization", "Bearer not-forwarded"),
                ])
                let head = try client.readHead()
                #expect(head.status == 101)
                #expect(head.header("x-stream-protocol-version") == "v4.channel.k8s.io")
                try client.send("ping 1")
                #expect(String(decoding: try client.read(count: 6), as: UTF8.self) == "ping 1")
                let big = [UInt8](repeating: 7, count: 300_000)
                try client.send(big)
                #expect(try client.read(count: big.count) == big)
                // The client's end reaches the upstream, whose close then reaches the client.
                client.shutdownWrite()
                #expect(try client.readToEnd().isEmpty)
            }
            #expect(upstream.wait())
            #expect(upstream.sawEndOfFile)
            let head = upstream.head
            #expect(head.hasPrefix("POST /exec/token123 HTTP/1.1\r\nHost: 127.0.0.1:\(upstream.port)\r\n"))
            #expect(head.contains("Connection: Upgrade\r\n") && head.contains("Upgrade: SPDY/3.1\r\n"))
            #expect(head.contains("X-Stream-Protocol-Version: v4.channel.k8s.io\r\nX-Stream-Protocol-Version: v3.channel.k8s.io\r\n"))
            #expect(!head.contains("Authorization"))
            let request = try #require(backend.state.withLock { $0.streamRequests.first })
            #expect(request == ContainerStreamRequest(
                namespace: "default", pod: "web", uid: "uid-9", container: "app", command: ["sh", "-c", "echo hi"],
                stdin: true, stdout: true, stderr: false, tty: true))
            #expect(authorizer.last?.verb == "create")
        }
    }

    @Test func upstreamCloseReachesTheClient() async throws {
        let upstream = try TestUpstream(response: Self.switching, closeAfter: "goodbye")
        let authorizer = TestAuthorizer()
        let configuration = KubeletAPIServer.Configuration(
            address: "127.0.0.1", port: 0, nodeName: "node-1", tls: nil, anonymousAuthEnabled: true, authorizer: authorizer)
        try await withServer(configuration) { server, backend in
            backend.state.withLock { $0.streamingURL = upstream.url }
            try await blocking {
                let client = try TestClient(port: server.port)
                try client.sendRequest("GET", "/attach/default/web/app?output=1", headers: [
                    ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                    ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Protocol", "v5.channel.k8s.io"),
                ])
                #expect(try client.readHead().status == 101)
                #expect(String(decoding: try client.readToEnd(), as: UTF8.self) == "goodbye")
            }
            #expect(upstream.wait())
            #expect(upstream.head.hasPrefix("GET /exec/token123 HTTP/1.1\r\n"))
            #expect(upstream.head.contains("Sec-Websocket-Protocol: v5.channel.k8s.io\r\n"))
            // A WebSocket GET to attach is authorized as create.
            #expect(authorizer.last?.verb == "create")
        }
    }

    @Test func upstreamErrorsAreRelayed() async throws {
        let body = "container not found (\"app\")\n"
        let upstream = try TestUpstream(
            response: "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        try await withServer { server, backend in
            backend.state.withLock { $0.streamingURL = upstream.url }
            try await blocking {
                let client = try TestClient(port: server.port)
                let response = try client.request("GET", "/portForward/default/web?port=8080", headers: [
                    ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", "a2V5"), ("Sec-WebSocket-Version", "13"),
                ])
                #expect(response.status == 404)
                #expect(response.text == body)
                #expect(try client.readToEnd().isEmpty)
            }
            #expect(upstream.wait())
            #expect(backend.state.withLock { $0.portForwards } == [PortForwardRequest(namespace: "default", pod: "web", uid: nil, ports: [8080])])
        }
    }

    @Test func streamingRequestErrors() async throws {
        try await withServer { server, backend in
            try await blocking {
                let client = try TestClient(port: server.port)
                let upgrade = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]
                let missing = try client.request("POST", "/exec/default/missing/app?command=ls&output=1", headers: upgrade)
                #expect(missing.status == 404 && missing.text == "pod does not exist")
                let noStreams = try client.request("POST", "/exec/default/web/app?command=ls", headers: upgrade)
                #expect(noStreams.status == 400 && noStreams.text == "you must specify at least 1 of stdin, stdout, stderr")
                let noUpgrade = try client.request("POST", "/exec/default/web/app?command=ls&output=1")
                #expect(noUpgrade.status == 500 && noUpgrade.text == "Upgrade request required\n")
                let wrongUID = try client.request("POST", "/portForward/default/web/wrong", headers: upgrade)
                #expect(wrongUID.status == 404 && wrongUID.text == "pod not found")
                let noPort = try client.request("GET", "/portForward/default/web", headers: [("Connection", "Upgrade"), ("Upgrade", "websocket")])
                #expect(noPort.status == 400 && noPort.text == "query parameter \"port\" is required")
                #expect(try client.request("PUT", "/exec/default/web/app?output=1").status == 405)
            }
            // Nobody listens at the streaming URL.
            backend.state.withLock { $0.streamingURL = "http://127.0.0.1:1/exec/x" }
            try await blocking {
                let client = try TestClient(port: server.port)
                let refused = try client.request("POST", "/exec/default/web/app?output=1", headers: [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")])
                #expect(refused.status == 500)
                #expect(refused.text.hasPrefix("error dialing backend: dial tcp 127.0.0.1:1: connect: "))
            }
        }
    }
}
