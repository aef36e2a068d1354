import GRPCServer
import Synchronization
import Testing

@testable import GRPCHealthCheck

/// Checks against real gRPC servers on loopback: the repo's own GRPCServer (the C core, in
/// this process) serving the health protocol, a port nothing listens on, and a listener that
/// never speaks HTTP/2.
@Suite("gRPC health check client")
struct GRPCHealthCheckTests {
    static let statuses: [String: Int32] = ["": 1, "db": 2, "odd": 3, "unset": 0]

    @Test("the server's status for each service, with the service name as sent", arguments: [
        ("", GRPCHealthCheck.ServingStatus.serving),
        ("db", .notServing),
        ("odd", .serviceUnknown),
        ("unset", .unknown),
    ])
    func statuses(service: String, expected: GRPCHealthCheck.ServingStatus) async throws {
        let asked = Asked()
        try await withServer(healthHandler(Self.statuses, asked: asked)) { port in
            let status = try await GRPCHealthCheck.check(host: "127.0.0.1", port: port, service: service, timeout: .seconds(5))
            #expect(status == expected)
        }
        #expect(asked.names.withLock { $0 } == [service])
    }

    @Test("a long service name (two-byte length) reaches the server intact")
    func longServiceName() async throws {
        let name = "grpc.health.v1." + String(repeating: "Service", count: 40)
        let asked = Asked()
        try await withServer(healthHandler([name: 1], asked: asked)) { port in
            let status = try await GRPCHealthCheck.check(host: "127.0.0.1", port: port, service: name, timeout: .seconds(5))
            #expect(status == .serving)
        }
        #expect(asked.names.withLock { $0 } == [name])
    }

    @Test("a DNS name resolves (localhost)")
    func dnsName() async throws {
        try await withServer(healthHandler(Self.statuses)) { port in
            let status = try await GRPCHealthCheck.check(host: "localhost", port: port, service: "", timeout: .seconds(5))
            #expect(status == .serving)
        }
    }

    @Test("probe: success only on SERVING, with the kubelet's output")
    func probeVerdicts() async throws {
        try await withServer(healthHandler(Self.statuses)) { port in
            let healthy = await GRPCHealthCheck.probe(host: "127.0.0.1", port: port, service: "", timeout: .seconds(5))
            #expect(healthy == .init(success: true, output: "service healthy"))
            let down = await GRPCHealthCheck.probe(host: "127.0.0.1", port: port, service: "db", timeout: .seconds(5))
            #expect(down == .init(success: false, output: "service unhealthy (responded with \"NOT_SERVING\")"))
            let unknown = await GRPCHealthCheck.probe(host: "127.0.0.1", port: port, service: "nope", timeout: .seconds(5))
            #expect(unknown == .init(success: false, output: "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"))
        }
    }

    @Test("an unknown service: the standard servers' NOT_FOUND, reported as the kubelet does")
    func unknownService() async throws {
        try await withServer(healthHandler(Self.statuses)) { port in
            let (result, _) = await timed { () async throws(GRPCHealthCheckError) in
                try await GRPCHealthCheck.check(host: "127.0.0.1", port: port, service: "nope", timeout: .seconds(5))
            }
            let error = try #require(result.failure)
            #expect(error.kind == .rpc)
            #expect(error.code == .notFound)
            #expect(error.message == "unknown service")
        }
    }

