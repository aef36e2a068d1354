import Testing
@testable import StreamingServer

@Suite struct PortForwardTests {
    @Test func spdyForwardsToAnEchoServer() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        try await withServer { server, _ in
            let url = server.portForwardURL(podSandboxID: "pod1", port: nil)
            let port = echo.port
            let (first, second) = try await blocking { () -> (String, String) in
                let client = try SPDYTestClient(url: url, protocols: ["portforward.k8s.io"], expectProtocol: "portforward.k8s.io")
                var results: [String] = []
                // Two forwarded connections, one after the other, on one SPDY connection.
                for (index, text) in ["hello through the pod", String(repeating: "x", count: 100_000)].enumerated() {
                    let headers = [("port", "\(port)"), ("requestID", "\(index)")]
                    let error = try client.openStream(headers + [("streamtype", "error")])
                    let data = try client.openStream(headers + [("streamtype", "data")])
                    try client.send(Array(text.utf8), on: data, fin: true)
                    try client.read(until: { $0.finished.contains(data) && $0.finished.contains(error) })
                    results.append(client.transcript.text(data) + client.transcript.text(error))
                }
                return (results[0], results[1])
            }
            #expect(first == "hello through the pod")
            #expect(second == String(repeating: "x", count: 100_000))
        }
    }

    @Test func spdyFailureIsWrittenOnTheErrorStream() async throws {
        try await withServer { server, _ in
            let url = server.portForwardURL(podSandboxID: "pod1", port: nil)
            let closed = ClosedPort()
            defer { withExtendedLifetime(closed) {} }
            let port = closed.port
            let (errorText, rejected) = try await blocking { () -> (String, UInt8?) in
                let client = try SPDYTestClient(url: url, protocols: ["portforward.k8s.io"])
                let headers = [("port", "\(port)"), ("requestid", "1")]
                let error = try client.openStream(headers + [("streamtype", "error")])
                let data = try client.openStream(headers + [("streamtype", "data")])
                let bad = try client.openStream([("port", "0"), ("streamtype", "data")])
                try client.read(until: { $0.finished.contains(error) && $0.finished.contains(data) && $0.replies[bad] != nil })
                return (client.transcript.text(error), client.transcript.replies[bad])
            }
            #expect(errorText.hasPrefix("error forwarding port \(port) to pod pod1, uid : dial tcp 127.0.0.1:\(port): connect:"))
            #expect(rejected == SPDYFrame.flagFin)
        }
    }

    @Test func webSocketForwardsWithPortPrefixes() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        try await withServer { server, _ in
            let port = echo.port
            let url = server.portForwardURL(podSandboxID: "pod1", port: nil)
            let path = String(url.dropFirst(server.baseURL.count)) + "?port=\(port)"
            let transcript = try await blocking { () -> WebSocketTranscript in
                let client = try WebSocketTestClient(url: url, protocols: ["v4.channel.k8s.io"], path: path)
                try client.send(Array("over websocket".utf8), on: 0)
                // Channel 0 carries the port prefix, then the echo.
                try client.read(until: { $0.channels[0]?.count == 2 + "over websocket".utf8.count })
                return try client.close()
            }
            let little = [UInt8(port & 0xff), UInt8(port >> 8)]
            #expect(transcript.messages.filter { $0.0 == 0 }.first?.1 == little)
            #expect(transcript.messages.filter { $0.0 == 1 }.first?.1 == little)
            #expect(transcript.channels[0].map { Array($0.dropFirst(2)) } == Array("over websocket".utf8))
        }
    }
}
