import Foundation
import KubeClient
import SwiftletTestSupport
import Testing

/// PEM that passes the client's structural checks (not a real certificate: these tests never connect).
let fakeCertificate = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2VydA==\n-----END CERTIFICATE-----\n"
let fakeKey = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKey0123456789abcdef\n-----END EC PRIVATE KEY-----\n"

func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

@Suite("kubeconfig")
struct KubeConfigTests {
    @Test func embeddedCertificatesAndCurrentContext() throws {
        let tree = try TemporaryTree(prefix: "kubeconfig")
        let path = try tree.write("config", """
            apiVersion: v1
            kind: Config
            clusters:
            - name: local
              cluster:
                server: https://127.0.0.1:6443
                certificate-authority-data: \(base64(fakeCertificate))
            users:
            - name: system:node:n1
              user:
                client-certificate-data: \(base64(fakeCertificate))
                client-key-data: \(base64(fakeKey))
            contexts:
            - name: node@local
              context:
                cluster: local
                user: system:node:n1
                namespace: kube-system
            current-context: node@local
            preferences: {}
            """)
        let config = try KubeConfig.load(path: path)
        #expect(config.currentContext == "node@local")
        let client = try config.clientConfiguration()
        #expect(client.server == "https://127.0.0.1:6443")
        #expect(client.certificateAuthorityPEM == Array(fakeCertificate.utf8))
        #expect(client.clientCertificatePEM == Array(fakeCertificate.utf8))
        #expect(client.clientKeyPEM == Array(fakeKey.utf8))
        #expect(client.namespace == "kube-system")
        #expect(client.bearerToken == nil)
        #expect(!client.insecureSkipTLSVerify)
    }

    @Test func relativeFilesResolveAgainstTheKubeconfigsDirectory() throws {
        let tree = try TemporaryTree(prefix: "kubeconfig")
        try tree.write("pki/ca.crt", fakeCertificate)
        try tree.write("pki/node.crt", fakeCertificate)
        try tree.write("pki/node.key", fakeKey)
        try tree.write("token", "  secret-token\n")
        let path = try tree.write("sub/config", """
            clusters:
            - name: c
              cluster: {server: "https://example.invalid:6443/prefix", certificate-authority: ../pki/ca.crt}
            users:
            - name: certs
              user: {client-certificate: ../pki/node.crt, client-key: ../pki/node.key}
            - name: tokens
              user: {tokenFile: ../token}
            contexts:
            - {name: a, context: {cluster: c, user: certs}}
            - {name: b, context: {cluster: c, user: tokens}}
            current-context: a
            """)
        let config = try KubeConfig.load(path: path)
        #expect(config.clusters["c"]?.certificateAuthority == tree.path + "/sub/../pki/ca.crt")
        let certs = try config.clientConfiguration()
        #expect(certs.clientKeyPEM == Array(fakeKey.utf8))
        #expect(certs.namespace == "default")
        let tokens = try config.clientConfiguration(context: "b")
        #expect(tokens.bearerTokenFile == tree.path + "/sub/../token")
        #expect(tokens.clientCertificatePEM == nil)
    }

