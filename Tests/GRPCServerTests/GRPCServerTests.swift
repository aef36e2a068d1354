import GRPCServer
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

    @Test("status codes print their canonical names")
    func codeNames() {
        #expect(RPCStatus.Code.unimplemented.description == "UNIMPLEMENTED")
        #expect(RPCStatus(.internal, "boom").description == "INTERNAL: boom")
        #expect(RPCStatus.Code(rawValue: 99).description == "CODE(99)")
    }
}