    @Test("a server without the health service: UNIMPLEMENTED")
    func unimplemented() async throws {
        try await withServer({ call in call.finish(RPCStatus(.unimplemented, "unknown service grpc.health.v1.Health")) }) { port in
            let (result, _) = await timed { () async throws(GRPCHealthCheckError) in
                try await GRPCHealthCheck.check(host: "127.0.0.1", port: port, service: "", timeout: .seconds(5))
            }
            let error = try #require(result.failure)
            #expect(error.kind == .rpc)
            #expect(error.code == .unimplemented)
            #expect(error.description
                == "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health")
        }
    }

    @Test("nothing listening: a connection error at once, not at the deadline")
    func connectionRefused() async throws {
        let refusing = try ReservedPort()
        let port = refusing.port
        let (result, elapsed) = await timed { () async throws(GRPCHealthCheckError) in
            try await GRPCHealthCheck.check(host: "127.0.0.1", port: port, service: "", timeout: .seconds(10))
        }
        withExtendedLifetime(refusing) {}
        let error = try #require(result.failure)
        #expect(error.kind == .connectFailed)
        #expect(error.code == .unavailable)
        #expect(error.message.contains("Connection refused"), "\(error.message)")
        #expect(error.description.hasPrefix("error: failed to connect service at \"127.0.0.1:\(port)\": "))
        _ = elapsed  // the kind says it failed before the deadline (a deadline is .connectTimeout)
    }

    @Test("a name that does not resolve: a connection error before the deadline")
    func unresolvable() async throws {
        let (result, elapsed) = await timed { () async throws(GRPCHealthCheckError) in
            try await GRPCHealthCheck.check(host: "no-such-host.invalid", port: 80, service: "", timeout: .seconds(10))
        }
        let error = try #require(result.failure)
        #expect(error.kind == .connectFailed)
        #expect(error.code == .unavailable)
        _ = elapsed
    }

    @Test("a listener that never speaks HTTP/2: a connect timeout at the deadline")
    func connectTimeout() async throws {
        try await withMuteListener { port in
            let (result, elapsed) = await timed { () async throws(GRPCHealthCheckError) in
                try await GRPCHealthCheck.check(host: "127.0.0.1", port: port, service: "", timeout: .milliseconds(500))
            }
            let error = try #require(result.failure)
            #expect(error.kind == .connectTimeout)
            #expect(error.code == .deadlineExceeded)
            #expect(error.description
                == "timeout: failed to connect service \"127.0.0.1:\(port)\" within 500ms: context deadline exceeded")
            #expect(elapsed >= .milliseconds(450))  // not before the deadline
        }
    }

    @Test("a server that never answers the call: DEADLINE_EXCEEDED at the deadline")
    func rpcTimeout() async throws {
        try await withServer(silentHandler) { port in
            let (result, elapsed) = await timed { () async throws(GRPCHealthCheckError) in
                // Long enough for the connection to be made on a busy machine: the call's deadline is what ends it.
                try await GRPCHealthCheck.check(host: "127.0.0.1", port: port, service: "", timeout: .seconds(5))
            }
            let error = try #require(result.failure)
            #expect(error.kind == .rpc)
            #expect(error.code == .deadlineExceeded)
            #expect(error.description == "timeout: health rpc did not complete within 5s")
            #expect(elapsed >= .milliseconds(4950))  // not before the deadline
        }
    }

    @Test("cancelling the task cancels a call in flight")
    func cancelDuringCall() async throws {
        try await withServer(silentHandler) { port in
            try await expectCancelled(port: port)
        }
    }

    @Test("cancelling the task cancels a connection attempt")
    func cancelWhileConnecting() async throws {
        try await withMuteListener { port in
            try await expectCancelled(port: port)
        }
    }

    @Test("a task cancelled before the check starts fails at once")
    func cancelledBeforehand() async throws {
        let task = Task { () async throws(GRPCHealthCheckError) -> GRPCHealthCheck.ServingStatus in
            withUnsafeCurrentTask { $0?.cancel() }
            return try await GRPCHealthCheck.check(host: "127.0.0.1", port: 9, service: "", timeout: .seconds(30))
        }
        let error = try #require(await task.result.failure as? GRPCHealthCheckError)
        #expect(error.kind == .cancelled)
        #expect(error.code == .cancelled)
    }

    private func expectCancelled(port: Int) async throws {
        let clock = ContinuousClock()
        let task = Task { () async throws(GRPCHealthCheckError) -> GRPCHealthCheck.ServingStatus in
            try await GRPCHealthCheck.check(host: "127.0.0.1", port: port, service: "", timeout: .seconds(30))
        }
        try await Task.sleep(for: .milliseconds(300))
        let start = clock.now
        task.cancel()
        let error = try #require(await task.result.failure as? GRPCHealthCheckError)
        _ = start  // .cancelled (not a 30 s deadline) says the cancellation ended it
        #expect(error.kind == .cancelled)
        #expect(error.code == .cancelled)
        #expect(error.description == "error: health rpc probe failed: rpc error: code = Canceled desc = context canceled")
    }

    @Test("an OK status without a response, or with a response that is not protobuf: INTERNAL")
    func malformedResponses() async throws {
        try await withServer({ call in call.finish(.ok) }) { port in
            let error = try #require(await timed { () async throws(GRPCHealthCheckError) in
                try await GRPCHealthCheck.check(host: "127.0.0.1", port: port, service: "", timeout: .seconds(5))
            }.result.failure)
            #expect(error.kind == .rpc && error.code == .internal)
        }
        try await withServer({ call in call.finish(.ok, message: [0x08]) }) { port in  // a truncated varint
            let error = try #require(await timed { () async throws(GRPCHealthCheckError) in
                try await GRPCHealthCheck.check(host: "127.0.0.1", port: port, service: "", timeout: .seconds(5))
            }.result.failure)
            #expect(error.kind == .rpc && error.code == .internal)
            #expect(error.message.hasPrefix("grpc: failed to unmarshal the received message"))
        }
    }

    @Test("many checks at once, each on its own connection")
    func concurrentChecks() async throws {
        let asked = Asked()
        try await withServer(healthHandler(Self.statuses, asked: asked)) { port in
            try await withThrowingTaskGroup(of: GRPCHealthCheck.ServingStatus.self) { group in
                for index in 0..<24 {
                    group.addTask {
                        try await GRPCHealthCheck.check(
                            host: "127.0.0.1", port: port, service: index.isMultiple(of: 2) ? "" : "db", timeout: .seconds(10))
                    }
                }
                var counts: [GRPCHealthCheck.ServingStatus: Int] = [:]
                for try await status in group { counts[status, default: 0] += 1 }
                #expect(counts == [.serving: 12, .notServing: 12])
            }
        }
        #expect(asked.names.withLock { $0.count } == 24)
    }

    @Test("the gRPC core outlives servers and checks coming and going in this process")
    func coreLifecycle() async throws {
        for _ in 0..<3 {
            // A server starts (grpc_init), is checked, and stops (grpc_shutdown): between
            // rounds nothing holds the core.
            try await withServer(healthHandler(Self.statuses)) { port in
                let status = try await GRPCHealthCheck.check(host: "127.0.0.1", port: port, service: "", timeout: .seconds(5))
                #expect(status == .serving)
            }
            // A check alone, with no server holding the core.
            let refusing = try ReservedPort()
            let port = refusing.port
            let error = try #require(await timed { () async throws(GRPCHealthCheckError) in
                try await GRPCHealthCheck.check(host: "127.0.0.1", port: port, service: "", timeout: .seconds(5))
            }.result.failure)
            withExtendedLifetime(refusing) {}
            #expect(error.kind == .connectFailed)
        }
    }

    @Test("an invalid port is an error, without dialling")
    func invalidPort() async {
        let error = await timed { () async throws(GRPCHealthCheckError) in
            try await GRPCHealthCheck.check(host: "127.0.0.1", port: 70000, service: "", timeout: .seconds(1))
        }.result.failure
        #expect(error?.code == .invalidArgument)
    }
}

