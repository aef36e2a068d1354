import Foundation
import Testing
@testable import StreamingServer

/// Drives the server with Tests/e2e/streaming_client.py (the end-to-end suite's client), an
/// independent implementation: Python's zlib with the SPDY dictionary, its own framing.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")))
struct PythonClientTests {
    static let e2eDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("e2e").path

    static let driver = #"""
import json, sys
sys.path.insert(0, sys.argv[1])
import streaming_client as sc
urls = json.loads(sys.argv[2])
out = {}
o, e, s = sc.exec_spdy(urls["ok"])
out["ok"] = [o.decode(), e.decode(), json.dumps(s, separators=(",", ":"))]
o, e, s = sc.exec_spdy(urls["fail"])
out["fail"] = [o.decode(), e.decode(), sc.exit_code(s)]
o, e, s = sc.exec_spdy(urls["stdin"], stdin_bytes=b"from python\n")
out["stdin"] = [o.decode(), sc.exit_code(s)]
o, e, s = sc.exec_spdy(urls["tty"], stdin_bytes=b"", stderr=False, tty=True, resizes=[(90, 30)])
out["tty"] = [o.decode(), sc.exit_code(s)]
o, e, s = sc.exec_spdy(urls["v2"], protocol="v2.channel.k8s.io")
out["v2"] = [o.decode(), s]
o, e, s = sc.exec_websocket(urls["ws"], stdin_bytes=b"ws stdin")
out["ws"] = [o.decode(), e.decode(), sc.exit_code(s)]
o, e, s = sc.exec_websocket(urls["ws64"], protocol="v4.base64.channel.k8s.io")
out["ws64"] = [o.decode(), sc.exit_code(s)]
out["pf"] = sc.port_forward_spdy(urls["pf"], int(urls["port"]), b"x" * 70000 + b"end").decode()
try:
    sc.port_forward_spdy(urls["pfbad"], int(urls["closed"]), b"nobody")
    out["pfbad"] = "no error"
except sc.StreamingClientError as error:
    out["pfbad"] = str(error)
out["pfws"] = sc.port_forward_websocket(urls["pfws"], int(urls["port"]), b"ws forward", 10).decode()
status, headers, body, sock, rest = sc.http_request(urls["ok"])
out["used"] = status
print(json.dumps(out))
"""#

    @Test func pythonClientAgainstTheServer() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        try await withServer { server, _ in
            func exec(_ command: [String], stdin: Bool = false, tty: Bool = false) -> String {
                server.execURL(containerID: "c1", command: command, tty: tty, stdin: stdin, stdout: true, stderr: !tty)
            }
            let closed = ClosedPort()
            defer { withExtendedLifetime(closed) {} }
            let urls: [String: String] = [
                "ok": exec(["/bin/sh", "-c", "printf out; printf err >&2"]),
                "fail": exec(["/bin/sh", "-c", "printf partial; exit 42"]),
                "stdin": exec(["/bin/cat"], stdin: true),
                "tty": exec(["resize-echo", "1"], stdin: true, tty: true),
                "v2": exec(["/bin/sh", "-c", "echo two; exit 1"]),
                "ws": exec(["/bin/sh", "-c", "cat; echo done >&2; exit 5"], stdin: true),
                "ws64": exec(["/bin/sh", "-c", "echo base64"]),
                "pf": server.portForwardURL(podSandboxID: "pod1", port: nil),
                "pfbad": server.portForwardURL(podSandboxID: "pod1", port: nil),
                "pfws": server.portForwardURL(podSandboxID: "pod1", port: nil),
                "port": "\(echo.port)",
                "closed": "\(closed.port)",
            ]
            let arguments = [Self.e2eDirectory, String(decoding: try JSONEncoder().encode(urls), as: UTF8.self)]
            let output = try await blocking { try Self.runPython(arguments) }
            let result = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)")
            #expect(result["ok"] as? [String] == ["out", "err", #"{"metadata":{},"status":"Success"}"#])
            #expect(result["fail"] as? [AnyHashable] == ["partial", "", 42])
            #expect(result["stdin"] as? [AnyHashable] == ["from python\n", 0])
            #expect(result["tty"] as? [AnyHashable] == ["90x30\n", 0])
            #expect(result["v2"] as? [AnyHashable] == ["two\n", "command terminated with non-zero exit code: error executing command [/bin/sh -c echo two; exit 1], exit code 1"])
            #expect(result["ws"] as? [AnyHashable] == ["ws stdin", "done\n", 5])
            #expect(result["ws64"] as? [AnyHashable] == ["base64\n", 0])
            #expect(result["pf"] as? String == String(repeating: "x", count: 70000) + "end")
            #expect((result["pfbad"] as? String)?.hasPrefix("error forwarding port") == true)
            #expect(result["pfws"] as? String == "ws forward")
            #expect(result["used"] as? Int == 404)
        }
    }

    static func runPython(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", driver] + arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ClientError("python3 failed (\(process.terminationStatus)): \(String(decoding: errors, as: UTF8.self))")
        }
        return String(decoding: output, as: UTF8.self)
    }
}
