import Foundation
import Logging
@testable import StreamingServer

/// Runs `body` against a started server whose `run()` is a child task; shuts it down after.
func withServer(
    tokenTTL: Duration = .seconds(60), streamCreationTimeout: Duration = .seconds(30),
    _ body: @Sendable (StreamingServer, TestRuntime) async throws -> Void
) async throws {
    let runtime = TestRuntime()
    let server = StreamingServer(
        runtime: runtime, address: "127.0.0.1", port: 0, tokenTTL: tokenTTL,
        streamCreationTimeout: streamCreationTimeout, lingerTimeout: .seconds(5),
        logger: testLogger())
    try server.start()
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        do {
            try await body(server, runtime)
        } catch {
            server.shutdown()
            throw error
        }
        server.shutdown()
        try await group.waitForAll()
    }
}

/// Runs blocking client code on a thread of its own (never on the cooperative pool, which
/// the server's tasks need).
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            continuation.resume(with: Result { try body() })
        }.start()
    }
}

/// The headers of a remote-command stream.
func streamType(_ type: String) -> [(String, String)] { [("streamtype", type)] }

/// A resize message as client-go sends it.
func resizeMessage(_ width: Int, _ height: Int) -> [UInt8] {
    Array(#"{"Width":\#(width),"Height":\#(height)}"#.utf8)
}

/// Runs a SPDY exec the way client-go's v4 protocol does: error, stdin, stdout, stderr
/// (and resize) streams; stdin sent and closed; everything read until the server closes.
func spdyExec(
    url: String, protocolVersion: String = "v4.channel.k8s.io", stdin: [UInt8]? = nil, stdout: Bool = true,
    stderr: Bool = true, tty: Bool = false, resizes: [[UInt8]] = []
) throws -> (stdout: String, stderr: String, status: String, transcript: SPDYTranscript) {
    let client = try SPDYTestClient(url: url, protocols: [protocolVersion], expectProtocol: protocolVersion)
    let errorID = try client.openStream(streamType("error"))
    let stdinID = stdin != nil ? try client.openStream(streamType("stdin")) : nil
    let stdoutID = stdout ? try client.openStream(streamType("stdout")) : nil
    let stderrID = stderr ? try client.openStream(streamType("stderr")) : nil
    let resizeID = tty && protocolVersion != "v2.channel.k8s.io" ? try client.openStream(streamType("resize")) : nil
    if let resizeID {
        for message in resizes { try client.send(message, on: resizeID) }
    }
    if let stdinID, let stdin {
        if !stdin.isEmpty { try client.send(stdin, on: stdinID) }
        try client.send([], on: stdinID, fin: true)
    }
    let transcript = try client.readToEnd()
    return (
        stdoutID.map { transcript.text($0) } ?? "", stderrID.map { transcript.text($0) } ?? "",
        transcript.text(errorID), transcript
    )
}

/// Silent, unless STREAMING_TEST_LOG is set (then debug lines on stderr).
func testLogger() -> Logger {
    guard ProcessInfo.processInfo.environment["STREAMING_TEST_LOG"] != nil else {
        return Logger(label: "streaming-test") { _ in SwiftLogNoOpLogHandler() }
    }
    var logger = Logger(label: "streaming-test") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = .debug
    return logger
}