@Suite("health messages and kubelet formatting")
struct HealthMessageTests {
    @Test("HealthCheckRequest: the empty service is the empty message; names are field 1")
    func requests() throws {
        #expect(HealthMessages.encodeRequest(service: "").isEmpty)
        #expect(HealthMessages.encodeRequest(service: "a.B") == [0x0A, 3, 0x61, 0x2E, 0x42])
        let long = String(repeating: "x", count: 300)
        #expect(Array(HealthMessages.encodeRequest(service: long).prefix(3)) == [0x0A, 0xAC, 0x02])
        #expect(try HealthMessages.decodeRequest(HealthMessages.encodeRequest(service: long)) == long)
        #expect(try HealthMessages.decodeRequest([UInt8]()) == "")
    }

    @Test("HealthCheckResponse: defaults, unknown fields skipped, the last value wins, negatives")
    func responses() throws {
        #expect(try HealthMessages.decodeResponse([UInt8]()) == 0)
        #expect(try HealthMessages.decodeResponse([0x08, 0x01]) == 1)
        // Unknown fields of every wire type around the status.
        let noisy: [UInt8] = [0x10, 0x96, 0x01, 0x1A, 0x02, 0x61, 0x62, 0x08, 0x02, 0x21, 0, 0, 0, 0, 0, 0, 0, 0, 0x2D, 0, 0, 0, 0]
        #expect(try HealthMessages.decodeResponse(noisy) == 2)
        #expect(try HealthMessages.decodeResponse([0x08, 0x01, 0x08, 0x03]) == 3)
        #expect(try HealthMessages.decodeResponse(HealthMessages.encodeResponse(status: -1)) == -1)
        #expect(HealthMessages.encodeResponse(status: -1).count == 11)
        #expect(GRPCHealthCheck.ServingStatus(wireValue: 7) == .unknown)
        for status in GRPCHealthCheck.ServingStatus.allCases {
            #expect(GRPCHealthCheck.ServingStatus(wireValue: try HealthMessages.decodeResponse(HealthMessages.encodeResponse(status: status.wireValue))) == status)
        }
    }

