/// authentication.k8s.io/v1 TokenReview: the kubelet API asks the API server who a bearer token is.
public struct TokenReview: Codable, Sendable, Hashable {
    public var apiVersion: String? = "authentication.k8s.io/v1"
    public var kind: String? = "TokenReview"
    public var metadata: ObjectMeta?
    public var spec: TokenReviewSpec
    public var status: TokenReviewStatus?

    public init(metadata: ObjectMeta? = nil, spec: TokenReviewSpec, status: TokenReviewStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// authentication.k8s.io/v1 TokenReviewSpec.
public struct TokenReviewSpec: Codable, Sendable, Hashable {
    public var token: String?
    public var audiences: [String]?
    public init(token: String? = nil, audiences: [String]? = nil) {
        self.token = token
        self.audiences = audiences
    }
}

/// authentication.k8s.io/v1 TokenReviewStatus.
public struct TokenReviewStatus: Codable, Sendable, Hashable {
    public var authenticated: Bool?
    public var user: UserInfo?
    /// The audiences the token is valid for (among those asked).
    public var audiences: [String]?
    public var error: String?
    public init(authenticated: Bool? = nil, user: UserInfo? = nil, audiences: [String]? = nil, error: String? = nil) {
        self.authenticated = authenticated
        self.user = user
        self.audiences = audiences
        self.error = error
    }
}

/// authentication.k8s.io/v1 UserInfo.
public struct UserInfo: Codable, Sendable, Hashable {
    public var username: String?
    public var uid: String?
    public var groups: [String]?
    public var extra: [String: [String]]?
    public init(username: String? = nil, uid: String? = nil, groups: [String]? = nil, extra: [String: [String]]? = nil) {
        self.username = username
        self.uid = uid
        self.groups = groups
        self.extra = extra
    }
}

/// authorization.k8s.io/v1 SubjectAccessReview: the kubelet API asks the API server whether a
/// user may do something (`get nodes/proxy`, `create nodes/exec` …).
public struct SubjectAccessReview: Codable, Sendable, Hashable {
    public var apiVersion: String? = "authorization.k8s.io/v1"
    public var kind: String? = "SubjectAccessReview"
    public var metadata: ObjectMeta?
    public var spec: SubjectAccessReviewSpec
    public var status: SubjectAccessReviewStatus?

    public init(metadata: ObjectMeta? = nil, spec: SubjectAccessReviewSpec, status: SubjectAccessReviewStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// authorization.k8s.io/v1 SubjectAccessReviewSpec: exactly one of the attribute sets.
public struct SubjectAccessReviewSpec: Codable, Sendable, Hashable {
    public var resourceAttributes: ResourceAttributes?
    public var nonResourceAttributes: NonResourceAttributes?
    public var user: String?
    public var groups: [String]?
    public var extra: [String: [String]]?
    public var uid: String?
    public init(resourceAttributes: ResourceAttributes? = nil, nonResourceAttributes: NonResourceAttributes? = nil, user: String? = nil,
                groups: [String]? = nil, extra: [String: [String]]? = nil, uid: String? = nil) {
        self.resourceAttributes = resourceAttributes
        self.nonResourceAttributes = nonResourceAttributes
        self.user = user
        self.groups = groups
        self.extra = extra
        self.uid = uid
    }
}

/// authorization.k8s.io/v1 ResourceAttributes.
public struct ResourceAttributes: Codable, Sendable, Hashable {
    public var namespace: String?
    public var verb: String?
    public var group: String?
    public var version: String?
    public var resource: String?
    public var subresource: String?
    public var name: String?
    public init(namespace: String? = nil, verb: String? = nil, group: String? = nil, version: String? = nil, resource: String? = nil,
                subresource: String? = nil, name: String? = nil) {
        self.namespace = namespace
        self.verb = verb
        self.group = group
        self.version = version
        self.resource = resource
        self.subresource = subresource
        self.name = name
    }
}

/// authorization.k8s.io/v1 NonResourceAttributes (`/healthz`, `/metrics`).
public struct NonResourceAttributes: Codable, Sendable, Hashable {
    public var path: String?
    public var verb: String?
    public init(path: String? = nil, verb: String? = nil) {
        self.path = path
        self.verb = verb
    }
}

/// authorization.k8s.io/v1 SubjectAccessReviewStatus.
public struct SubjectAccessReviewStatus: Codable, Sendable, Hashable {
    public var allowed: Bool
    /// True only when an authorizer denied explicitly (not merely had no opinion).
    public var denied: Bool?
    public var reason: String?
    public var evaluationError: String?
    public init(allowed: Bool, denied: Bool? = nil, reason: String? = nil, evaluationError: String? = nil) {
        self.allowed = allowed
        self.denied = denied
        self.reason = reason
        self.evaluationError = evaluationError
    }

    private enum CodingKeys: String, CodingKey { case allowed, denied, reason, evaluationError }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        allowed = try container.decodeIfPresent(Bool.self, forKey: .allowed) ?? false
        denied = try container.decodeIfPresent(Bool.self, forKey: .denied)
        reason = try container.decodeIfPresent(String.self, forKey: .reason)
        evaluationError = try container.decodeIfPresent(String.self, forKey: .evaluationError)
    }
}
