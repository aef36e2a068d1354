import CSwiftletGRPCTestClient
import GRPCServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("gRPC server lifecycle")
struct GRPCServerTests {
    @Test("an address that cannot be bound is a typed error naming it")
    func bindFailure() {
        #expect(throws: GRPCServerError.self) {
            _ = try GRPCServer(address: "unix:/nonexistent-dir-\(getpid())/x.sock") { call in call.finish(.ok) }
        }
    }

    @Test("a server with no calls shuts down and run() returns")
    func shutdownIdle() async throws {
        let path = "/tmp/swiftlet-grpc-test-\(getpid()).sock"
        defer { unlink(path) }
        let server = try GRPCServer(address: "unix:\(path)", shutdownGrace: .milliseconds(100)) { call in
            call.finish(.ok)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            try await Task.sleep(for: .milliseconds(50))
            server.shutdown()
            server.shutdown()  // idempotent
            try await group.waitForAll()
        }
    }

    @Test("cancelling the task running run() shuts the server down")
    func cancelRun() async throws {
        let path = "/tmp/swiftlet-grpc-test-cancel-\(getpid()).sock"
        defer { unlink(path) }
        let server = try GRPCServer(address: "unix:\(path)", shutdownGrace: .milliseconds(100)) { call in
            call.finish(.ok)
        }
        let task = Task { try await server.run() }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        try await task.value
    }

    @Test("shutdown() before run() is applied once the server has started, and run() returns")
    func shutdownBeforeRun() async throws {
        let path = "/tmp/swiftlet-grpc-test-early-\(getpid()).sock"
        defer { unlink(path) }
        let server = try GRPCServer(address: "unix:\(path)", shutdownGrace: .milliseconds(100)) { call in
            call.finish(.ok)
        }
        server.shutdown()
        try await server.run()
    }

    @Test("a server that never runs releases its socket and the core")
    func neverRun() throws {
        let path = "/tmp/swiftlet-grpc-test-unused-\(getpid()).sock"
        defer { unlink(path) }
        for _ in 0..<3 {
            unlink(path)
            _ = try GRPCServer(address: "unix:\(path)") { call in call.finish(.ok) }
        }
    }

    @Test("shutdown with a send blocked on a stalled client: the send fails, the handler ends, run() returns")
    func shutdownWithBlockedSend() async throws {
        let path = "/tmp/swiftlet-grpc-test-stall-\(getpid()).sock"
        defer { unlink(path) }
        let outcome = Mutex<String?>(nil)
        let server = try GRPCServer(address: "unix:\(path)", shutdownGrace: .milliseconds(300)) { call in
            let chunk = [UInt8](repeating: 7, count: 4 << 20)
            do {
                while true { try await call.send(chunk) }
            } catch {
                outcome.withLock { $0 = "\(error)" }
            }
            call.finish(.ok)
        }
        let running = Task { try await server.run() }
        try await Task.sleep(for: .milliseconds(100))
        let client = swgt_stalled_stream_start("unix:\(path)", "/test.Stream/Stall")
        defer { swgt_stalled_stream_close(client) }
        try await Task.sleep(for: .milliseconds(300))
        server.shutdown()
        try await running.value
        #expect(outcome.withLock { $0 }?.contains("CANCELLED") == true)
    }

    @Test("status codes print their canonical names")
    func codeNames() {
        #expect(RPCStatus.Code.unimplemented.description == "UNIMPLEMENTED")
        #expect(RPCStatus(.internal, "boom").description == "INTERNAL: boom")
        #expect(RPCStatus.Code(rawValue: 99).description == "CODE(99)")
    }
}
