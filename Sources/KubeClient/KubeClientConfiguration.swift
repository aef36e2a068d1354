import Foundation

/// Everything a ``KubeClient`` needs to reach one API server as one identity: the server, how
/// to trust it, and the credentials. Made from a kubeconfig by
/// ``KubeConfig/clientConfiguration(context:)`` or by hand.
public struct KubeClientConfiguration: Sendable, Hashable {
    /// `https://host:port`, maybe with a path prefix.
    public var server: String
    /// PEM certificates to trust for the server (nil: the system's CAs).
    public var certificateAuthorityPEM: [UInt8]?
    /// Skip verifying the server's certificate and name.
    public var insecureSkipTLSVerify: Bool
    /// The client certificate (PEM) for TLS client authentication.
    public var clientCertificatePEM: [UInt8]?
    /// The client certificate's private key (PEM).
    public var clientKeyPEM: [UInt8]?
    /// The file ``clientCertificatePEM`` was read from (a kubeconfig's `client-certificate`), if
    /// any: a ``KubeClient`` re-reads it when it changes (certificate rotation).
    public var clientCertificateFile: String?
    /// The file ``clientKeyPEM`` was read from (`client-key`), if any; re-read likewise.
    public var clientKeyFile: String?
    /// A bearer token sent as `Authorization: Bearer …`.
    public var bearerToken: String?
    /// A file holding a bearer token, read on every request (wins over ``bearerToken`` when set
    /// and readable, as client-go's cached file token source does).
    public var bearerTokenFile: String?
    /// The context's namespace (`default` when it names none).
    public var namespace: String
    /// The `User-Agent` header.
    public var userAgent: String
    /// The limit on one non-watch request, in seconds (0 for none).
    public var requestTimeoutSeconds: Int
    /// The limit on connecting, in seconds.
    public var connectTimeoutSeconds: Int

    /// A configuration made by hand.
    public init(server: String, certificateAuthorityPEM: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false,
                clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil, bearerToken: String? = nil,
                bearerTokenFile: String? = nil, namespace: String = "default", userAgent: String = "swiftlet/0.1",
                requestTimeoutSeconds: Int = 60, connectTimeoutSeconds: Int = 10, clientCertificateFile: String? = nil,
                clientKeyFile: String? = nil) {
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.bearerToken = bearerToken
        self.bearerTokenFile = bearerTokenFile
        self.namespace = namespace
        self.userAgent = userAgent
        self.requestTimeoutSeconds = requestTimeoutSeconds
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.clientCertificateFile = clientCertificateFile
        self.clientKeyFile = clientKeyFile
    }
}

