import Testing
@testable import StreamingServer

@Suite struct WebSocketTests {
    @Test func execV4BinaryChannels() async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "c1", command: ["/bin/sh", "-c", "echo out; echo err >&2; exit 2"], tty: false, stdin: false, stdout: true, stderr: true)
            let transcript = try await blocking {
                try WebSocketTestClient(url: url, protocols: ["v4.channel.k8s.io"]).readToEnd()
            }
            // The kubelet's first message: empty, on stdout.
            #expect(transcript.messages.first.map { $0.0 } == 1)
            #expect(transcript.messages.first.map { $0.1 } == [])
            #expect(transcript.text(1) == "out\n")
            #expect(transcript.text(2) == "err\n")
            #expect(transcript.text(3).contains(#""reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"2"}]}"#))
            #expect(transcript.closeCode == WebSocketCloseCode.normal)
        }
    }

    @Test func execV5ClosesStdinWithTheCloseChannel() async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "c1", command: ["/bin/cat"], tty: false, stdin: true, stdout: true, stderr: true)
            let (transcript, chosen) = try await blocking { () -> (WebSocketTranscript, String?) in
                let client = try WebSocketTestClient(url: url, protocols: ["v5.channel.k8s.io", "v4.channel.k8s.io"])
                try client.send(Array("hello ".utf8), on: 0)
                // Fragmented message: [0]"wor" + "ld".
                try client.sendFrame(WebSocketFrame(fin: false, opcode: .binary, payload: [0] + Array("wor".utf8)))
                try client.sendFrame(WebSocketFrame(fin: true, opcode: .ping, payload: [9]))
                try client.sendFrame(WebSocketFrame(fin: true, opcode: .continuation, payload: Array("ld".utf8)))
                try client.sendFrame(WebSocketFrame(fin: true, opcode: .binary, payload: [255, 0]))
                return (try client.readToEnd(), client.chosenProtocol)
            }
            #expect(chosen == "v5.channel.k8s.io")
            #expect(transcript.text(1) == "hello world")
            #expect(transcript.pongs == [[9]])
            #expect(transcript.text(3) == #"{"metadata":{},"status":"Success"}"#)
        }
    }

    @Test func execBase64AndTTYResize() async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "c1", command: ["resize-echo", "1"], tty: true, stdin: true, stdout: true, stderr: false)
            let transcript = try await blocking { () -> WebSocketTranscript in
                let client = try WebSocketTestClient(url: url, protocols: ["v4.base64.channel.k8s.io"])
                try client.send(resizeMessage(132, 43), on: 4)
                return try client.readToEnd()
            }
            #expect(transcript.text(1) == "132x43\n")
            #expect(transcript.text(3) == #"{"metadata":{},"status":"Success"}"#)
        }
    }

    @Test func legacyProtocolWritesTextErrorsOnly() async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "c1", command: ["/bin/sh", "-c", "exit 4"], tty: false, stdin: false, stdout: true, stderr: false)
            let transcript = try await blocking { try WebSocketTestClient(url: url, protocols: ["channel.k8s.io"]).readToEnd() }
            #expect(transcript.text(3) == "command terminated with non-zero exit code: error executing command [/bin/sh -c exit 4], exit code 4")
        }
    }

    @Test func badFramesCloseWithAProtocolError() async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "c1", command: ["/bin/cat"], tty: false, stdin: true, stdout: true, stderr: false)
            let transcript = try await blocking { () -> WebSocketTranscript in
                let client = try WebSocketTestClient(url: url, protocols: ["v4.channel.k8s.io"])
                // Unmasked client frame.
                try client.connection.send(WebSocketFrameCodec.encode(WebSocketFrame(fin: true, opcode: .binary, payload: [0, 1])))
                return try client.readToEnd()
            }
            #expect(transcript.closeCode == WebSocketCloseCode.protocolError)
            let unsupported = server.execURL(containerID: "c1", command: ["/bin/true"], tty: false, stdin: false, stdout: true, stderr: false)
            let refused = try await blocking { () -> Int in
                do {
                    _ = try WebSocketTestClient(url: unsupported, protocols: ["v9.channel.k8s.io"])
                    return 101
                } catch let error as ClientError {
                    return error.description.contains("403") ? 403 : 0
                }
            }
            #expect(refused == 403)
        }
    }
}
