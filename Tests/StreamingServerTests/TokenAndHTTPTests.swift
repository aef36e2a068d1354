import Foundation
import Testing
@testable import StreamingServer

@Suite struct TokenAndHTTPTests {
    @Test func tokensAreRandomURLSafeAndSingleUse() async throws {
        let cache = TokenCache(ttl: .seconds(60))
        let request = StreamRequest.portForward(podSandboxID: "p", port: nil)
        let tokens = (0..<100).map { _ in cache.insert(request) }
        #expect(Set(tokens).count == 100)
        for token in tokens {
            #expect(token.count >= 11)  // ≥ 8 random bytes in base64url
            #expect(token.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        }
        #expect(cache.consume(tokens[0]) == request)
        #expect(cache.consume(tokens[0]) == nil)
        #expect(cache.consume("unknown") == nil)
        let expired = TokenCache(ttl: .zero)
        #expect(expired.consume(expired.insert(request)) == nil)
    }

    @Test func urlsHaveTheKubeletShape() async throws {
        try await withServer { server, _ in
            let base = server.baseURL
            #expect(base.hasPrefix("http://127.0.0.1:"))
            #expect(server.port > 0)
            #expect(server.execURL(containerID: "c", command: ["ls"], tty: false, stdin: false, stdout: true, stderr: false).hasPrefix(base + "/exec/"))
            #expect(server.attachURL(containerID: "c", tty: true, stdin: true, stdout: true, stderr: false).hasPrefix(base + "/attach/"))
            #expect(server.portForwardURL(podSandboxID: "p", port: 80).hasPrefix(base + "/portforward/"))
        }
    }

    @Test func usedUnknownExpiredAndMismatchedTokensAnswer404() async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "c1", command: ["/bin/true"], tty: false, stdin: false, stdout: true, stderr: false)
            _ = try await blocking { try spdyExec(url: url, stderr: false) }
            let base = server.baseURL
            let wrongKind = server.attachURL(containerID: "c1", tty: false, stdin: false, stdout: true, stderr: false)
                .replacingOccurrences(of: "/attach/", with: "/exec/")
            for target in [url, base + "/exec/nope", base + "/attach/", base + "/other/x", wrongKind] {
                let response = try await blocking {
                    try TestConnection(url: target).request([("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", "v4.channel.k8s.io")])
                }
                #expect(response.status == 404, "\(target)")
                #expect(response.body == "404 page not found\n")
            }
        }
        try await withServer(tokenTTL: .zero) { server, _ in
            let url = server.execURL(containerID: "c1", command: ["/bin/true"], tty: false, stdin: false, stdout: true, stderr: false)
            let response = try await blocking {
                try TestConnection(url: url).request([("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", "v4.channel.k8s.io")])
            }
            #expect(response.status == 404)
        }
    }

    @Test func handshakeErrorsAreTheKubelets() async throws {
        try await withServer { server, _ in
            func exec() -> String {
                server.execURL(containerID: "c1", command: ["/bin/true"], tty: false, stdin: false, stdout: true, stderr: false)
            }
            let missing = exec()
            let noVersion = try await blocking {
                try TestConnection(url: missing).request([("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")])
            }
            #expect(noVersion.status == 400)
            #expect(noVersion.body == "unable to upgrade: X-Stream-Protocol-Version is required\n")

            let unknown = exec()
            let unsupported = try await blocking {
                try TestConnection(url: unknown).request([("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", "v9.channel.k8s.io")])
            }
            #expect(unsupported.status == 403)
            #expect(unsupported.headers.filter { $0.0 == "x-accepted-stream-protocol-versions" }.map(\.1)
                    == ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"])

            let plain = exec()
            let notUpgrade = try await blocking {
                try TestConnection(url: plain).request([("X-Stream-Protocol-Version", "v4.channel.k8s.io")])
            }
            #expect(notUpgrade.status == 400)
            #expect(notUpgrade.body.hasPrefix("unable to upgrade: missing upgrade headers in request"))

            let negotiated = exec()
            let picked = try await blocking { () -> String? in
                let connection = try TestConnection(url: negotiated)
                let response = try connection.request([
                    ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                    ("X-Stream-Protocol-Version", "v9.channel.k8s.io, v3.channel.k8s.io"),
                    ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
                ])
                return response.status == 101 ? response.headers.first { $0.0 == "x-stream-protocol-version" }?.1 : nil
            }
            #expect(picked == "v3.channel.k8s.io")  // the client's first the server speaks

            let deleted = exec()
            let method = try await blocking { try TestConnection(url: deleted).request([], method: "DELETE") }
            #expect(method.status == 405)
        }
    }

    @Test func garbageNeverCrashesTheServer() async throws {
        try await withServer { server, _ in
            let base = server.baseURL
            let garbage: [[UInt8]] = [
                Array("NOT HTTP AT ALL\r\n\r\n".utf8),
                Array("GET /exec/x HTTP/1.1\r\nno colon here\r\n\r\n".utf8),
                [0xff, 0xfe, 0x00, 0x0d, 0x0a, 0x0d, 0x0a],
                Array("GET /exec/%zz HTTP/1.1\r\n\r\n".utf8),
            ]
            for bytes in garbage {
                let status = try await blocking { () -> Int in
                    let connection = try TestConnection(url: base + "/")
                    try connection.send(bytes)
                    return try connection.readResponse().status
                }
                #expect(status == 400)
            }
            let huge = try await blocking { () -> Int in
                let connection = try TestConnection(url: base + "/")
                try connection.send("GET /exec/x HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 20000) + "\r\n\r\n")
                return try connection.readResponse().status
            }
            #expect(huge == 431)
            // A client that half-closes after its request still gets the answer.
            let halfClosed = try await blocking { () -> Int in
                let connection = try TestConnection(url: base + "/exec/unknown")
                try connection.send("GET /exec/unknown HTTP/1.1\r\nHost: x\r\n\r\n")
                shutdown(connection.fd, Int32(SHUT_WR))
                return try connection.readResponse().status
            }
            #expect(halfClosed == 404)
            // A truncated head, then the client leaves.
            try await blocking {
                let connection = try TestConnection(url: base + "/")
                try connection.send("GET /exec/")
            }

            // SPDY garbage after a good upgrade: GOAWAY(PROTOCOL_ERROR), then the connection closes.
            let spdyGarbage: [[UInt8]] = [
                [0x80, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00],  // SPDY/2 control frame
                [0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0a] + [UInt8](repeating: 0, count: 8) + [0x78, 0x00],  // corrupt header block
                [0x80, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x10, 0x00],  // SETTINGS claiming 4096 entries
            ]
            for bytes in spdyGarbage {
                let url = server.execURL(containerID: "c1", command: ["/bin/true"], tty: false, stdin: false, stdout: true, stderr: false)
                let transcript = try await blocking { () -> SPDYTranscript in
                    let client = try SPDYTestClient(url: url, protocols: ["v4.channel.k8s.io"])
                    try client.connection.send(bytes)
                    return try client.readToEnd()
                }
                #expect(transcript.goAway == SPDYGoAwayStatus.protocolError)
            }
            // Data for a stream never opened: RST_STREAM(INVALID_STREAM), the session goes on.
            let url = server.execURL(containerID: "c1", command: ["/bin/sh", "-c", "echo fine"], tty: false, stdin: false, stdout: true, stderr: false)
            let transcript = try await blocking { () -> SPDYTranscript in
                let client = try SPDYTestClient(url: url, protocols: ["v4.channel.k8s.io"])
                try client.send([1, 2, 3], on: 99)
                try client.openStream(streamType("error"))
                try client.openStream(streamType("stdout"))
                return try client.readToEnd()
            }
            #expect(transcript.resets[99] == SPDYStreamStatus.invalidStream)
            #expect(transcript.text(3) == "fine\n")
            // Truncated frame, then the client leaves mid-frame: the server cleans up and serves on.
            let truncated = server.execURL(containerID: "c1", command: ["/bin/true"], tty: false, stdin: false, stdout: true, stderr: false)
            try await blocking {
                let client = try SPDYTestClient(url: truncated, protocols: ["v4.channel.k8s.io"])
                try client.connection.send([0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00])
            }
            let after = server.execURL(containerID: "c1", command: ["/bin/sh", "-c", "echo still here"], tty: false, stdin: false, stdout: true, stderr: false)
            let result = try await blocking { try spdyExec(url: after, stderr: false) }
            #expect(result.stdout == "still here\n")
        }
    }

    @Test func streamsNotCreatedInTimeEndTheSession() async throws {
        try await withServer(streamCreationTimeout: .zero) { server, _ in
            let url = server.execURL(containerID: "c1", command: ["/bin/true"], tty: false, stdin: false, stdout: true, stderr: false)
            let transcript = try await blocking { () -> SPDYTranscript in
                let client = try SPDYTestClient(url: url, protocols: ["v4.channel.k8s.io"])
                return try client.readToEnd()
            }
            #expect(transcript.goAway == SPDYGoAwayStatus.ok)
        }
    }
}
