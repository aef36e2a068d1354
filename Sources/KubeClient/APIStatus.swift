/// metav1.Status: what the API server answers for failures (and some deletes), and what a
/// watch's ERROR event carries.
public struct APIStatus: Codable, Sendable, Hashable {
    /// "Success" or "Failure".
    public var status: String?
    /// A human-readable description, e.g. `pods "x" not found`.
    public var message: String?
    /// A machine-readable reason, e.g. `NotFound`, `AlreadyExists`, `Conflict`, `Expired`.
    public var reason: String?
    /// The HTTP status code this status stands for.
    public var code: Int?
    /// Extended data: the object concerned, causes, a retry delay.
    public var details: Details?

    /// metav1.StatusDetails.
    public struct Details: Codable, Sendable, Hashable {
        public var name: String?
        public var group: String?
        public var kind: String?
        public var uid: String?
        public var causes: [Cause]?
        public var retryAfterSeconds: Int?
    }

    /// metav1.StatusCause: one field's problem.
    public struct Cause: Codable, Sendable, Hashable {
        public var reason: String?
        public var message: String?
        public var field: String?
    }

    /// A status made by hand (tests; synthesized failures).
    public init(status: String? = "Failure", message: String? = nil, reason: String? = nil, code: Int? = nil, details: Details? = nil) {
        self.status = status
        self.message = message
        self.reason = reason
        self.code = code
        self.details = details
    }

    /// Reads a Status from a JSON document when it is one (`kind: Status`).
    init?(_ value: JSONValue) {
        guard value["kind"]?.stringValue == "Status", let decoded = try? value.decode(as: APIStatus.self) else { return nil }
        self = decoded
    }
}
