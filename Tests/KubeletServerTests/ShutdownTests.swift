import Foundation
import Testing
@testable import KubeletServer

/// Sockets bound to `port` that some process still holds open (an open socket has an inode;
/// a closed one lingering in TIME_WAIT or FIN_WAIT has 0), and this process's socket inodes.
private func openSocketInodes(port: Int) -> Set<String> {
    var inodes = Set<String>()
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 9, let colon = fields[1].lastIndex(of: ":"),
                  Int(fields[1][fields[1].index(after: colon)...], radix: 16) == port, fields[9] != "0"
            else { continue }
            inodes.insert(String(fields[9]))
        }
    }
    return inodes
}

private func processSocketInodes() -> Set<String> {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return Set(entries.compactMap { entry -> String? in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)"),
              target.hasPrefix("socket:[")
        else { return nil }
        return String(target.dropFirst("socket:[".count).dropLast())
    })
}

private func threadNames() -> [String] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
        .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
}

extension ServerTests {
    @Test func shutdownLeavesNoThreadOrDescriptor() async throws {
        let descriptorsBefore = ResourceCounters.descriptors.load(ordering: .relaxed)
        let sessionsBefore = ResourceCounters.tlsSessions.load(ordering: .relaxed)
        let upstream = try TestUpstream(response: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\nConnection: Upgrade\r\n\r\n")
        let backend = TestBackend()
        backend.state.withLock { $0.streamingURL = upstream.url }
        let plain = KubeletAPIServer(
            configuration: .init(address: "127.0.0.1", port: 0, nodeName: "n", tls: nil, anonymousAuthEnabled: true), backend: backend, threadTag: "kleak",
            logger: testLogger())
        let tls = KubeletAPIServer(
            configuration: .init(address: "127.0.0.1", port: 0, nodeName: "n", tls: TestPKI.shared.tlsFiles), backend: backend,
            threadTag: "kleaktls", logger: testLogger())
        try plain.start()
        try tls.start()
        let ports = [plain.port, tls.port]

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await plain.run() }
            group.addTask { try await tls.run() }
            let clients = try await blocking { () -> [TestClient] in
                // Idle after a request; halfway through a request head; a follow stream; a
                // proxied stream; a TLS client that never says hello.
                let idle = try TestClient(port: plain.port)
                #expect(try idle.request("GET", "/pods").status == 200)
                let partial = try TestClient(port: plain.port)
                try partial.send("GET /pods HTTP/1.1\r\nHo")
                let follow = try TestClient(port: plain.port)
                try follow.sendRequest("GET", "/containerLogs/ns/pod/app?follow=true")
                #expect(try follow.readHead().status == 200)
                let proxied = try TestClient(port: plain.port)
                try proxied.sendRequest("POST", "/exec/ns/pod/app?output=1", headers: [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")])
                #expect(try proxied.readHead().status == 101)
                try proxied.send("echo")
                #expect(try proxied.read(count: 4) == Array("echo".utf8))
                let silent = try TestClient(port: tls.port)
                return [idle, partial, follow, proxied, silent]
            }
            #expect(await eventually { threadNames().filter { $0.hasPrefix("kleak") }.count >= 7 })

            plain.shutdown()
            tls.shutdown()
            try await group.waitForAll()

            // Every connection was closed by the server.
            try await blocking {
                for client in clients { _ = try client.readToEnd() }
            }
        }
        #expect(upstream.wait())
        #expect(backend.logTerminations == 1)
        #expect(ResourceCounters.descriptors.load(ordering: .relaxed) == descriptorsBefore)
        #expect(ResourceCounters.tlsSessions.load(ordering: .relaxed) == sessionsBefore)
        // A detached thread may still be unwinding after its body returned.
        #expect(await eventually { threadNames().allSatisfy { !$0.hasPrefix("kleak") } }, "\(threadNames())")
        for port in ports {
            #expect(openSocketInodes(port: port).isDisjoint(with: processSocketInodes()), "port \(port)")
        }
        // Shutting down again, or running after, is harmless.
        plain.shutdown()
        await #expect(throws: KubeletServerError.self) { try await plain.run() }
    }

    @Test func cancellingRunShutsDown() async throws {
        let server = KubeletAPIServer(
            configuration: .init(address: "127.0.0.1", port: 0, nodeName: "n", tls: nil, anonymousAuthEnabled: true), backend: TestBackend(), threadTag: "kcancel",
            logger: testLogger())
        try server.start()
        let task = Task { try await server.run() }
        try await blocking {
            let client = try TestClient(port: server.port)
            #expect(try client.request("GET", "/pods").status == 200)
        }
        task.cancel()
        try await task.value
        #expect(await eventually { threadNames().allSatisfy { !$0.hasPrefix("kcancel") } })
    }

    @Test func bindFailures() throws {
        let first = KubeletAPIServer(
            configuration: .init(address: "127.0.0.1", port: 0, nodeName: "n", tls: nil), backend: TestBackend(), logger: testLogger())
        try first.start()
        defer { first.shutdown() }
        let second = KubeletAPIServer(
            configuration: .init(address: "127.0.0.1", port: first.port, nodeName: "n", tls: nil), backend: TestBackend(), logger: testLogger())
        #expect(throws: KubeletServerError.self) { try second.start() }
        let bad = KubeletAPIServer(
            configuration: .init(address: "not-an-ip", port: 0, nodeName: "n", tls: nil), backend: TestBackend(), logger: testLogger())
        #expect(throws: KubeletServerError(.bind, context: "not-an-ip:0", errno: EINVAL)) { try bad.start() }
    }
}
