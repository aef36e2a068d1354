import KubeClient

/// Why the node agent could not do something, with the context an operator needs.
public struct NodeError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure.
    public enum Kind: Sendable, Hashable {
        /// A flag or config value the node cannot work with.
        case invalidConfiguration
        /// The API server refused or failed a request.
        case api
        /// The runtime (CRI) failed a call.
        case runtime
        /// A pod cannot run here as specified.
        case podSpec
        /// A file or system call failed.
        case system
    }

    public var kind: Kind
    public var detail: String
    /// The errno, for `.system`.
    public var errno: Int32?
    /// The API error underneath, for `.api`.
    public var apiError: KubeAPIError?

    public init(_ kind: Kind, detail: String, errno: Int32? = nil, apiError: KubeAPIError? = nil) {
        self.kind = kind
        self.detail = detail
        self.errno = errno
        self.apiError = apiError
    }

    public var description: String {
        if let apiError { return "\(detail): \(apiError)" }
        return detail
    }
}
