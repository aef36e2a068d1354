import GRPCServer
import Synchronization
import Testing

@testable import GRPCHealthCheck

#if canImport(Glibc)
import Glibc
#endif

/// Calls to methods registered with the core (their request arrives with the call) and to
/// other paths (the generic path), through the repo's own unary client.
@Suite("gRPC server: registered methods and the close of a call")
struct RegisteredMethodTests {
    /// A server on a fresh unix socket for the length of `body`; it must shut down cleanly.
    private func withServer(
        methods: [String], _ handler: @escaping GRPCServer.Handler, _ body: (String) async throws -> Void
    ) async throws {
        let path = "/tmp/swiftlet-grpc-test-registered-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        defer { unlink(path) }
        let server = try GRPCServer(address: "unix:\(path)", shutdownGrace: .milliseconds(200), methods: methods, handler: handler)
        let running = Task { try await server.run() }
        do {
            try await body("unix:\(path)")
        } catch {
            server.shutdown()
            try? await running.value
            throw error
        }
        server.shutdown()
        try await running.value
    }

    private func call(_ target: String, _ method: String, _ request: [UInt8], timeout: Duration = .seconds(20)) async throws -> UnaryCall.Outcome {
        try await UnaryCall(target: target, method: method, request: request, userAgent: nil).run(timeout: timeout).get()
    }

    /// Echoes "<method> <request>" back.
    private static let echo: GRPCServer.Handler = { call in
        let request = call.withRequest { Array($0) }
        #expect(call.hasRequest)
        call.finish(.ok, message: Array("\(call.method) ".utf8) + request)
    }

    @Test("registered and unregistered paths are served alike, each call with its own request")
    func registeredAndGeneric() async throws {
        try await withServer(methods: ["/test.Echo/A", "/test.Echo/B", "/test.Echo/A"], Self.echo) { target in
            for (method, request) in [("/test.Echo/A", "x"), ("/test.Echo/B", ""), ("/test.Other/C", "z"), ("/test.Echo/A", "again")] {
                let outcome = try await call(target, method, Array(request.utf8))
                #expect(outcome.kind == .completed)
                #expect(outcome.code == 0, "\(outcome.details)")
                #expect(outcome.response.map { String(decoding: $0, as: UTF8.self) } == "\(method) \(request)")
            }
        }
    }

    @Test("more concurrent calls of one registered method than requests preposted for it are all served")
    func concurrentRegistered() async throws {
        try await withServer(methods: ["/test.Echo/A"], Self.echo) { target in
            try await withThrowingTaskGroup(of: (Int, UnaryCall.Outcome).self) { group in
                for index in 0..<24 {
                    group.addTask { (index, try await call(target, index % 3 == 0 ? "/test.Other/C" : "/test.Echo/A", Array("\(index)".utf8))) }
                }
                for try await (index, outcome) in group {
                    let method = index % 3 == 0 ? "/test.Other/C" : "/test.Echo/A"
                    #expect(outcome.code == 0, "\(outcome.details)")
                    #expect(outcome.response.map { String(decoding: $0, as: UTF8.self) } == "\(method) \(index)")
                }
            }
        }
    }

    @Test("a handler that suspends learns of its client's deadline, on registered and generic paths", arguments: ["/test.Slow/Registered", "/test.Slow/Generic"])
    func suspendedHandlerSeesCancellation(method: String) async throws {
        let cancelled = Mutex(false)
        try await withServer(methods: ["/test.Slow/Registered"], { call in
            do {
                try await Task.sleep(for: .seconds(60))
                call.finish(.ok, message: [])
            } catch {
                cancelled.withLock { $0 = true }
                call.finish(RPCStatus(.cancelled, "gave up"))
            }
        }) { target in
            let outcome = try await call(target, method, [1], timeout: .milliseconds(300))
            #expect(outcome.code == 4, "\(outcome.details)")  // DEADLINE_EXCEEDED
            // The server learns of it through the call's close, which the bridge asked for
            // once the handler suspended; wait for that (bounded).
            for _ in 0..<200 where !cancelled.withLock({ $0 }) {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(cancelled.withLock { $0 })
        }
    }

    @Test("an empty request message on a registered path is a message")
    func emptyRequestMessage() async throws {
        try await withServer(methods: ["/test.Echo/A"], { call in
            call.finish(.ok, message: call.hasRequest ? [1] : [0])
        }) { target in
            let outcome = try await call(target, "/test.Echo/A", [])
            #expect(outcome.response == [1])
        }
    }
}
