import Foundation
@testable import KubeClient
import SwiftletTestSupport
import Testing

/// Kubelet TLS bootstrapping and client-certificate rotation: the key, request and name as the
/// kubelet makes them, the certificate store, the client's reloading, and the whole flow against
/// a real API server and controller manager (hack/local-up-cluster.sh: a bootstrap token,
/// system:bootstrappers' RBAC and auto-approval).
@Suite("Client certificate bootstrap and rotation", .serialized)
struct CertificateBootstrapTests {
    /// A fixed P-256 key and the CSR name Go's kubelet code (`digestedName`) gives it for node
    /// n1 (computed with Go 1.19's crypto/x509, sha512.New512_256, base64.RawURLEncoding).
    static let fixedKey = """
        -----BEGIN EC PRIVATE KEY-----
        MHcCAQEEIGpdxchJ7BIMxIuXYp6BLWd+14A8sOVCE29A5cZDEG9toAoGCCqGSM49
        AwEHoUQDQgAEDaVLA3LAdQyeym3DMs5C/KCcZDALPn760A5z0B0MfoHD1bJzV3zG
        ToP4PnUN6S26U/zrhdjtQrAJA21uQbAp8Q==
        -----END EC PRIVATE KEY-----

        """
    static let fixedKeyName = "node-csr-4Fev3oj6GpSZQCAxdcZmQhkZb85wqa_J81XbIIhTYOU"

    @Test func sha512_256KnownAnswer() {
        let digest = CertificateCrypto.sha512_256(Array("abc".utf8))
        #expect(digest.map { String(format: "%02x", $0) }.joined() == "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23")
    }

    @Test func csrNameIsTheKubelets() throws {
        let made = try NodeCertificateSigning.makeRequest(keyPEM: Array(Self.fixedKey.utf8), nodeName: "n1")
        #expect(made.digestedName == Self.fixedKeyName)
        // Another node, or another key: another name.
        #expect(try NodeCertificateSigning.makeRequest(keyPEM: Array(Self.fixedKey.utf8), nodeName: "n2").digestedName != Self.fixedKeyName)
        #expect(try NodeCertificateSigning.makeRequest(keyPEM: CertificateCrypto.generateKey(), nodeName: "n1").digestedName != Self.fixedKeyName)
    }

