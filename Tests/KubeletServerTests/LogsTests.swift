import Foundation
import Testing
@testable import KubeletServer

extension ServerTests {
    @Test func logsAreStreamedChunked() async throws {
        try await withServer { server, backend in
            try await blocking {
                let client = try TestClient(port: server.port)
                let response = try client.request("GET", "/containerLogs/default/web/lines?tailLines=10&timestamps=true")
                #expect(response.status == 200)
                #expect(response.header("transfer-encoding") == "chunked")
                #expect(response.text == "line 1\nline 2\n")
                // The connection stays usable after a finished stream.
                #expect(try client.request("GET", "/pods").status == 200)
            }
            let request = try #require(backend.state.withLock { $0.logRequests.first })
            #expect(request.namespace == "default" && request.pod == "web" && request.container == "lines")
            #expect(request.tailLines == 10 && request.timestamps && !request.follow)
        }
    }

    @Test func logErrors() async throws {
        try await withServer { server, _ in
            try await blocking {
                let client = try TestClient(port: server.port)
                let missing = try client.request("GET", "/containerLogs/default/missing/c")
                #expect(missing.status == 404 && missing.text == "pod \"missing\" does not exist")
                let failed = try client.request("GET", "/containerLogs/default/web/fail?previous=true")
                #expect(failed.status == 400 && failed.text == "previous terminated container \"fail\" not found")
                let invalid = try client.request("GET", "/containerLogs/default/web/c?tailLines=-3")
                #expect(invalid.status == 422 && invalid.text == #"{"message": "Invalid request."}"#)
                #expect(try client.request("POST", "/containerLogs/default/web/c").status == 405)
            }
        }
    }

    @Test func followEndsWhenTheClientGoesAway() async throws {
        try await withServer { server, backend in
            let client = try await blocking { () -> TestClient in
                let client = try TestClient(port: server.port)
                try client.sendRequest("GET", "/containerLogs/default/web/app?follow=true")
                let head = try client.readHead()
                #expect(head.status == 200)
                return client
            }
            #expect(await eventually { backend.openLogStreams == 1 })
            backend.sendLog("first\n")
            let first = try await blocking { try client.readChunk() }
            #expect(first.map { String(decoding: $0, as: UTF8.self) } == "first\n")
            backend.sendLog("second\n")
            #expect(try await blocking { try client.readChunk() }.map { String(decoding: $0, as: UTF8.self) } == "second\n")
            #expect(backend.logTerminations == 0)
            // The client leaves: the backend's stream is terminated (cancelled).
            client.close()
            #expect(await eventually { backend.logTerminations == 1 })
            withExtendedLifetime(client) {}
        }
    }

    @Test func slowClientBackpressuresTheStream() async throws {
        try await withServer { server, backend in
            let client = try await blocking { () -> TestClient in
                let client = try TestClient(port: server.port)
                try client.sendRequest("GET", "/containerLogs/default/web/app?follow=1")
                _ = try client.readHead()
                return client
            }
            #expect(await eventually { backend.openLogStreams == 1 })
            // Far more than the socket buffers hold: the producer must wait, not buffer it all.
            let line = String(repeating: "x", count: 1023) + "\n"
            for _ in 0..<4096 { backend.sendLog(line) }
            // The client reads nothing for a while: the server's writes stall, its queue fills.
            try await Task.sleep(for: .milliseconds(300))
            let received = try await blocking { () -> Int in
                var received = 0
                while received < 4096 * 1024 {
                    guard let chunk = try client.readChunk() else { break }
                    received += chunk.count
                }
                return received
            }
            #expect(received == 4096 * 1024)
            client.close()
            #expect(await eventually { backend.logTerminations == 1 })
            withExtendedLifetime(client) {}
        }
    }
}

extension ServerTests {
    @Test func clientLeavingWhileTheProducerWaitsEndsTheStream() async throws {
        try await withServer { server, backend in
            let client = try await blocking { () -> TestClient in
                let client = try TestClient(port: server.port)
                try client.sendRequest("GET", "/containerLogs/default/web/app?follow=true")
                _ = try client.readHead()
                return client
            }
            #expect(await eventually { backend.openLogStreams == 1 })
            let line = String(repeating: "y", count: 4095) + "\n"
            for _ in 0..<4096 { backend.sendLog(line) }
            _ = try await blocking { try client.readChunk() }
            // Socket buffers and the server's queue fill up; the backend's task waits to send.
            try await Task.sleep(for: .milliseconds(300))
            #expect(backend.logTerminations == 0)
            client.close()
            #expect(await eventually { backend.logTerminations == 1 })
            withExtendedLifetime(client) {}
        }
    }
}
