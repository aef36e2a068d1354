/// What a request asks of the node, as the kubelet's `NodeAuthorizerAttributesGetter` puts it
/// for a SubjectAccessReview: always a resource request on `nodes/<subresource>` named after
/// the node (API group "", version v1, no namespace), and the request's path.
public struct KubeletRequestAttributes: Sendable, Hashable {
    /// The authenticated (or anonymous) caller.
    public var user: KubeletUser
    /// get, create, update, patch or delete from the HTTP method; "" for any other method.
    public var verb: String
    public var apiGroup: String = ""
    public var apiVersion: String = "v1"
    public var namespace: String = ""
    public var resource: String = "nodes"
    /// stats, metrics, log, spec or proxy (everything else).
    public var subresource: String
    /// The node's name.
    public var name: String
    /// The URL path (percent-decoded).
    public var path: String

    public init(user: KubeletUser, verb: String, subresource: String, name: String, path: String) {
        self.user = user
        self.verb = verb
        self.subresource = subresource
        self.name = name
        self.path = path
    }

    /// The kubelet's attributes for a request (`pkg/kubelet/server/auth.go`): verb from the
    /// method (GET get, POST create, PUT update, PATCH patch, DELETE delete; a WebSocket
    /// upgrade GET to exec, attach or portForward create, as SPDY's POST); subresource
    /// `stats` under /stats, `metrics` under /metrics, `log` under /logs, `spec` under /spec,
    /// `proxy` for every other path.
    public static func forRequest(
        user: KubeletUser, method: String, path: String, isWebSocketUpgrade: Bool = false, nodeName: String
    ) -> KubeletRequestAttributes {
        var verb: String
        switch method {
        case "POST": verb = "create"
        case "GET": verb = "get"
        case "PUT": verb = "update"
        case "PATCH": verb = "patch"
        case "DELETE": verb = "delete"
        default: verb = ""
        }
        if verb == "get", isWebSocketUpgrade,
           ["/exec", "/attach", "/portForward"].contains(where: { isSubpath(path, of: $0) }) {
            verb = "create"
        }
        let subresource: String
        switch true {
        case isSubpath(path, of: "/stats/"): subresource = "stats"
        case isSubpath(path, of: "/metrics"): subresource = "metrics"
        case isSubpath(path, of: "/logs/"): subresource = "log"
        case isSubpath(path, of: "/spec/"): subresource = "spec"
        default: subresource = "proxy"
        }
        return KubeletRequestAttributes(user: user, verb: verb, subresource: subresource, name: nodeName, path: path)
    }

    /// The kubelet's `isSubpath`: `path` (without a trailing slash) itself or below it.
    static func isSubpath(_ subpath: String, of path: String) -> Bool {
        let path = path.hasSuffix("/") ? String(path.dropLast()) : path
        return subpath == path || subpath.hasPrefix(path + "/")
    }
}

/// An authorizer's answer.
public enum AuthorizationDecision: Sendable, Hashable {
    case allow
    /// 403; the reason is logged, not sent.
    case deny(reason: String)
    /// 403, as a denial (the kubelet allows only `DecisionAllow`).
    case noOpinion
}

/// Authorizes kubelet API requests (the kubelet's `authorization.mode: Webhook`): the lead's
/// implementation asks the API server with a SubjectAccessReview. A thrown error answers 500
/// `Authorization error (user=…, verb=…, resource=…, subresource=…)`.
public protocol Authorizer: Sendable {
    func authorize(_ attributes: KubeletRequestAttributes) async throws -> AuthorizationDecision
}

/// `authorization.mode: AlwaysAllow`.
public struct AlwaysAllowAuthorizer: Authorizer {
    public init() {}
    public func authorize(_ attributes: KubeletRequestAttributes) async throws -> AuthorizationDecision { .allow }
}
