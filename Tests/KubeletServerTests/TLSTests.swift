import Foundation
import Testing
@testable import KubeletServer

extension ServerTests {
    private func tlsConfiguration(
        anonymous: Bool = false, reviewer: (any TokenReviewer)? = nil, authorizer: any Authorizer = AlwaysAllowAuthorizer(),
        limits: KubeletAPIServer.Limits = KubeletAPIServer.Limits()
    ) -> KubeletAPIServer.Configuration {
        KubeletAPIServer.Configuration(
            address: "127.0.0.1", port: 0, nodeName: "node-1", tls: TestPKI.shared.tlsFiles, anonymousAuthEnabled: anonymous,
            tokenReviewer: reviewer, authorizer: authorizer, limits: limits)
    }

    @Test func clientCertificateIdentityReachesTheAuthorizer() async throws {
        let pki = TestPKI.shared
        let authorizer = TestAuthorizer()
        try await withServer(tlsConfiguration(authorizer: authorizer)) { server, _ in
            let url = "https://127.0.0.1:\(server.port)/pods"
            let response = try await blocking { try curl(url, pki: pki, clientCert: true) }
            #expect(response.status == 200)
            #expect(response.body == #"{"kind":"PodList","apiVersion":"v1","items":[]}"#)
            let user = try #require(authorizer.last?.user)
            #expect(user.name == "alice")
            #expect(user.groups == ["system:masters", "devs", "system:authenticated"])
            #expect(authorizer.last?.verb == "get" && authorizer.last?.subresource == "proxy")
        }
    }

    @Test func handshakeWithoutClientCertificate() async throws {
        let pki = TestPKI.shared
        try await withServer(tlsConfiguration()) { server, _ in
            let response = try await blocking { try curl("https://127.0.0.1:\(server.port)/pods", pki: pki) }
            #expect(response.status == 401)
            #expect(response.body == "Unauthorized")
        }
        try await withServer(tlsConfiguration(anonymous: true)) { server, _ in
            let response = try await blocking { try curl("https://127.0.0.1:\(server.port)/healthz", pki: pki) }
            #expect(response.status == 200 && response.body == "ok")
        }
    }

    @Test func untrustedClientCertificateIsRefused() async throws {
        let pki = TestPKI.shared
        // Even with anonymous enabled: a certificate that fails verification is an error.
        try await withServer(tlsConfiguration(anonymous: true)) { server, _ in
            let response = try await blocking { try curl("https://127.0.0.1:\(server.port)/pods", pki: pki, stranger: true) }
            #expect(response.status == 401)
            #expect(response.body == "Unauthorized")
        }
    }

    @Test func bearerTokenOverTLS() async throws {
        let pki = TestPKI.shared
        let reviewer = TestTokenReviewer(["t0k3n": KubeletUser(name: "system:kube-apiserver", groups: [])])
        let authorizer = TestAuthorizer { $0.user.name == "system:kube-apiserver" ? .allow : .noOpinion }
        try await withServer(tlsConfiguration(reviewer: reviewer, authorizer: authorizer)) { server, _ in
            let url = "https://127.0.0.1:\(server.port)/stats/summary"
            let ok = try await blocking { try curl(url, pki: pki, headers: ["Authorization: Bearer t0k3n"]) }
            #expect(ok.status == 200)
            let bad = try await blocking { try curl(url, pki: pki, headers: ["Authorization: Bearer nope"]) }
            #expect(bad.status == 401)
            // A verified certificate wins over the token; alice is then not allowed.
            let alice = try await blocking { try curl(url, pki: pki, clientCert: true, headers: ["Authorization: Bearer t0k3n"]) }
            #expect(alice.status == 403)
            #expect(alice.body == "Forbidden (user=alice, verb=get, resource=nodes, subresource=stats)")
        }
        #expect(reviewer.asked.withLock { $0 } == ["t0k3n", "nope"])
    }

    @Test func oldTLSVersionsAreRefused() async throws {
        let pki = TestPKI.shared
        try await withServer(tlsConfiguration(anonymous: true)) { server, _ in
            let result = try await blocking {
                try runProcess("/usr/bin/curl", [
                    "-sS", "--max-time", "10", "--cacert", pki.caFile, "--tlsv1.0", "--tls-max", "1.1",
                    "https://127.0.0.1:\(server.port)/healthz",
                ])
            }
            #expect(result.status != 0)
        }
    }

    @Test func stalledHandshakeTimesOut() async throws {
        var limits = KubeletAPIServer.Limits()
        limits.handshakeTimeout = .milliseconds(300)
        try await withServer(tlsConfiguration(limits: limits)) { server, _ in
            try await blocking {
                let client = try TestClient(port: server.port)
                // No ClientHello: the server gives up and closes.
                #expect(try client.readToEnd().isEmpty)
                // A plain-HTTP request to the TLS port fails the handshake.
                let confused = try TestClient(port: server.port)
                try confused.send("GET /pods HTTP/1.1\r\nHost: x\r\n\r\n")
                _ = try confused.readToEnd()
            }
            // The server still serves.
            let pki = TestPKI.shared
            #expect(try await blocking { try curl("https://127.0.0.1:\(server.port)/pods", pki: pki, clientCert: true) }.status == 200)
        }
    }

    @Test func badCertificateFilesFailStart() throws {
        let pki = TestPKI.shared
        let wrongKey = KubeletAPIServer.TLSFiles(certificateFile: pki.serverCert, keyFile: pki.clientKey, clientCAFile: pki.caFile)
        let missing = KubeletAPIServer.TLSFiles(certificateFile: "/nonexistent.pem", keyFile: pki.serverKey)
        for files in [wrongKey, missing] {
            let server = KubeletAPIServer(
                configuration: .init(address: "127.0.0.1", port: 0, nodeName: "n", tls: files), backend: TestBackend(),
                logger: testLogger())
            do {
                try server.start()
                Issue.record("start succeeded with \(files)")
            } catch {
                #expect(error.code == .tls)
                #expect(error.detail?.isEmpty == false)
            }
        }
    }
}
