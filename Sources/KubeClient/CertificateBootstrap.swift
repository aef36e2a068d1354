import Foundation

/// Kubelet TLS bootstrapping (`--bootstrap-kubeconfig`): the node's first client certificate,
/// asked for with a bootstrap token through the CSR API, as `pkg/kubelet/certificate/bootstrap`'s
/// `LoadClientCert` does.
///
/// 1. A kubeconfig at `kubeconfigPath` that loads, has a client certificate and key (a pair)
///    and whose certificates have not expired is used as it is: nothing else happens.
/// 2. Otherwise the key is the current pair's in `certificateDirectory` when it is usable (a
///    kubeconfig lost beside a good certificate), else `kubelet-client.key.tmp` there, made
///    (ECDSA P-256, mode 0600) when missing, and kept until a certificate is issued: a node
///    restarted while its request is pending asks again under the same name and finds it.
/// 3. The request (`O=system:nodes, CN=system:node:<nodeName>`, signer
///    `kubernetes.io/kube-apiserver-client-kubelet`, usages digital signature, key
///    encipherment, client auth) is created as `node-csr-<digest of key, subject and usages>`
///    with the bootstrap kubeconfig's credentials, then watched until it is approved and issued
///    — by the controller manager's csrapproving controller when RBAC lets the bootstrap group
///    `system:bootstrappers` create CSRs (`system:node-bootstrapper`) and binds it to
///    `certificatesigningrequests/nodeclient`, or by an administrator (`kubectl certificate
///    approve`). Denied, Failed, deleted or not issued within the timeout (the kubelet's hour)
///    is an error.
/// 4. The certificate and key go to `<certificateDirectory>/kubelet-client-<timestamp>.pem`,
///    `kubelet-client-current.pem` points at it (``ClientCertificateStore``), and the kubeconfig
///    is written at `kubeconfigPath`: the bootstrap kubeconfig's server, CA (its file, else its
///    data) and `insecure-skip-tls-verify`, with `client-certificate` and `client-key` both the
///    `kubelet-client-current.pem` path — so a rotation (``ClientCertificateRotation``) needs
///    no kubeconfig change, and a ``KubeClient`` made from it follows the symlink.
public enum CertificateBootstrap {
    /// How to bootstrap.
    public struct Options: Sendable {
        /// How long to wait for the CSR to be approved and issued (the kubelet's: an hour).
        public var timeout: Duration
        /// How long to wait for the API server's `/healthz` before asking (the kubelet's: a
        /// minute; the request is made either way).
        public var serverWaitTimeout: Duration
        /// Progress, in words (waiting for approval, issued, reusing the kubeconfig…).
        public var log: (@Sendable (String) -> Void)?

        public init(timeout: Duration = .seconds(3600), serverWaitTimeout: Duration = .seconds(60),
                    log: (@Sendable (String) -> Void)? = nil) {
            self.timeout = timeout
            self.serverWaitTimeout = serverWaitTimeout
            self.log = log
        }
    }

    /// What ``loadClientCertificate(kubeconfigPath:bootstrapKubeconfigPath:certificateDirectory:nodeName:options:)`` did.
    public struct Outcome: Sendable, Hashable {
        /// True when a certificate was requested and the kubeconfig written; false when the
        /// existing kubeconfig was valid and kept.
        public var bootstrapped: Bool
        /// The CSR that issued the certificate (nil when nothing was requested).
        public var csrName: String?
        /// The kubeconfig to use (`kubeconfigPath`).
        public var kubeconfigPath: String
        /// The client certificate's expiry (the earliest in its chain).
        public var notAfter: Date
    }

    /// The tmp key's name in the certificate directory (the kubelet's).
    public static let temporaryKeyFileName = "kubelet-client.key.tmp"