    @Test func keyAndRequest() async throws {
        let tree = try TemporaryTree()
        let key = try CertificateCrypto.generateKey()
        let keyText = String(decoding: key, as: UTF8.self)
        #expect(keyText.hasPrefix("-----BEGIN EC PRIVATE KEY-----\n"))
        #expect(CertificateCrypto.loadKey(key) == key)
        #expect(CertificateCrypto.loadKey(Array("not a key".utf8)) == nil)

        let made = try NodeCertificateSigning.makeRequest(keyPEM: key, nodeName: "worker-1")
        let request = try tree.write("req.pem", String(decoding: made.requestPEM, as: UTF8.self))
        let (status, output) = await LocalCluster.run(["/usr/bin/openssl", "req", "-in", request, "-noout", "-text", "-verify"],
                                                      log: tree.path + "/openssl.log")
        #expect(status == 0, "\(output)")
        #expect(output.contains("Subject: O = system:nodes, CN = system:node:worker-1"), "\(output)")
        #expect(output.contains("ecdsa-with-SHA256"), "\(output)")
        #expect(output.contains("prime256v1"), "\(output)")
        #expect(output.contains("verify OK"), "\(output)")

        // client-go's ensureCompatible: a request by the same key and subject stands for ours.
        let again = try NodeCertificateSigning.makeRequest(keyPEM: key, nodeName: "worker-1")
        #expect(CertificateCrypto.incompatibility(existing: again.requestPEM, ours: made.requestPEM, keyPEM: key) == nil)
        let other = try NodeCertificateSigning.makeRequest(keyPEM: key, nodeName: "worker-2")
        #expect(CertificateCrypto.incompatibility(existing: other.requestPEM, ours: made.requestPEM, keyPEM: key) == "the subjects differ")
        let otherKey = try CertificateCrypto.generateKey()
        let byOtherKey = try NodeCertificateSigning.makeRequest(keyPEM: otherKey, nodeName: "worker-1")
        #expect(CertificateCrypto.incompatibility(existing: byOtherKey.requestPEM, ours: made.requestPEM, keyPEM: key)
            == "the existing request is for another key")
    }

    @Test func rotationDeadlineIs70To90PercentOfTheLifetime() {
        let notBefore = Date(timeIntervalSince1970: 1_000_000)
        let notAfter = notBefore.addingTimeInterval(1000)
        #expect(ClientCertificateRotation.rotationDeadline(notBefore: notBefore, notAfter: notAfter, jitter: 0) == notBefore.addingTimeInterval(700))
        #expect(ClientCertificateRotation.rotationDeadline(notBefore: notBefore, notAfter: notAfter, jitter: 1) == notBefore.addingTimeInterval(900))
        for _ in 0..<100 {
            let deadline = ClientCertificateRotation.rotationDeadline(notBefore: notBefore, notAfter: notAfter)
            #expect(deadline >= notBefore.addingTimeInterval(700) && deadline <= notBefore.addingTimeInterval(900))
        }
    }

    @Test func storeWritesPairsAndSwitchesTheSymlink() async throws {
        let tree = try TemporaryTree()
        let certificates = try await TestCertificates(directory: tree.path)
        let first = try await certificates.issued(commonName: "system:node:n1", validFor: 3600)
        let store = ClientCertificateStore(directory: tree.path + "/pki")
        #expect(store.current() == nil)

        let now = Date()
        let pair = try store.update(certificatePEM: first.certificate, keyPEM: first.key, now: now)
        #expect(pair.file == tree.path + "/pki/kubelet-client-\(ClientCertificateStore.timestamp(now)).pem")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: store.currentPath) == pair.file)
        #expect(try mode(pair.file) == 0o600)
        let contents = try String(contentsOfFile: pair.file, encoding: .utf8)
        #expect(contents.hasPrefix("-----BEGIN CERTIFICATE-----") && contents.contains("-----BEGIN EC PRIVATE KEY-----"))
        let current = try #require(store.current())
        #expect(current.file == pair.file)
        #expect(abs(current.notAfter.timeIntervalSince(current.notBefore) - 3600) < 2)

        // A certificate for another key is refused and changes nothing.
        let second = try await certificates.issued(commonName: "system:node:n1", validFor: 3600)
        let mismatch = try #require(throws: ClientCertificateError.self) {
            try store.update(certificatePEM: second.certificate, keyPEM: first.key, now: now.addingTimeInterval(1))
        }
        #expect(mismatch.kind == .certificate, "\(mismatch)")
        #expect(store.current()?.file == pair.file)

        let next = try store.update(certificatePEM: second.certificate, keyPEM: second.key, now: now.addingTimeInterval(5))
        #expect(next.file != pair.file)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: store.currentPath) == next.file)
        #expect(FileManager.default.fileExists(atPath: pair.file))  // old pairs stay, as the kubelet's
        #expect(!FileManager.default.fileExists(atPath: tree.path + "/pki/kubelet-client-updated.pem"))
    }

    @Test func clientRereadsChangedCertificateFiles() async throws {
        let tree = try TemporaryTree()
        let certificates = try await TestCertificates(directory: tree.path)
        let first = try await certificates.issued(commonName: "system:node:n1", validFor: 3600)
        let second = try await certificates.issued(commonName: "system:node:n1", validFor: 3600)
        let store = ClientCertificateStore(directory: tree.path + "/pki")
        try store.update(certificatePEM: first.certificate, keyPEM: first.key, now: Date())
        let firstFile = try [UInt8](Data(contentsOf: URL(fileURLWithPath: store.currentPath)))

        let kubeconfig = try tree.write("kubeconfig", """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
            users: [{name: u, user: {client-certificate: \(store.currentPath), client-key: \(store.currentPath)}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            current-context: x
            """)
        let configuration = try KubeConfig.load(path: kubeconfig).clientConfiguration()
        #expect(configuration.clientCertificateFile == store.currentPath)
        #expect(configuration.clientKeyFile == store.currentPath)
        let client = KubeClient(configuration: configuration)
        #expect(client.tls.certificatePEM == firstFile)
        #expect(client.clientCertificatePEM == first.certificate)  // the certificate blocks only

        try store.update(certificatePEM: second.certificate, keyPEM: second.key, now: Date().addingTimeInterval(2))
        let secondFile = try [UInt8](Data(contentsOf: URL(fileURLWithPath: store.currentPath)))
        #expect(client.tls.certificatePEM == secondFile)
        #expect(client.tls.keyPEM == secondFile)

        // A broken file is not used: the last good pair stays.
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: store.currentPath)
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: target))
        #expect(client.tls.certificatePEM == secondFile)
        #expect(client.clientCertificatePEM == second.certificate)

        // Embedded data is never re-read.
        let embedded = KubeClient(configuration: KubeClientConfiguration(server: "https://127.0.0.1:1", clientCertificatePEM: firstFile,
                                                                         clientKeyPEM: firstFile))
        #expect(embedded.tls.certificatePEM == firstFile)
    }

    @Test func existingKubeconfigValidity() async throws {
        let tree = try TemporaryTree()
        let certificates = try await TestCertificates(directory: tree.path)
        #expect(try isInvalid(CertificateBootstrap.existingValidity(kubeconfigPath: tree.path + "/missing")))

        let valid = try await certificates.issued(commonName: "system:node:n1", validFor: 3600)
        let expired = try await certificates.signed(commonName: "system:node:n1", from: -120, to: -60)
        for (name, pair, expectValid) in [("valid", valid, true), ("expired", expired, false)] {
            let pem = try tree.write("\(name).pem", String(decoding: pair.certificate + pair.key, as: UTF8.self))
            let kubeconfig = try tree.write("\(name).kubeconfig", """
                apiVersion: v1
                kind: Config
                clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
                users: [{name: u, user: {client-certificate: \(pem), client-key: \(pem)}}]
                contexts: [{name: x, context: {cluster: c, user: u}}]
                current-context: x
                """)
            let validity = try CertificateBootstrap.existingValidity(kubeconfigPath: kubeconfig)
            #expect(isInvalid(validity) != expectValid, "\(name): \(validity)")
        }
        let tokenOnly = try tree.write("token.kubeconfig", """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
            users: [{name: u, user: {token: abc.def}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            current-context: x
            """)
        #expect(try isInvalid(CertificateBootstrap.existingValidity(kubeconfigPath: tokenOnly)))
    }

    @Test func writtenKubeconfigLoads() throws {
        let tree = try TemporaryTree()
        let ca = try tree.write("ca.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        let bootstrap = try tree.write("bootstrap.kubeconfig", """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "https://api.example:6443", certificate-authority: ca.crt}}]
            users: [{name: u, user: {token: abc.def}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            current-context: x
            """)
        let written = tree.path + "/var/kubelet.kubeconfig"
        try CertificateBootstrap.writeKubeconfig(at: written, bootstrap: KubeConfig.load(path: bootstrap),
                                                 certificatePath: "/var/lib/kubelet/pki/kubelet-client-current.pem")
        #expect(try mode(written) == 0o600)
        let loaded = try KubeConfig.load(path: written)
        #expect(loaded.currentContext == "default-context")
        #expect(loaded.contexts["default-context"]?.namespace == "default")
        #expect(loaded.clusters["default-cluster"]?.server == "https://api.example:6443")
        #expect(loaded.clusters["default-cluster"]?.certificateAuthority == ca)
        #expect(loaded.users["default-auth"]?.clientCertificate == "/var/lib/kubelet/pki/kubelet-client-current.pem")
        #expect(loaded.users["default-auth"]?.clientKey == "/var/lib/kubelet/pki/kubelet-client-current.pem")
        #expect(loaded.users["default-auth"]?.token == nil)
    }

    // MARK: Against a real cluster

    static let nodeName = "swiftlet-bootstrap-node"

    @Test(.timeLimit(.minutes(45)))
    func bootstrapAndRotationAgainstARealCluster() async throws {
        let cluster = try await LocalCluster.up(nodeName: Self.nodeName)
        var failure: (any Error)?
        do {
            let flow = try await BootstrapFlow(cluster: cluster)
            try await flow.bootstrapWithToken()
            try await flow.validKubeconfigIsReused()
            try await flow.lostKubeconfigFindsItsRequestAgain()
            try await flow.rotateNow()
            try await flow.runRotatesAShortLivedCertificate()
            try await flow.expiredCertificateBootstrapsAgain()
            try await flow.deniedRequestFails()
            try await flow.pendingRequestTimesOut()
        } catch {
            failure = error
        }
        await cluster.down()
        if let failure { throw failure }
    }
}

private func isInvalid(_ validity: CertificateBootstrap.Validity) -> Bool {
    if case .invalid = validity { return true }
    return false
}

private func mode(_ path: String) throws -> Int {
    try ((FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue).map { $0 & 0o777 } ?? -1
}

/// Test certificates made with the openssl command: self-signed, or signed by a CA for a
/// validity window relative to now (`openssl ca -startdate/-enddate`).
private struct TestCertificates {
    let directory: String
    private let caCertificate: String
    private let caKey: String
    private static let counter = Counter()

    struct Pair {
        var certificate: [UInt8]
        var key: [UInt8]
    }

    /// With its own CA, or the cluster's.
    init(directory: String, caCertificate: String? = nil, caKey: String? = nil) async throws {
        self.directory = directory + "/test-certificates"
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        if let caCertificate, let caKey {
            self.caCertificate = caCertificate
            self.caKey = caKey
        } else {
            self.caCertificate = self.directory + "/ca.crt"
            self.caKey = self.directory + "/ca.key"
            try await Self.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.caKey,
                                    "-out", self.caCertificate, "-subj", "/CN=test-ca", "-days", "2"], in: self.directory)
        }
        try "".write(toFile: self.directory + "/index.txt", atomically: true, encoding: .utf8)
        try "01\n".write(toFile: self.directory + "/serial", atomically: true, encoding: .utf8)
        try """
            [ ca ]
            default_ca = local
            [ local ]
            database = \(self.directory)/index.txt
            new_certs_dir = \(self.directory)
            serial = \(self.directory)/serial
            default_md = sha256
            policy = anything
            unique_subject = no
            email_in_dn = no
            [ anything ]
            organizationName = optional
            commonName = supplied
            """.write(toFile: self.directory + "/ca.cnf", atomically: true, encoding: .utf8)
    }

    func issued(commonName: String, validFor seconds: Int) async throws -> Pair {
        try await signed(commonName: commonName, from: -1, to: seconds)
    }

    /// `O=system:nodes, CN=commonName`, a new P-256 key, valid from now+from to now+to seconds.
    func signed(commonName: String, from: Int, to: Int) async throws -> Pair {
        let id = Self.counter.next()
        let key = "\(directory)/\(id).key", request = "\(directory)/\(id).csr", certificate = "\(directory)/\(id).crt"
        try await Self.openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], in: directory)
        try await Self.openssl(["req", "-new", "-key", key, "-subj", "/O=system:nodes/CN=\(commonName)", "-out", request], in: directory)
        try await Self.openssl(["ca", "-batch", "-config", directory + "/ca.cnf", "-cert", caCertificate, "-keyfile", caKey, "-in", request,
                                "-out", certificate, "-notext", "-preserveDN", "-startdate", Self.utcTime(from), "-enddate", Self.utcTime(to)],
                               in: directory)
        return Pair(certificate: try [UInt8](Data(contentsOf: URL(fileURLWithPath: certificate))),
                    key: try [UInt8](Data(contentsOf: URL(fileURLWithPath: key))))
    }

    /// UTCTime `YYMMDDHHMMSSZ`, `offset` seconds from now.
    static func utcTime(_ offset: Int) -> String {
        var time = time_t(Date().timeIntervalSince1970) + time_t(offset)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(format: "%02d%02d%02d%02d%02d%02dZ", Int(parts.tm_year) % 100, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    static func openssl(_ arguments: [String], in directory: String) async throws {
        let (status, output) = await LocalCluster.run(["/usr/bin/openssl"] + arguments, log: directory + "/openssl.log")
        guard status == 0 else { throw LocalCluster.Failure(description: "openssl \(arguments.joined(separator: " ")): \(output)") }
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int {
            lock.lock()
            defer { lock.unlock() }
            value += 1
            return value
        }
    }
}

/// The scenarios against one cluster, in order (each builds on the files the previous left).
private struct BootstrapFlow {
    let cluster: LocalCluster
    let admin: KubeClient
    let tree: TemporaryTree
    let certificates: TestCertificates
    var name: String { cluster.nodeName }
    var certificateDirectory: String { tree.path + "/pki" }
    var kubeconfig: String { tree.path + "/kubelet.kubeconfig" }
    var bootstrapKubeconfig: String { cluster.env["BOOTSTRAP_KUBECONFIG"]! }
    var store: ClientCertificateStore { ClientCertificateStore(directory: certificateDirectory) }
    let log: @Sendable (String) -> Void = { print("bootstrap: \($0)") }

    init(cluster: LocalCluster) async throws {
        self.cluster = cluster
        admin = try KubeClient(kubeconfigPath: cluster.adminKubeconfig)
        tree = try TemporaryTree()
        certificates = try await TestCertificates(directory: tree.path, caCertificate: cluster.caCertificate, caKey: try #require(cluster.env["CA_KEY"]))
        #expect(cluster.env["BOOTSTRAP_KUBECONFIG"] != nil, "local-up-cluster.sh wrote no bootstrap kubeconfig")
    }

    func load(node: String? = nil, bootstrap: String? = nil, directory: String? = nil, kubeconfig: String? = nil,
              timeout: Duration = .seconds(120)) async throws(ClientCertificateError) -> CertificateBootstrap.Outcome {
        try await CertificateBootstrap.loadClientCertificate(
            kubeconfigPath: kubeconfig ?? self.kubeconfig, bootstrapKubeconfigPath: bootstrap ?? bootstrapKubeconfig,
            certificateDirectory: directory ?? certificateDirectory, nodeName: node ?? name,
            options: CertificateBootstrap.Options(timeout: timeout, serverWaitTimeout: .seconds(30), log: log))
    }

    func csrs() async throws -> [CertificateSigningRequest] {
        let list = try await admin.list(CertificateSigningRequest.collectionPath)
        return try (list["items"]?.arrayValue ?? []).map { try $0.decode(as: CertificateSigningRequest.self) }
    }

    func csr(_ name: String) async throws -> CertificateSigningRequest {
        try await admin.get(CertificateSigningRequest.path(name), as: CertificateSigningRequest.self)
    }

    /// A bootstrap token's CSR, auto-approved and issued; the pair, symlink and kubeconfig
    /// written; a client from the kubeconfig is system:node:<name>.
    func bootstrapWithToken() async throws {
        let outcome = try await load()
        #expect(outcome.bootstrapped)
        let csrName = try #require(outcome.csrName)
        #expect(csrName.hasPrefix("node-csr-"), "\(csrName)")
        #expect(outcome.notAfter > Date().addingTimeInterval(86400))

        let request = try await csr(csrName)
        #expect(request.spec.username?.hasPrefix("system:bootstrap:") == true, "\(String(describing: request.spec.username))")
        #expect(request.spec.groups?.contains("system:bootstrappers") == true)
        #expect(request.spec.signerName == CertificateSigningRequest.kubeletClientSigner)
        #expect(request.spec.usages == CertificateSigningRequest.kubeletClientUsages)
        #expect(request.condition(CertificateSigningRequestCondition.approved)?.reason == "AutoApproved")

        let target = try FileManager.default.destinationOfSymbolicLink(atPath: store.currentPath)
        let fileName = (target as NSString).lastPathComponent
        #expect(fileName.wholeMatch(of: /kubelet-client-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d\.pem/) != nil, "\(fileName)")
        #expect(try mode(target) == 0o600)
        #expect(try mode(kubeconfig) == 0o600)
        #expect(!FileManager.default.fileExists(atPath: certificateDirectory + "/" + CertificateBootstrap.temporaryKeyFileName))
        let written = try KubeConfig.load(path: kubeconfig)
        let user = try #require(written.users["default-auth"])
        #expect(user.clientCertificate == store.currentPath && user.clientKey == store.currentPath)
        #expect(written.clusters["default-cluster"]?.server == cluster.server)

        // The client is system:node:<name>: it may read nodes (404 for its own, not yet made: not
        // 403), make its own Node, and NodeRestriction refuses it another's.
        let node = try KubeClient(kubeconfigPath: kubeconfig)
        let missing = try await #require(throws: KubeAPIError.self) { try await node.get("/api/v1/nodes/\(name)") }
        #expect(missing.isNotFound, "\(missing)")
        let made = try await node.create("/api/v1/nodes", Node(metadata: ObjectMeta(name: name)), as: Node.self)
        #expect(made.metadata.name == name)
        let forbidden = try await #require(throws: KubeAPIError.self) {
            try await node.create("/api/v1/nodes", Node(metadata: ObjectMeta(name: "someone-else")))
        }
        #expect(forbidden.isForbidden, "\(forbidden)")
    }

    /// A second call keeps the kubeconfig and makes no CSR.
    func validKubeconfigIsReused() async throws {
        let before = try await csrs().count
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: store.currentPath)
        let outcome = try await load()
        #expect(!outcome.bootstrapped)
        #expect(outcome.csrName == nil)
        #expect(try await csrs().count == before)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: store.currentPath) == target)
    }

    /// Without the kubeconfig, the current pair's key asks again under the same name: the issued
    /// request is found (AlreadyExists, compatible) and its certificate used; no new CSR.
    func lostKubeconfigFindsItsRequestAgain() async throws {
        let before = try await csrs()
        let first = try #require(before.first { $0.metadata.name?.hasPrefix("node-csr-") == true })
        try FileManager.default.removeItem(atPath: kubeconfig)
        let outcome = try await load()
        #expect(outcome.bootstrapped)
        #expect(outcome.csrName == first.metadata.name)
        #expect(try await csrs().count == before.count)
        let node = try KubeClient(kubeconfigPath: kubeconfig)
        _ = try await node.get("/api/v1/nodes/\(name)")
    }

    /// A rotation with the current credentials: a `csr-` request by system:node:<name>,
    /// auto-approved (selfnodeclient), a new timestamped file, the symlink switched; a client
    /// made before it presents the new certificate and keeps working.
    func rotateNow() async throws {
        let node = try KubeClient(kubeconfigPath: kubeconfig)
        let old = try FileManager.default.destinationOfSymbolicLink(atPath: store.currentPath)
        try await Task.sleep(for: .milliseconds(1100))  // a new second: a new file name
        let rotation = try ClientCertificateRotation(kubeconfigPath: kubeconfig, certificateDirectory: certificateDirectory, nodeName: name,
                                                     options: ClientCertificateRotation.Options(waitTimeout: .seconds(120), log: log))
        let pair = try await rotation.rotateNow()
        #expect(pair.file != old)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: store.currentPath) == pair.file)
        #expect(try mode(pair.file) == 0o600)

        let rotated = try #require(try await csrs().filter { $0.metadata.name?.hasPrefix("csr-") == true }.last)
        #expect(rotated.spec.username == "system:node:\(name)")
        #expect(rotated.condition(CertificateSigningRequestCondition.approved)?.reason == "AutoApproved")
        #expect(rotated.issuedCertificatePEM.map { ClientCertificateStore.certificateBlocks($0) } == pair.certificatePEM)

        let newFile = try [UInt8](Data(contentsOf: URL(fileURLWithPath: pair.file)))
        #expect(node.tls.certificatePEM == newFile)
        #expect(node.clientCertificatePEM == pair.certificatePEM)
        let read = try await node.get("/api/v1/nodes/\(name)", as: Node.self)
        #expect(read.metadata.name == name)
    }

    /// run() with a certificate 50 s into a 60 s life: it rotates within seconds, and the new
    /// certificate is the signer's (a year); cancelling ends run() without an error.
    func runRotatesAShortLivedCertificate() async throws {
        let short = try await certificates.signed(commonName: "system:node:\(name)", from: -50, to: 10)
        let shortPair = try store.update(certificatePEM: short.certificate, keyPEM: short.key, now: Date().addingTimeInterval(-3))
        let node = try KubeClient(kubeconfigPath: kubeconfig)
        _ = try await node.get("/api/v1/nodes/\(name)")  // the short-lived certificate authenticates

        let rotation = try ClientCertificateRotation(kubeconfigPath: kubeconfig, certificateDirectory: certificateDirectory, nodeName: name,
                                                     options: ClientCertificateRotation.Options(waitTimeout: .seconds(60), log: log))
        let deadline = rotation.nextRotationDeadline()
        #expect(deadline < Date().addingTimeInterval(5))
        let store = self.store
        let rotated = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await rotation.run()
                return false
            }
            group.addTask {
                for _ in 0..<120 {
                    if let current = store.current(), current.file != shortPair.file, current.notAfter > Date().addingTimeInterval(86400) {
                        return true
                    }
                    try await Task.sleep(for: .milliseconds(500))
                }
                return false
            }
            let first = try await group.next()!
            group.cancelAll()
            while try await group.next() != nil {}  // run() ends normally when cancelled
            return first
        }
        #expect(rotated, "run() did not rotate the short-lived certificate")
        let read = try await node.get("/api/v1/nodes/\(name)", as: Node.self)
        #expect(read.metadata.name == name)
    }

    /// An expired certificate behind the kubeconfig: bootstrap again with the token.
    func expiredCertificateBootstrapsAgain() async throws {
        let expired = try await certificates.signed(commonName: "system:node:\(name)", from: -120, to: -60)
        let expiredPair = try store.update(certificatePEM: expired.certificate, keyPEM: expired.key, now: Date().addingTimeInterval(-2))
        let outcome = try await load()
        #expect(outcome.bootstrapped)
        let request = try await csr(try #require(outcome.csrName))
        #expect(request.spec.username?.hasPrefix("system:bootstrap:") == true)
        let current = try #require(store.current())
        #expect(current.file != expiredPair.file && current.notAfter > Date())
        let node = try KubeClient(kubeconfigPath: kubeconfig)
        _ = try await node.get("/api/v1/nodes/\(name)")
    }

    /// A request the approver leaves alone (a node asking for another node's name), denied by
    /// the administrator while the bootstrap waits: a clear error, no kubeconfig.
    func deniedRequestFails() async throws {
        let directory = tree.path + "/denied"
        let kubeconfig = directory + "/kubelet.kubeconfig"
        let admin = self.admin
        let requester = "system:node:\(name)"
        let options = CertificateBootstrap.Options(timeout: .seconds(120), serverWaitTimeout: .seconds(30), log: log)
        let nodeKubeconfig = cluster.nodeKubeconfig
        let result = await withTaskGroup(of: Result<CertificateBootstrap.Outcome, ClientCertificateError>?.self) { group in
            group.addTask {
                do throws(ClientCertificateError) {
                    return .success(try await CertificateBootstrap.loadClientCertificate(
                        kubeconfigPath: kubeconfig, bootstrapKubeconfigPath: nodeKubeconfig, certificateDirectory: directory + "/pki",
                        nodeName: "swiftlet-denied-node", options: options))
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                // Deny the pending request as soon as it shows up.
                for _ in 0..<120 {
                    let list = (try? await admin.list(CertificateSigningRequest.collectionPath))?["items"]?.arrayValue ?? []
                    for item in list {
                        guard var csr = try? item.decode(as: CertificateSigningRequest.self), csr.spec.username == requester,
                              csr.metadata.name?.hasPrefix("node-csr-") == true, csr.status?.conditions == nil
                        else { continue }
                        csr.status = CertificateSigningRequestStatus(conditions: [
                            CertificateSigningRequestCondition(type: CertificateSigningRequestCondition.denied, reason: "SwiftletTestDenied",
                                                               message: "denied by the test")
                        ])
                        _ = try? await admin.update(CertificateSigningRequest.approvalPath(csr.metadata.name!), csr)
                        return nil
                    }
                    try? await Task.sleep(for: .milliseconds(250))
                }
                return nil
            }
            var outcome: Result<CertificateBootstrap.Outcome, ClientCertificateError>?
            for await result in group { if let result { outcome = result } }
            return outcome
        }
        let error = try #require(throws: ClientCertificateError.self) { try result?.get() }
        #expect(error.kind == .denied, "\(error)")
        #expect(error.reason == "SwiftletTestDenied")
        #expect(error.message == "denied by the test")
        #expect(error.csrName?.hasPrefix("node-csr-") == true)
        #expect(error.description.contains("denied (SwiftletTestDenied: denied by the test)"), "\(error)")
        #expect(!FileManager.default.fileExists(atPath: kubeconfig))
        // The key waits for the next attempt, as the kubelet's.
        #expect(FileManager.default.fileExists(atPath: directory + "/pki/" + CertificateBootstrap.temporaryKeyFileName))
    }

    /// A request nobody approves: the timeout is an error naming the CSR.
    func pendingRequestTimesOut() async throws {
        let directory = tree.path + "/pending"
        let error = try await #require(throws: ClientCertificateError.self) {
            try await load(node: "swiftlet-pending-node", bootstrap: cluster.nodeKubeconfig, directory: directory + "/pki",
                           kubeconfig: directory + "/kubelet.kubeconfig", timeout: .seconds(3))
        }
        #expect(error.kind == .timeout, "\(error)")
        #expect(error.csrName?.hasPrefix("node-csr-") == true)
    }
}
