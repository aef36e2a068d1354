import Foundation

/// certificates.k8s.io/v1 CertificateSigningRequest (served from 1.19; 1.20 is the project's
/// API server): a PKCS #10 request for a signer, approved or denied by a controller or an
/// administrator, then issued by the signer into `status.certificate`.
///
/// The kubelet's client certificate: signer ``kubeletClientSigner``, usages ``kubeletClientUsages``,
/// a request for `O=system:nodes, CN=system:node:<name>`.
public struct CertificateSigningRequest: Codable, Sendable, Hashable {
    public var apiVersion: String? = "certificates.k8s.io/v1"
    public var kind: String? = "CertificateSigningRequest"
    public var metadata: ObjectMeta
    public var spec: CertificateSigningRequestSpec
    public var status: CertificateSigningRequestStatus?

    public init(metadata: ObjectMeta, spec: CertificateSigningRequestSpec, status: CertificateSigningRequestStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    /// The collection: `/apis/certificates.k8s.io/v1/certificatesigningrequests`.
    public static let collectionPath = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
    /// One request's path (cluster-scoped).
    public static func path(_ name: String) -> String { collectionPath + "/" + name }
    /// The subresource through which requests are approved or denied (PUT the object with the
    /// condition added).
    public static func approvalPath(_ name: String) -> String { path(name) + "/approval" }

    /// The signer of kubelets' client certificates (`kubernetes.io/kube-apiserver-client-kubelet`),
    /// whose requests the controller manager's csrapproving controller may approve by itself.
    public static let kubeletClientSigner = "kubernetes.io/kube-apiserver-client-kubelet"
    /// The usages the kubelet asks for, in its order: `digital signature`, `key encipherment`,
    /// `client auth` (1.20's approver requires exactly these).
    public static let kubeletClientUsages = ["digital signature", "key encipherment", "client auth"]

    /// The first condition of a type (`Approved`, `Denied`, `Failed`).
    public func condition(_ type: String) -> CertificateSigningRequestCondition? {
        status?.conditions?.first { $0.type == type }
    }

    /// Whether an `Approved` condition is present.
    public var isApproved: Bool { condition(CertificateSigningRequestCondition.approved) != nil }
    /// The issued certificate chain (PEM), when the signer has written it.
    public var issuedCertificatePEM: [UInt8]? {
        guard let encoded = status?.certificate, !encoded.isEmpty, let data = Data(base64Encoded: encoded) else { return nil }
        return data.isEmpty ? nil : Array(data)
    }
}

/// certificates.k8s.io/v1 CertificateSigningRequestSpec. `request` is the PEM request, base64 as
/// JSON carries `[]byte`; `username`, `uid`, `groups` and `extra` are filled by the API server
/// with the creator's identity.
public struct CertificateSigningRequestSpec: Codable, Sendable, Hashable {
    /// The PEM "CERTIFICATE REQUEST", base64-encoded.
    public var request: String
    public var signerName: String?
    /// Key usages (`digital signature`, `key encipherment`, `client auth`, …).
    public var usages: [String]?
    /// The requested lifetime (1.22 and later; earlier servers drop it).
    public var expirationSeconds: Int64?
    public var username: String?
    public var uid: String?
    public var groups: [String]?
    public var extra: [String: [String]]?

    /// A spec for a PEM request.
    public init(requestPEM: [UInt8], signerName: String?, usages: [String]?, expirationSeconds: Int64? = nil) {
        request = Data(requestPEM).base64EncodedString()
        self.signerName = signerName
        self.usages = usages
        self.expirationSeconds = expirationSeconds
    }

    /// The PEM request (nil if `request` is not base64).
    public var requestPEM: [UInt8]? { Data(base64Encoded: request).map(Array.init) }
}

/// certificates.k8s.io/v1 CertificateSigningRequestStatus.
public struct CertificateSigningRequestStatus: Codable, Sendable, Hashable {
    public var conditions: [CertificateSigningRequestCondition]?
    /// The issued certificate chain (PEM), base64-encoded.
    public var certificate: String?

    public init(conditions: [CertificateSigningRequestCondition]? = nil, certificate: String? = nil) {
        self.conditions = conditions
        self.certificate = certificate
    }
}

/// certificates.k8s.io/v1 CertificateSigningRequestCondition: `Approved`, `Denied` or `Failed`
/// (v1 requires `status` "True" for these).
public struct CertificateSigningRequestCondition: Codable, Sendable, Hashable {
    public static let approved = "Approved"
    public static let denied = "Denied"
    public static let failed = "Failed"

    public var type: String
    public var status: String?
    public var reason: String?
    public var message: String?
    public var lastUpdateTime: String?
    public var lastTransitionTime: String?

    public init(type: String, status: String? = "True", reason: String? = nil, message: String? = nil, lastUpdateTime: String? = nil,
                lastTransitionTime: String? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastUpdateTime = lastUpdateTime
        self.lastTransitionTime = lastTransitionTime
    }
}