    /// Makes sure `kubeconfigPath` holds a kubeconfig with a valid client certificate, asking
    /// for one with the bootstrap kubeconfig when it does not (see ``CertificateBootstrap``).
    public static func loadClientCertificate(kubeconfigPath: String, bootstrapKubeconfigPath: String, certificateDirectory: String,
                                             nodeName: String, options: Options = Options())
        async throws(ClientCertificateError) -> Outcome
    {
        switch try existingValidity(kubeconfigPath: kubeconfigPath) {
        case .valid(let notAfter):
            options.log?("kubeconfig \(kubeconfigPath) exists and is valid, skipping bootstrap")
            return Outcome(bootstrapped: false, csrName: nil, kubeconfigPath: kubeconfigPath, notAfter: notAfter)
        case .invalid(let reason):
            options.log?("kubeconfig \(kubeconfigPath): \(reason); using the bootstrap kubeconfig \(bootstrapKubeconfigPath)")
        }
        guard !nodeName.isEmpty else { throw ClientCertificateError(.key, message: "no node name to ask a certificate for") }
        guard !bootstrapKubeconfigPath.isEmpty else {
            throw ClientCertificateError(.kubeconfig, path: kubeconfigPath, message: "no valid kubeconfig and no bootstrap kubeconfig")
        }
        let bootstrap: KubeConfig
        let configuration: KubeClientConfiguration
        do {
            bootstrap = try KubeConfig.load(path: bootstrapKubeconfigPath)
            configuration = try bootstrap.clientConfiguration()
        } catch {
            throw ClientCertificateError(.kubeconfig, path: bootstrapKubeconfigPath, message: "unable to load bootstrap kubeconfig: \(error)",
                                         configError: error)
        }
        let client = KubeClient(configuration: configuration)
        let store = ClientCertificateStore(directory: certificateDirectory)

        // The key: the current pair's when it is usable, else the tmp key (made when missing).
        let temporaryKeyPath = (certificateDirectory as NSString).appendingPathComponent(temporaryKeyFileName)
        let keyPEM: [UInt8]
        if let current = store.current() {
            options.log?("reusing the key of \(current.file)")
            keyPEM = current.keyPEM
        } else {
            keyPEM = try loadOrGenerateKey(temporaryKeyPath)
        }

        await waitForServer(client, timeout: options.serverWaitTimeout, log: options.log)

        let made = try NodeCertificateSigning.makeRequest(keyPEM: keyPEM, nodeName: nodeName)
        let (name, uid) = try await NodeCertificateSigning.request(client: client, requestPEM: made.requestPEM, keyPEM: keyPEM,
                                                                   name: made.digestedName)
        options.log?("waiting for CSR \(name) (system:node:\(nodeName)) to be approved and issued")
        let certificate = try await NodeCertificateSigning.waitForCertificate(client: client, name: name, uid: uid, timeout: options.timeout,
                                                                              log: options.log)
        let pair: ClientCertificateStore.Pair
        do {
            pair = try store.update(certificatePEM: certificate, keyPEM: keyPEM)
        } catch {
            var error = error
            error.csrName = name
            throw error
        }
        unlink(temporaryKeyPath)
        try writeKubeconfig(at: kubeconfigPath, bootstrap: bootstrap, certificatePath: store.currentPath)
        options.log?("wrote \(pair.file) (valid until \(pair.notAfter)) and kubeconfig \(kubeconfigPath)")
        return Outcome(bootstrapped: true, csrName: name, kubeconfigPath: kubeconfigPath, notAfter: pair.earliestNotAfter)
    }

    /// Whether an existing kubeconfig can be used as it is.
    enum Validity {
        case valid(notAfter: Date)
        case invalid(String)
    }

    /// The kubelet's `isClientConfigStillValid`: a missing or unusable kubeconfig, one without a
    /// client certificate and key that match, or one with an expired certificate is invalid
    /// (bootstrap); a file that exists but cannot be examined (`stat` fails) is an error.
    static func existingValidity(kubeconfigPath: String) throws(ClientCertificateError) -> Validity {
        var info = stat()
        if stat(kubeconfigPath, &info) != 0 {
            if errno == ENOENT { return .invalid("no such file") }
            throw ClientCertificateError(.kubeconfig, path: kubeconfigPath,
                                         message: "error reading existing kubeconfig: \(String(cString: strerror(errno)))")
        }
        let configuration: KubeClientConfiguration
        do {
            configuration = try KubeConfig.load(path: kubeconfigPath).clientConfiguration()
        } catch {
            return .invalid("unable to read it: \(error)")
        }
        guard let certificate = configuration.clientCertificatePEM, let key = configuration.clientKeyPEM else {
            return .invalid("no client certificate")
        }
        let validity: [CertificateCrypto.Validity]
        switch CertificateCrypto.validity(certificate) {
        case .success(let parsed): validity = parsed
        case .failure(let error): return .invalid("its client certificate does not parse: \(error.message)")
        }
        if let reason = CertificateCrypto.keyMismatch(certificatePEM: certificate, keyPEM: key) {
            return .invalid("its client certificate and key do not match: \(reason)")
        }
        let notAfter = validity.map(\.notAfter).min()!
        if notAfter < Date() { return .invalid("part of its client certificate expired at \(notAfter)") }
        return .valid(notAfter: notAfter)
    }

