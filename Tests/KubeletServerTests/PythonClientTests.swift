import Foundation
import Testing
@testable import KubeletServer

/// Drives the server over TLS with Tests/e2e/kubelet_api_client.py: Python's ssl and
/// http.client, an independent TLS and HTTP implementation.
extension ServerTests {
    static let e2eDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("e2e").path

    static let driver = #"""
import json, sys
sys.path.insert(0, sys.argv[1])
import kubelet_api_client as k
port, ca, cert, key = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
alice = k.KubeletAPIClient("127.0.0.1", port, cafile=ca, certfile=cert, keyfile=key)
out = {}
status, headers, body = alice.request("/pods")
out["pods"] = [status, headers.get("content-type"), body.decode()]
status, headers, body = k.KubeletAPIClient("127.0.0.1", port, cafile=ca).request("/pods")
out["anonymous"] = [status, body.decode()]
status, headers, body = k.KubeletAPIClient("127.0.0.1", port, cafile=ca, token="t0k3n").request("/healthz")
out["token"] = [status, body.decode()]
out["logs"] = alice.follow_logs("/containerLogs/default/web/app?follow=true", b"hello\n").decode()
status, headers, sock, rest = alice.upgrade("/exec/default/web/app?command=cat&input=1&output=1")
out["upgrade"] = [status, headers.get("x-stream-protocol-version")]
sock.sendall(b"x" * 100000 + b"end")
out["echo"] = len(k.recv_exactly(sock, 100003, rest))
sock.close()
print(json.dumps(out))
"""#

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")))
    func pythonClientOverTLS() async throws {
        let pki = TestPKI.shared
        let upstream = try TestUpstream(response: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
        let reviewer = TestTokenReviewer(["t0k3n": KubeletUser(name: "system:kube-apiserver")])
        let configuration = KubeletAPIServer.Configuration(
            address: "127.0.0.1", port: 0, nodeName: "node-1", tls: pki.tlsFiles, tokenReviewer: reviewer)
        try await withServer(configuration) { server, backend in
            backend.state.withLock { $0.streamingURL = upstream.url }
            let arguments = ["-c", Self.driver, Self.e2eDirectory, "\(server.port)", pki.caFile, pki.clientCert, pki.clientKey]
            async let python = blocking { try runProcess("/usr/bin/python3", arguments) }
            #expect(await eventually(timeout: .seconds(30)) { backend.openLogStreams == 1 })
            backend.sendLog("hello\n")
            let result = try await python
            #expect(result.status == 0, "\(result.stderr)")
            let output = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout) \(result.stderr)")
            #expect(output["pods"] as? [AnyHashable] == [200, "application/json", #"{"kind":"PodList","apiVersion":"v1","items":[]}"#])
            #expect(output["anonymous"] as? [AnyHashable] == [401, "Unauthorized"])
            #expect(output["token"] as? [AnyHashable] == [200, "ok"])
            #expect(output["logs"] as? String == "hello\n")
            #expect(output["upgrade"] as? [AnyHashable] == [101, "v4.channel.k8s.io"])
            #expect(output["echo"] as? Int == 100003)
            #expect(await eventually { backend.logTerminations == 1 })
            #expect(upstream.wait())
        }
    }
}
