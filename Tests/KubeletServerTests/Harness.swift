import Foundation
import Logging
import Synchronization
import SwiftletTestSupport
@testable import KubeletServer

struct ClientError: Error, CustomStringConvertible {
    var description: String
    init(_ text: String) { description = text }
}

/// Silent, unless KUBELET_SERVER_TEST_LOG is set (then debug lines on stderr).
func testLogger() -> Logger {
    guard ProcessInfo.processInfo.environment["KUBELET_SERVER_TEST_LOG"] != nil else {
        return Logger(label: "kubelet-server-test") { _ in SwiftLogNoOpLogHandler() }
    }
    var logger = Logger(label: "kubelet-server-test") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = .debug
    return logger
}

/// Runs blocking client code on a thread of its own (never on the cooperative pool, which
/// the server's jobs need).
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Waits (polling) until `condition` holds; false after `timeout`.
func eventually(timeout: Duration = .seconds(10), _ condition: @Sendable () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// A server started and run as a child task for `body`, shut down after; run() must return.
func withServer(
    _ configuration: KubeletAPIServer.Configuration? = nil, backend: TestBackend = TestBackend(), threadTag: String = "kubeapi",
    _ body: @Sendable (KubeletAPIServer, TestBackend) async throws -> Void
) async throws {
    let configuration = configuration ?? KubeletAPIServer.Configuration(address: "127.0.0.1", port: 0, nodeName: "node-1", tls: nil, anonymousAuthEnabled: true)
    let server = KubeletAPIServer(configuration: configuration, backend: backend, threadTag: threadTag, logger: testLogger())
    try server.start()
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        do {
            try await body(server, backend)
        } catch {
            server.shutdown()
            throw error
        }
        server.shutdown()
        try await group.waitForAll()
    }
}

// MARK: Backend, reviewer, authorizer

/// A backend with canned answers that records what it was asked.
final class TestBackend: KubeletAPIBackend {
    struct State {
        var logRequests: [ContainerLogsRequest] = []
        var logSinks: [AsyncThrowingStream<[UInt8], any Error>.Continuation] = []
        var logTerminations = 0
        var streamRequests: [ContainerStreamRequest] = []
        var portForwards: [PortForwardRequest] = []
        var runs: [RunInContainerRequest] = []
        var statsOnlyCPU: [Bool] = []
        var streamingURL = "http://127.0.0.1:1/none"
        var syncLoopHealthy = true
    }

    let state = Mutex(State())