    /// keyutil's `LoadOrGenerateKeyFile`: the key in `path` when it is usable, else a new P-256
    /// key written there (mode 0600).
    static func loadOrGenerateKey(_ path: String) throws(ClientCertificateError) -> [UInt8] {
        if let data = FileManager.default.contents(atPath: path), let key = CertificateCrypto.loadKey(Array(data)) { return key }
        let key = try CertificateCrypto.generateKey()
        try ClientCertificateStore.makeDirectory((path as NSString).deletingLastPathComponent, mode: 0o755)
        try ClientCertificateStore.writeAtomically(key, to: path, mode: 0o600)
        return key
    }

    /// The kubelet's `waitForServer`: `/healthz` every 2 s until it answers 200 or `timeout`
    /// passes (then the request is made anyway).
    static func waitForServer(_ client: KubeClient, timeout: Duration, log: (@Sendable (String) -> Void)?) async {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, !Task.isCancelled {
            do {
                let response = try await client.send(method: "GET", path: "/healthz")
                if response.status == 200 { return }
                log?("waiting for the API server: /healthz answered \(response.status)")
            } catch {
                log?("waiting for the API server: \(error)")
            }
            try? await Task.sleep(for: .seconds(2))
        }
        log?("timed out waiting for the API server's /healthz; asking anyway")
    }

    /// The kubelet's `writeKubeconfigFromBootstrapping`: `default-cluster` (the bootstrap
    /// cluster's server, CA file or data, insecure flag), `default-auth` (certificate and key
    /// both `certificatePath`), `default-context` (namespace `default`), current. Written
    /// atomically, mode 0600.
    static func writeKubeconfig(at path: String, bootstrap: KubeConfig, certificatePath: String) throws(ClientCertificateError) {
        guard let contextName = bootstrap.currentContext, let clusterName = bootstrap.contexts[contextName]?.cluster,
              let cluster = bootstrap.clusters[clusterName], let server = cluster.server
        else {
            throw ClientCertificateError(.kubeconfig, path: bootstrap.files.first, message: "no current context with a cluster and server")
        }
        var lines = ["apiVersion: v1", "kind: Config", "clusters:", "- cluster:"]
        if let file = cluster.certificateAuthority {
            lines.append("    certificate-authority: \(quoted(file))")
        } else if let data = cluster.certificateAuthorityData {
            lines.append("    certificate-authority-data: \(Data(data).base64EncodedString())")
        }
        if cluster.insecureSkipTLSVerify { lines.append("    insecure-skip-tls-verify: true") }
        lines += [
            "    server: \(quoted(server))",
            "  name: default-cluster",
            "contexts:",
            "- context:",
            "    cluster: default-cluster",
            "    namespace: default",
            "    user: default-auth",
            "  name: default-context",
            "current-context: default-context",
            "preferences: {}",
            "users:",
            "- name: default-auth",
            "  user:",
            "    client-certificate: \(quoted(certificatePath))",
            "    client-key: \(quoted(certificatePath))",
        ]
        let absolute = KubeConfig.absolutePath(path, relativeTo: FileManager.default.currentDirectoryPath)
        try ClientCertificateStore.makeDirectory((absolute as NSString).deletingLastPathComponent, mode: 0o755)
        try ClientCertificateStore.writeAtomically(Array((lines.joined(separator: "\n") + "\n").utf8), to: absolute, mode: 0o600)
    }

    /// A YAML double-quoted scalar.
    private static func quoted(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    out += String(format: "\\x%02x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
