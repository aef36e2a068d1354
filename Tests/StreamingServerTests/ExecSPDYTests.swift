import Testing
@testable import StreamingServer

@Suite struct ExecSPDYTests {
    @Test func stdoutStderrAndSuccessStatus() async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "c1", command: ["/bin/sh", "-c", "echo out; echo err >&2"], tty: false, stdin: false, stdout: true, stderr: true)
            let result = try await blocking { try spdyExec(url: url) }
            #expect(result.stdout == "out\n")
            #expect(result.stderr == "err\n")
            #expect(result.status == #"{"metadata":{},"status":"Success"}"#)
            #expect(result.transcript.goAway == SPDYGoAwayStatus.ok)
            // Every stream was accepted (no FIN on the replies) and ended by the server.
            #expect(result.transcript.replies.values.allSatisfy { $0 == 0 })
            #expect(result.transcript.finished.isSuperset(of: [1, 3, 5]))
        }
    }

    @Test func nonZeroExitCodeOnTheErrorStream() async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "c1", command: ["/bin/sh", "-c", "echo bye; exit 3"], tty: false, stdin: false, stdout: true, stderr: true)
            let result = try await blocking { try spdyExec(url: url) }
            #expect(result.stdout == "bye\n")
            #expect(result.status == #"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [/bin/sh -c echo bye; exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#)
        }
    }

    @Test func stdinIsForwardedAndClosed() async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "c1", command: ["/bin/cat"], tty: false, stdin: true, stdout: true, stderr: true)
            let payload = Array((0..<200_000).map { UInt8(truncatingIfNeeded: $0 % 251) })
            let result = try await blocking { try spdyExec(url: url, stdin: payload) }
            #expect(result.transcript.data[5] == payload)
            #expect(result.status == #"{"metadata":{},"status":"Success"}"#)
        }
    }

    @Test func olderProtocolsWriteThePlainErrorText() async throws {
        try await withServer { server, _ in
            for version in ["v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"] {
                let failing = server.execURL(containerID: "c1", command: ["/bin/sh", "-c", "exit 7"], tty: false, stdin: false, stdout: true, stderr: true)
                let failed = try await blocking { try spdyExec(url: failing, protocolVersion: version) }
                #expect(failed.status == "command terminated with non-zero exit code: error executing command [/bin/sh -c exit 7], exit code 7")
                let passing = server.execURL(containerID: "c1", command: ["/bin/true"], tty: false, stdin: false, stdout: true, stderr: true)
                let passed = try await blocking { try spdyExec(url: passing, protocolVersion: version) }
                #expect(passed.status == "")
            }
        }
    }

    @Test func runtimeFailureIsAnInternalErrorStatus() async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "missing", command: ["/bin/true"], tty: false, stdin: false, stdout: true, stderr: true)
            let result = try await blocking { try spdyExec(url: url) }
            #expect(result.status == #"{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing command in container: container \"missing\" not found","reason":"InternalError","details":{"causes":[{"message":"error executing command in container: container \"missing\" not found"}]},"code":500}"#)
        }
    }

    @Test func ttyResizesReachTheRuntime() async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "c1", command: ["resize-echo", "2"], tty: true, stdin: true, stdout: true, stderr: false)
            let result = try await blocking {
                try spdyExec(url: url, stdin: [], stderr: false, tty: true, resizes: [resizeMessage(80, 24), Array(" \n{\"width\": 100, \"height\": 40}".utf8)])
            }
            #expect(result.stdout == "80x24\n100x40\n")
            #expect(result.status == #"{"metadata":{},"status":"Success"}"#)
        }
    }

    @Test func attachRunsAgainstTheRuntime() async throws {
        try await withServer { server, _ in
            let url = server.attachURL(containerID: "c1", tty: false, stdin: true, stdout: true, stderr: true)
            let result = try await blocking { try spdyExec(url: url, stdin: Array("attached\n".utf8)) }
            #expect(result.stdout == "attached\n")
            #expect(result.status == #"{"metadata":{},"status":"Success"}"#)
            let missing = server.attachURL(containerID: "missing", tty: false, stdin: false, stdout: true, stderr: false)
            let failed = try await blocking { try spdyExec(url: missing, stderr: false) }
            #expect(failed.status.contains(#""message":"Internal error occurred: error attaching to container: container \"missing\" not found""#))
        }
    }

    @Test func pingsAreEchoedAndUnknownStreamTypesRejected() async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "c1", command: ["/bin/true"], tty: false, stdin: false, stdout: true, stderr: false)
            let transcript = try await blocking {
                let client = try SPDYTestClient(url: url, protocols: ["v4.channel.k8s.io"])
                try client.sendFrame(.ping(id: 7))
                try client.sendFrame(.settings(flags: 0, entries: [SPDYSetting(flags: 0, id: 7, value: 65536)]))
                try client.sendFrame(.windowUpdate(streamID: 0, delta: 1000))
                let bogus = try client.openStream(streamType("bogus"))
                try client.read(until: { $0.pings.contains(7) && $0.replies[bogus] != nil })
                try client.openStream(streamType("error"))
                try client.openStream(streamType("stdout"))
                return try client.readToEnd()
            }
            #expect(transcript.pings == [7])
            #expect(transcript.replies[1] == SPDYFrame.flagFin)  // the bogus stream, refused
            #expect(transcript.replies[3] == 0)
            #expect(transcript.text(3) == #"{"metadata":{},"status":"Success"}"#)
        }
    }

    @Test func clientDisconnectMidSessionEndsTheProcess() async throws {
        try await withServer { server, runtime in
            let url = server.execURL(containerID: "hangup", command: ["/bin/cat"], tty: false, stdin: true, stdout: true, stderr: false)
            try await blocking {
                let client = try SPDYTestClient(url: url, protocols: ["v4.channel.k8s.io"])
                try client.openStream(streamType("error"))
                let stdin = try client.openStream(streamType("stdin"))
                let stdout = try client.openStream(streamType("stdout"))
                try client.send(Array("ping\n".utf8), on: stdin)
                try client.read(until: { $0.text(stdout) == "ping\n" })
                // Gone without closing stdin: the server's pipe ends close, cat sees EOF.
            }
            for await (container, code) in runtime.finished where container == "hangup" {
                #expect(code == 0)
                break
            }
        }
    }
}