    func pods() async throws -> [UInt8] { Array(#"{"kind":"PodList","apiVersion":"v1","items":[]}"#.utf8) }
    func runningPods() async throws -> [UInt8] { Array(#"{"kind":"PodList","apiVersion":"v1","items":[{"metadata":{"name":"r"}}]}"#.utf8) }

    /// `missing` pods are not found; `lines` answers "line 1\nline 2\n" and ends; `fail`
    /// throws a plain error; anything else stays open for ``sendLog(_:)``.
    func containerLogs(_ request: ContainerLogsRequest) async throws -> AsyncThrowingStream<[UInt8], any Error> {
        state.withLock { $0.logRequests.append(request) }
        if request.pod == "missing" { throw KubeletAPIError.notFound("pod \"missing\" does not exist") }
        if request.container == "fail" { throw ClientError("previous terminated container \"fail\" not found") }
        let (stream, sink) = AsyncThrowingStream.makeStream(of: [UInt8].self)
        sink.onTermination = { [self] _ in self.state.withLock { $0.logTerminations += 1 } }
        if request.container == "lines" {
            sink.yield(Array("line 1\n".utf8))
            sink.yield(Array("line 2\n".utf8))
            sink.finish()
        } else {
            state.withLock { $0.logSinks.append(sink) }
        }
        return stream
    }

    /// Sends `text` on every open log stream.
    func sendLog(_ text: String) {
        for sink in state.withLock({ $0.logSinks }) { sink.yield(Array(text.utf8)) }
    }

    var logTerminations: Int { state.withLock { $0.logTerminations } }
    var openLogStreams: Int { state.withLock { $0.logSinks.count } }

    func statsSummary(onlyCPUAndMemory: Bool) async throws -> [UInt8] {
        state.withLock { $0.statsOnlyCPU.append(onlyCPUAndMemory) }
        return Array(#"{"node":{"nodeName":"node-1"}}"#.utf8)
    }

    func metrics(_ endpoint: KubeletMetricsEndpoint) async throws -> [UInt8] {
        Array("# TYPE up gauge\nup{endpoint=\"\(endpoint.rawValue)\"} 1\n".utf8)
    }

    func spec() async throws -> [UInt8] { Array(#"{"num_cores":2}"#.utf8) }

    func exec(_ request: ContainerStreamRequest) async throws -> String {
        try streamingURL(request)
    }

    func attach(_ request: ContainerStreamRequest) async throws -> String {
        try streamingURL(request)
    }

    private func streamingURL(_ request: ContainerStreamRequest) throws -> String {
        state.withLock { $0.streamRequests.append(request) }
        if request.pod == "missing" { throw KubeletAPIError.notFound("pod does not exist") }
        return state.withLock { $0.streamingURL }
    }

    func portForward(_ request: PortForwardRequest) async throws -> String {
        state.withLock { $0.portForwards.append(request) }
        if request.uid == "wrong" { throw KubeletAPIError.notFound("pod not found") }
        return state.withLock { $0.streamingURL }
    }

    func run(_ request: RunInContainerRequest) async throws -> [UInt8] {
        state.withLock { $0.runs.append(request) }
        return Array("ran \(request.command)".utf8)
    }

    var healthChecks: [KubeletHealthCheck] {
        [KubeletHealthCheck(name: "syncloop") { [self] in
            if !self.state.withLock({ $0.syncLoopHealthy }) { throw ClientError("sync loop stalled") }
        }]
    }
}

/// Tokens it knows, and every token it was asked about.
final class TestTokenReviewer: TokenReviewer {
    let users: [String: KubeletUser]
    let asked = Mutex<[String]>([])

    init(_ users: [String: KubeletUser]) { self.users = users }

    func review(token: String) async throws -> KubeletUser? {
        asked.withLock { $0.append(token) }
        if token == "explode" { throw ClientError("token review unavailable") }
        return users[token]
    }
}

/// Allows what `decide` allows; records every question.
final class TestAuthorizer: Authorizer {
    let asked = Mutex<[KubeletRequestAttributes]>([])
    let decide: @Sendable (KubeletRequestAttributes) throws -> AuthorizationDecision

    init(_ decide: @escaping @Sendable (KubeletRequestAttributes) throws -> AuthorizationDecision = { _ in .allow }) {
        self.decide = decide
    }

    func authorize(_ attributes: KubeletRequestAttributes) async throws -> AuthorizationDecision {
        asked.withLock { $0.append(attributes) }
        return try decide(attributes)
    }

    var last: KubeletRequestAttributes? { asked.withLock { $0.last } }
}

// MARK: Processes

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program to completion.
func runProcess(_ path: String, _ arguments: [String]) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    // Small outputs (certificates, one response): the pipes cannot fill up.
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    let errors = stderr.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus, stdout: String(decoding: output, as: UTF8.self),
        stderr: String(decoding: errors, as: UTF8.self))
}

// MARK: Certificates

/// A CA, a server certificate for 127.0.0.1, client certificates (one from another CA),
/// made with the openssl CLI once per test run.
final class TestPKI: @unchecked Sendable {
    let directory: String
    private let tree: TemporaryTree

    static let shared: TestPKI = {
        do { return try TestPKI() } catch { fatalError("test PKI: \(error)") }
    }()

    var caFile: String { directory + "/ca.pem" }
    var serverCert: String { directory + "/server.pem" }
    var serverKey: String { directory + "/server-key.pem" }
    /// CN=alice, O=system:masters, O=devs.
    var clientCert: String { directory + "/alice.pem" }
    var clientKey: String { directory + "/alice-key.pem" }
    /// CN=mallory from an unknown CA.
    var strangerCert: String { directory + "/mallory.pem" }
    var strangerKey: String { directory + "/mallory-key.pem" }

    private init() throws {
        tree = try TemporaryTree(prefix: "kubelet-pki")
        directory = tree.path
        try tree.write("client.ext", "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n")
        try tree.write(
            "server.ext",
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
        try makeCA("ca", subject: "/CN=kubelet-test-ca")
        try makeCA("other-ca", subject: "/CN=someone-else")
        try makeLeaf("server", ca: "ca", subject: "/CN=node-1", extensions: "server.ext")
        try makeLeaf("alice", ca: "ca", subject: "/O=system:masters/O=devs/CN=alice", extensions: "client.ext")
        try makeLeaf("mallory", ca: "other-ca", subject: "/CN=mallory", extensions: "client.ext")
    }

    private func openssl(_ arguments: [String]) throws {
        let result = try runProcess("/usr/bin/openssl", arguments)
        guard result.status == 0 else { throw ClientError("openssl \(arguments.first ?? ""): \(result.stderr)") }
    }

    private func makeCA(_ name: String, subject: String) throws {
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", subject, "-keyout", "\(directory)/\(name)-key.pem", "-out", "\(directory)/\(name).pem",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
    }

    private func makeLeaf(_ name: String, ca: String, subject: String, extensions: String) throws {
        try openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", subject,
            "-keyout", "\(directory)/\(name)-key.pem", "-out", "\(directory)/\(name).csr",
        ])
        try openssl([
            "x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", "\(directory)/\(ca).pem", "-CAkey",
            "\(directory)/\(ca)-key.pem", "-CAcreateserial", "-days", "2", "-extfile", "\(directory)/\(extensions)",
            "-out", "\(directory)/\(name).pem",
        ])
    }

    /// TLS with client-certificate authentication.
    var tlsFiles: KubeletAPIServer.TLSFiles {
        KubeletAPIServer.TLSFiles(certificateFile: serverCert, keyFile: serverKey, clientCAFile: caFile)
    }
}

/// curl against the server: status and body (`-w` appends the status on a line of its own).
func curl(_ url: String, pki: TestPKI, clientCert: Bool = false, stranger: Bool = false, headers: [String] = [], extra: [String] = [])
    throws -> (status: Int, body: String)
{
    var arguments = ["-sS", "--max-time", "20", "--cacert", pki.caFile, "-w", "\n%{http_code}"]
    if clientCert { arguments += ["--cert", pki.clientCert, "--key", pki.clientKey] }
    if stranger { arguments += ["--cert", pki.strangerCert, "--key", pki.strangerKey] }
    for header in headers { arguments += ["-H", header] }
    let result = try runProcess("/usr/bin/curl", arguments + extra + [url])
    guard result.status == 0 else { throw ClientError("curl failed (\(result.status)): \(result.stderr)") }
    guard let newline = result.stdout.lastIndex(of: "\n"), let status = Int(result.stdout[result.stdout.index(after: newline)...]) else {
        throw ClientError("curl output: \(result.stdout)")
    }
    return (status, String(result.stdout[..<newline]))
}
