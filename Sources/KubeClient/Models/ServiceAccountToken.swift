/// authentication.k8s.io/v1 TokenRequest: created as the `token` subresource of a service account
/// (`POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`) for a bound, expiring token.
public struct TokenRequest: Codable, Sendable, Hashable {
    public var apiVersion: String? = "authentication.k8s.io/v1"
    public var kind: String? = "TokenRequest"
    public var metadata: ObjectMeta?
    public var spec: TokenRequestSpec
    public var status: TokenRequestStatus?

    public init(metadata: ObjectMeta? = nil, spec: TokenRequestSpec, status: TokenRequestStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// authentication.k8s.io/v1 TokenRequestSpec.
public struct TokenRequestSpec: Codable, Sendable, Hashable {
    /// Empty: the API server's own audiences.
    public var audiences: [String]
    public var expirationSeconds: Int64?
    /// The pod the token is bound to (it stops being valid when the pod is gone).
    public var boundObjectRef: BoundObjectReference?
    public init(audiences: [String] = [], expirationSeconds: Int64? = nil, boundObjectRef: BoundObjectReference? = nil) {
        self.audiences = audiences
        self.expirationSeconds = expirationSeconds
        self.boundObjectRef = boundObjectRef
    }

    private enum CodingKeys: String, CodingKey { case audiences, expirationSeconds, boundObjectRef }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        audiences = try container.decodeIfPresent([String].self, forKey: .audiences) ?? []
        expirationSeconds = try container.decodeIfPresent(Int64.self, forKey: .expirationSeconds)
        boundObjectRef = try container.decodeIfPresent(BoundObjectReference.self, forKey: .boundObjectRef)
    }
}

/// authentication.k8s.io/v1 BoundObjectReference (a `Pod` or a `Secret`).
public struct BoundObjectReference: Codable, Sendable, Hashable {
    public var kind: String?
    public var apiVersion: String?
    public var name: String?
    public var uid: String?
    public init(kind: String? = "Pod", apiVersion: String? = "v1", name: String? = nil, uid: String? = nil) {
        self.kind = kind
        self.apiVersion = apiVersion
        self.name = name
        self.uid = uid
    }
}

/// authentication.k8s.io/v1 TokenRequestStatus.
public struct TokenRequestStatus: Codable, Sendable, Hashable {
    public var token: String
    /// metav1.Time (RFC 3339).
    public var expirationTimestamp: String
    public init(token: String, expirationTimestamp: String) {
        self.token = token
        self.expirationTimestamp = expirationTimestamp
    }
}
