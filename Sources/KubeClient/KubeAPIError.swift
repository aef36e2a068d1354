/// A failed API call: an HTTP error status with the server's metav1.Status, or a transport,
/// encoding or decoding failure, with the method and path that failed.
///
/// Distinguish outcomes with ``isNotFound``, ``isConflict``, ``isAlreadyExists``, ``isGone``,
/// ``isForbidden`` and friends rather than comparing codes by hand.
public struct KubeAPIError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        /// The server answered with a non-2xx status (or a watch's ERROR event).
        public static let status = Kind(name: "status")
        /// No complete HTTP exchange: connection, TLS, timeout.
        public static let transport = Kind(name: "transport")
        /// The response was not the JSON expected.
        public static let decoding = Kind(name: "decoding")
        /// The request's object could not be encoded.
        public static let encoding = Kind(name: "encoding")
        /// The caller's task was cancelled.
        public static let cancelled = Kind(name: "cancelled")
        /// The client's credentials could not be used (e.g. an unreadable token file).
        public static let credentials = Kind(name: "credentials")
        public var description: String { name }
    }

    /// The kind of failure.
    public var kind: Kind
    /// The HTTP status (for `.status`: the response's code, or a watch ERROR event's `code`); 0 otherwise.
    public var httpStatus: Int
    /// The decoded metav1.Status, when the server sent one.
    public var status: APIStatus?
    /// The request's method ("" when not tied to one request).
    public var method: String
    /// The request's path and query.
    public var path: String
    /// More context: the transport's message, the decoder's complaint, or the raw body of a
    /// non-Status error response.
    public var detail: String

    /// Makes an error.
    public init(_ kind: Kind, httpStatus: Int = 0, status: APIStatus? = nil, method: String = "", path: String = "", detail: String = "") {
        self.kind = kind
        self.httpStatus = httpStatus
        self.status = status
        self.method = method
        self.path = path
        self.detail = detail
    }

    /// The Status's reason (`NotFound`, `Conflict`, …), if any.
    public var reason: String? { status?.reason }
    /// The Status's message, if any.
    public var message: String? { status?.message }

    private func code(_ value: Int) -> Bool { kind == .status && httpStatus == value }

    /// 404: the object (or the namespace, or the resource) does not exist.
    public var isNotFound: Bool { code(404) }
    /// 409 with reason `Conflict`: an update with a stale resourceVersion (optimistic concurrency).
    public var isConflict: Bool { code(409) && reason != "AlreadyExists" }
    /// 409 with reason `AlreadyExists`: a create of a name that is taken.
    public var isAlreadyExists: Bool { code(409) && reason == "AlreadyExists" }
    /// 410 (or reason `Expired`/`Gone`): a list or watch resourceVersion too old; relist.
    public var isGone: Bool { code(410) || (kind == .status && (reason == "Expired" || reason == "Gone")) }
    /// 403: authenticated but not allowed (RBAC, the Node authorizer, NodeRestriction).
    public var isForbidden: Bool { code(403) }
    /// 401: the credentials were not accepted.
    public var isUnauthorized: Bool { code(401) }
    /// 422: the object failed validation.
    public var isInvalid: Bool { code(422) }
    /// 429: throttled; see ``retryAfterSeconds``.
    public var isTooManyRequests: Bool { code(429) }
    /// 5xx.
    public var isServerError: Bool { kind == .status && httpStatus >= 500 }
    /// 504 or reason `Timeout`.
    public var isTimeout: Bool { code(504) || (kind == .status && reason == "Timeout") }
    /// The server's suggested delay before a retry.
    public var retryAfterSeconds: Int? { status?.details?.retryAfterSeconds }

    /// Transport failures, throttling and transient server errors: worth retrying with backoff.
    public var isTransient: Bool {
        kind == .transport || isTooManyRequests || isTimeout || code(500) || code(502) || code(503)
    }

    public var description: String {
        var text = method.isEmpty ? "" : "\(method) \(path): "
        switch kind {
        case .status:
            text += "\(httpStatus)"
            if let reason { text += " \(reason)" }
            if let message { text += ": \(message)" } else if !detail.isEmpty { text += ": \(detail)" }
        default:
            text += "\(kind) error"
            if !detail.isEmpty { text += ": \(detail)" }
        }
        return text
    }
}
