import Foundation
import Testing
@testable import StreamingServer

/// Random bytes after a good upgrade (fixed seeds): the server answers with GOAWAY or a
/// close frame, or drops the connection, and always serves the next session.
@Suite struct FuzzTests {
    struct XorShift: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
    }

    static func garbage(seed: UInt64, spdyLike: Bool) -> [UInt8] {
        var generator = XorShift(state: seed)
        let length = Int.random(in: 1...600, using: &generator)
        var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
        if spdyLike && bytes.count >= 8 {
            // Mostly valid-looking SPDY/3 control frame headers, to get past the first checks.
            bytes[0] = 0x80
            bytes[1] = 0x03
            bytes[2] = 0
            bytes[3] = UInt8.random(in: 1...10, using: &generator)
            bytes[5] = 0
            bytes[6] = 0
        }
        return bytes
    }

    @Test(arguments: 1...40)
    func spdyGarbage(seed: Int) async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "c1", command: ["/bin/cat"], tty: false, stdin: true, stdout: true, stderr: false)
            let bytes = Self.garbage(seed: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15, spdyLike: seed % 2 == 0)
            _ = try await blocking { () -> SPDYTranscript? in
                let client = try SPDYTestClient(url: url, protocols: ["v4.channel.k8s.io"])
                try client.connection.send(bytes)
                // The client is done writing; whatever the server made of the bytes, it
                // ends the connection.
                shutdown(client.connection.fd, Int32(SHUT_WR))
                return try client.readToEnd()
            }
            let after = server.execURL(containerID: "c1", command: ["/bin/sh", "-c", "echo alive"], tty: false, stdin: false, stdout: true, stderr: false)
            let result = try await blocking { try spdyExec(url: after, stderr: false) }
            #expect(result.stdout == "alive\n")
        }
    }

    @Test(arguments: 1...40)
    func webSocketGarbage(seed: Int) async throws {
        try await withServer { server, _ in
            let url = server.execURL(containerID: "c1", command: ["/bin/cat"], tty: false, stdin: true, stdout: true, stderr: false)
            let bytes = Self.garbage(seed: UInt64(seed) &* 0xBF58_476D_1CE4_E5B9, spdyLike: false)
            try await blocking {
                let client = try WebSocketTestClient(url: url, protocols: ["v5.channel.k8s.io"])
                try client.connection.send(bytes)
                shutdown(client.connection.fd, Int32(SHUT_WR))
                _ = try client.readToEnd()
            }
            let after = server.execURL(containerID: "c1", command: ["/bin/sh", "-c", "echo alive"], tty: false, stdin: false, stdout: true, stderr: false)
            let transcript = try await blocking { try WebSocketTestClient(url: after, protocols: ["v4.channel.k8s.io"]).readToEnd() }
            #expect(transcript.text(1) == "alive\n")
        }
    }
}