extension KubeConfig {
    /// Resolves a context (the current one unless named) into a client configuration: reads the
    /// certificate files it names, checks that certificates and keys are PEM, that the
    /// server is an http(s) URL, and that the user has credentials this client supports.
    public func clientConfiguration(context name: String? = nil) throws(KubeConfigError) -> KubeClientConfiguration {
        let mainFile = files.first ?? ""
        guard let contextName = name ?? currentContext else {
            throw KubeConfigError(file: mainFile, key: "current-context", reason: .missingKey)
        }
        guard let context = contexts[contextName] else {
            let key = name == nil ? "current-context" : "contexts"
            throw KubeConfigError(file: name == nil ? currentContextSource : mainFile, key: key, reason: .undefinedReference(contextName))
        }
        let contextKey = "contexts[\(contextName)].context"
        guard let clusterName = context.cluster else { throw KubeConfigError(file: context.source, key: "\(contextKey).cluster", reason: .missingKey) }
        guard let cluster = clusters[clusterName] else {
            throw KubeConfigError(file: context.source, key: "\(contextKey).cluster", reason: .undefinedReference(clusterName))
        }
        let clusterKey = "clusters[\(clusterName)].cluster"
        guard let server = cluster.server else { throw KubeConfigError(file: cluster.source, key: "\(clusterKey).server", reason: .missingKey) }
        guard server.hasPrefix("https://") || server.hasPrefix("http://"), URL(string: server)?.host != nil else {
            throw KubeConfigError(file: cluster.source, key: "\(clusterKey).server", reason: .invalidValue("\"\(server)\" is not an http(s) URL"))
        }

        var ca: [UInt8]?
        if let data = cluster.certificateAuthorityData {
            ca = data
            if let problem = PEM.checkCertificates(data) {
                throw KubeConfigError(file: cluster.source, key: "\(clusterKey).certificate-authority-data", reason: problem)
            }
        } else if let path = cluster.certificateAuthority {
            let data = try Self.readData(path, file: cluster.source, key: "\(clusterKey).certificate-authority")
            if let problem = PEM.checkCertificates(data) {
                throw KubeConfigError(file: cluster.source, key: "\(clusterKey).certificate-authority (\(path))", reason: problem)
            }
            ca = data
        }
        if cluster.insecureSkipTLSVerify, ca != nil {
            throw KubeConfigError(file: cluster.source, key: "\(clusterKey).insecure-skip-tls-verify",
                                  reason: .invalidValue("certificate-authority and insecure-skip-tls-verify are mutually exclusive"))
        }

        var result = KubeClientConfiguration(server: server, certificateAuthorityPEM: ca, insecureSkipTLSVerify: cluster.insecureSkipTLSVerify,
                                             namespace: context.namespace ?? "default")
        guard let userName = context.user else { return result }  // anonymous
        guard let user = users[userName] else {
            throw KubeConfigError(file: context.source, key: "\(contextKey).user", reason: .undefinedReference(userName))
        }
        let userKey = "users[\(userName)].user"
        result.clientCertificatePEM = try user.pem(data: user.clientCertificateData, path: user.clientCertificate,
                                                   key: "\(userKey).client-certificate", check: PEM.checkCertificates)
        result.clientKeyPEM = try user.pem(data: user.clientKeyData, path: user.clientKey, key: "\(userKey).client-key",
                                           check: PEM.checkPrivateKey)
        result.clientCertificateFile = user.clientCertificateData == nil ? user.clientCertificate : nil
        result.clientKeyFile = user.clientKeyData == nil ? user.clientKey : nil
        if (result.clientCertificatePEM == nil) != (result.clientKeyPEM == nil) {
            let missing = result.clientKeyPEM == nil ? "client-key" : "client-certificate"
            throw KubeConfigError(file: user.source, key: "\(userKey).\(missing)(-data)",
                                  reason: .invalidValue("a client certificate needs both certificate and key"))
        }
        result.bearerToken = user.token
        if let tokenFile = user.tokenFile {
            _ = try Self.readData(tokenFile, file: user.source, key: "\(userKey).tokenFile")
            result.bearerTokenFile = tokenFile
        }
        if result.clientCertificatePEM == nil, result.bearerToken == nil, result.bearerTokenFile == nil, let first = user.unsupported.first {
            throw KubeConfigError(file: user.source, key: "\(userKey).\(first)", reason: .unsupported("\(first) credentials"))
        }
        return result
    }
}

extension KubeConfig.AuthInfo {
    /// The `-data` bytes, else the file's, checked as PEM; errors name the key that was used.
    fileprivate func pem(data: [UInt8]?, path: String?, key: String,
                         check: ([UInt8]) -> KubeConfigError.Reason?) throws(KubeConfigError) -> [UInt8]? {
        if let data {
            if let problem = check(data) { throw KubeConfigError(file: source, key: "\(key)-data", reason: problem) }
            return data
        }
        guard let path else { return nil }
        let bytes = try KubeConfig.readData(path, file: source, key: key)
        if let problem = check(bytes) { throw KubeConfigError(file: source, key: "\(key) (\(path))", reason: problem) }
        return bytes
    }
}