    @Test("malformed responses are refused", arguments: [
        [0x08] as [UInt8],  // truncated varint
        [0x0A, 0x05, 0x61],  // length past the end
        [0x0B],  // a group
        [0x00, 0x00],  // field 0
        [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],  // varint over 64 bits
    ])
    func malformed(bytes: [UInt8]) {
        #expect(throws: HealthMessages.Malformed.self) { try HealthMessages.decodeResponse(bytes) }
    }

    @Test("durations print as Go prints them", arguments: [
        (Duration.seconds(1), "1s"), (.milliseconds(1500), "1.5s"), (.milliseconds(500), "500ms"),
        (.seconds(120), "2m0s"), (.seconds(3661), "1h1m1s"), (.zero, "0s"), (.microseconds(1500), "1.5ms"),
        (.nanoseconds(7), "7ns"),
    ])
    func goDurations(duration: Duration, text: String) {
        #expect(goDuration(duration) == text)
    }

    @Test("addresses join as Go joins them; codes print grpc-go's names")
    func addressesAndCodes() {
        #expect(GRPCHealthCheck.joinHostPort("10.0.0.7", 9090) == "10.0.0.7:9090")
        #expect(GRPCHealthCheck.joinHostPort("fd00::7", 9090) == "[fd00::7]:9090")
        #expect(GRPCHealthCheckError.Code.deadlineExceeded.goName == "DeadlineExceeded")
        #expect(GRPCHealthCheckError.Code.cancelled.goName == "Canceled")
        #expect(GRPCHealthCheckError.Code(rawValue: 42).goName == "Code(42)")
        #expect(GRPCHealthCheckError.Code.notFound.description == "NOT_FOUND")
        let error = GRPCHealthCheckError(.rpc, code: .unavailable, message: "gone", address: "10.0.0.7:9090", timeout: .seconds(1))
        #expect(error.description == "error: health rpc probe failed: rpc error: code = Unavailable desc = gone")
    }
}