    @Test func kubeconfigEnvironmentListMergesFirstWins() throws {
        let tree = try TemporaryTree(prefix: "kubeconfig")
        let first = try tree.write("one", """
            clusters:
            - {name: shared, cluster: {server: "https://first:6443", insecure-skip-tls-verify: true}}
            users:
            - {name: u, user: {token: first-token}}
            contexts:
            - {name: ctx, context: {cluster: shared, user: u}}
            """)
        let second = try tree.write("two", """
            clusters:
            - {name: shared, cluster: {server: "https://second:6443"}}
            - {name: only-second, cluster: {server: "https://other:6443"}}
            users:
            - {name: u, user: {token: second-token}}
            contexts:
            - {name: ctx, context: {cluster: only-second, user: u}}
            current-context: ctx
            """)
        let environment = ["KUBECONFIG": "\(first):\(tree.path)/missing:\(second)", "HOME": tree.path]
        let merged = try KubeConfig.load(environment: environment)
        #expect(merged.files == [first, second])
        #expect(merged.currentContext == "ctx")
        #expect(merged.clusters.keys.sorted() == ["only-second", "shared"])
        let client = try merged.clientConfiguration()
        #expect(client.server == "https://first:6443")
        #expect(client.insecureSkipTLSVerify)
        #expect(client.bearerToken == "first-token")

        // An explicit path wins over KUBECONFIG.
        let explicit = try KubeConfig.load(explicitPath: second, environment: environment)
        #expect(try explicit.clientConfiguration().server == "https://other:6443")

        // Nothing at all.
        #expect(throws: KubeConfigError(file: "", reason: .noConfiguration)) {
            try KubeConfig.load(environment: ["HOME": tree.path])
        }
        #expect(throws: KubeConfigError(file: "\(tree.path)/nope", key: "KUBECONFIG", reason: .fileNotFound)) {
            try KubeConfig.load(environment: ["KUBECONFIG": "\(tree.path)/nope"])
        }
    }

    @Test func missingFilesNameTheKeyAndFile() throws {
        let tree = try TemporaryTree(prefix: "kubeconfig")
        let missingConfig = tree.path + "/absent"
        #expect(throws: KubeConfigError(file: missingConfig, reason: .fileNotFound)) { try KubeConfig.load(path: missingConfig) }
        #expect(throws: KubeConfigError(file: missingConfig, reason: .fileNotFound)) {
            try KubeConfig.load(explicitPath: missingConfig, environment: [:])
        }

        let path = try tree.write("config", """
            clusters:
            - {name: c, cluster: {server: "https://h:1", certificate-authority: /nonexistent/ca.crt}}
            contexts:
            - {name: x, context: {cluster: c}}
            current-context: x
            """)
        let error = try #require(throws: KubeConfigError.self) { try KubeConfig.load(path: path).clientConfiguration() }
        #expect(error.file == path)
        #expect(error.key == "clusters[c].cluster.certificate-authority (/nonexistent/ca.crt)")
        #expect(error.reason == .fileNotFound)
        #expect(error.description == "kubeconfig \(path): clusters[c].cluster.certificate-authority (/nonexistent/ca.crt): no such file")
    }

    @Test func badPEMAndBadValues() throws {
        let tree = try TemporaryTree(prefix: "kubeconfig")
        func configuration(_ user: String, cluster: String = "server: https://h:1") throws -> KubeConfigError {
            let path = try tree.write("config-\(UUID().uuidString)", """
                clusters:
                - {name: c, cluster: {\(cluster)}}
                users:
                - {name: u, user: {\(user)}}
                contexts:
                - {name: x, context: {cluster: c, user: u}}
                current-context: x
                """)
            return try #require(throws: KubeConfigError.self) { try KubeConfig.load(path: path).clientConfiguration() }
        }
        let garbage = try configuration("client-certificate-data: \(base64(fakeCertificate)), client-key-data: \(base64("not a key"))")
        #expect(garbage.key == "users[u].user.client-key-data")
        #expect(garbage.reason == .invalidPEM("no \"-----BEGIN\" line"))

        let truncated = try configuration("client-certificate-data: \(base64("-----BEGIN CERTIFICATE-----\nMIIB\n")), client-key-data: \(base64(fakeKey))")
        #expect(truncated.key == "users[u].user.client-certificate-data")
        #expect(truncated.reason == .invalidPEM("the CERTIFICATE block has no END line"))

        let swapped = try configuration("client-certificate-data: \(base64(fakeKey)), client-key-data: \(base64(fakeKey))")
        #expect(swapped.reason == .invalidPEM("no CERTIFICATE block (found EC PRIVATE KEY)"))

        let notBase64 = try configuration("client-key-data: '%%%'")
        #expect(notBase64.key == "users[u].user.client-key-data")
        #expect(notBase64.reason == .invalidValue("not base64"))

        let halfPair = try configuration("client-certificate-data: \(base64(fakeCertificate))")
        #expect(halfPair.key == "users[u].user.client-key(-data)")

        let exec = try configuration("exec: {command: aws}")
        #expect(exec.reason == .unsupported("exec credentials"))

        let badServer = try configuration("token: t", cluster: "server: 127.0.0.1:6443")
        #expect(badServer.key == "clusters[c].cluster.server")

        let noServer = try configuration("token: t", cluster: "insecure-skip-tls-verify: true")
        #expect(noServer.key == "clusters[c].cluster.server")
        #expect(noServer.reason == .missingKey)

        let badBool = try configuration("token: t", cluster: "server: https://h:1, insecure-skip-tls-verify: perhaps")
        #expect(badBool.key == "clusters[c].cluster.insecure-skip-tls-verify")
    }

    @Test func undefinedReferencesAndBadYAML() throws {
        let tree = try TemporaryTree(prefix: "kubeconfig")
        let path = try tree.write("config", """
            clusters:
            - {name: c, cluster: {server: "https://h:1"}}
            contexts:
            - {name: x, context: {cluster: c, user: ghost}}
            - {name: y, context: {cluster: nowhere}}
            current-context: missing
            """)
        let config = try KubeConfig.load(path: path)
        #expect(throws: KubeConfigError(file: path, key: "current-context", reason: .undefinedReference("missing"))) {
            try config.clientConfiguration()
        }
        #expect(throws: KubeConfigError(file: path, key: "contexts[x].context.user", reason: .undefinedReference("ghost"))) {
            try config.clientConfiguration(context: "x")
        }
        #expect(throws: KubeConfigError(file: path, key: "contexts[y].context.cluster", reason: .undefinedReference("nowhere"))) {
            try config.clientConfiguration(context: "y")
        }

        let broken = try tree.write("broken", "clusters: [ {name: c\n")
        let error = try #require(throws: KubeConfigError.self) { try KubeConfig.load(path: broken) }
        guard case .invalidYAML = error.reason else { Issue.record("expected invalidYAML, got \(error)"); return }
        #expect(error.file == broken)

        let shape = try tree.write("shape", "clusters: {c: 1}\n")
        #expect(throws: KubeConfigError(file: shape, key: "clusters", reason: .invalidYAML("not a list"))) {
            try KubeConfig.load(path: shape)
        }
        let unnamed = try tree.write("unnamed", "users:\n- user: {token: t}\n")
        #expect(throws: KubeConfigError(file: unnamed, key: "users[0].name", reason: .missingKey)) {
            try KubeConfig.load(path: unnamed)
        }
    }
}
