/// Why a client certificate could not be bootstrapped or rotated, with the CSR, file or
/// kubeconfig concerned, e.g.
/// `client certificate: CSR node-csr-AbC… denied (NotAllowed: nodes may not …)`.
public struct ClientCertificateError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        /// A kubeconfig (the bootstrap one, or the one to write) cannot be used.
        public static let kubeconfig = Kind(name: "kubeconfig")
        /// A private key or certificate request could not be made or read.
        public static let key = Kind(name: "key")
        /// An API call about the CSR failed (creating, reading or watching it).
        public static let request = Kind(name: "request")
        /// A CSR of the name already exists and is not ours (another subject, key or signer).
        public static let incompatible = Kind(name: "incompatible")
        /// The CSR was denied (by an administrator or an approver).
        public static let denied = Kind(name: "denied")
        /// The signer failed the CSR.
        public static let failed = Kind(name: "failed")
        /// The CSR was deleted (or replaced) while waiting.
        public static let deleted = Kind(name: "deleted")
        /// The CSR was not approved and issued in time.
        public static let timeout = Kind(name: "timeout")
        /// The issued certificate is not PEM, or not for our key.
        public static let certificate = Kind(name: "certificate")
        /// Writing the certificate, key, symlink or kubeconfig failed.
        public static let storage = Kind(name: "storage")
        /// The current certificate has expired and no new one could be had (re-bootstrap).
        public static let expired = Kind(name: "expired")
        /// The calling task was cancelled.
        public static let cancelled = Kind(name: "cancelled")
        public var description: String { name }
    }

    /// The kind of failure.
    public var kind: Kind
    /// The CSR concerned, when there is one.
    public var csrName: String?
    /// The file concerned, when there is one.
    public var path: String?
    /// For a denied or failed CSR: the condition's reason.
    public var reason: String?
    /// What happened, in words (the condition's message, the OS's or OpenSSL's error, …).
    public var message: String
    /// The API error behind a `.request` failure.
    public var apiError: KubeAPIError?
    /// The kubeconfig error behind a `.kubeconfig` failure.
    public var configError: KubeConfigError?

    /// Makes an error.
    public init(_ kind: Kind, csrName: String? = nil, path: String? = nil, reason: String? = nil, message: String,
                apiError: KubeAPIError? = nil, configError: KubeConfigError? = nil) {
        self.kind = kind
        self.csrName = csrName
        self.path = path
        self.reason = reason
        self.message = message
        self.apiError = apiError
        self.configError = configError
    }

    public var description: String {
        var text = "client certificate: "
        if let csrName { text += "CSR \(csrName) " }
        switch kind {
        case .denied, .failed:
            text += kind == .denied ? "denied" : "failed"
            text += reason.map { " (\($0): " } ?? " ("
            text += (message.isEmpty ? "no message" : message) + ")"
            return text
        case .timeout:
            return text + "not approved and issued in time: " + message
        default:
            if let path { text += "\(path): " }
            return text + message
        }
    }

    static func request(_ what: String, csrName: String? = nil, _ error: KubeAPIError) -> ClientCertificateError {
        if error.kind == .cancelled { return ClientCertificateError(.cancelled, csrName: csrName, message: "cancelled while \(what)") }
        return ClientCertificateError(.request, csrName: csrName, message: "\(what): \(error)", apiError: error)
    }
}
