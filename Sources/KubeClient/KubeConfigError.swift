/// A kubeconfig that cannot be used, naming the file, the key and the reason, e.g.
/// `kubeconfig /etc/kubernetes/node.kubeconfig: users[system:node:n1].user.client-key-data: invalid PEM: no "-----BEGIN" line`.
public struct KubeConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why the kubeconfig cannot be used.
    public enum Reason: Error, Sendable, Hashable, CustomStringConvertible {
        /// The file (or a file it names) does not exist.
        case fileNotFound
        /// The file exists but cannot be read.
        case unreadable(String)
        /// Not YAML, or not a kubeconfig's shape.
        case invalidYAML(String)
        /// A required key is absent or empty.
        case missingKey
        /// A value of the wrong kind or format (e.g. not base64, not a URL).
        case invalidValue(String)
        /// A context, cluster or user named but not defined.
        case undefinedReference(String)
        /// Certificate or key data that is not PEM of the expected kind.
        case invalidPEM(String)
        /// A feature this client does not implement (exec plugins, auth providers, basic auth).
        case unsupported(String)
        /// No kubeconfig: no explicit path, no file in `KUBECONFIG`, no `~/.kube/config`.
        case noConfiguration

        public var description: String {
            switch self {
            case .fileNotFound: return "no such file"
            case .unreadable(let why): return "cannot read: \(why)"
            case .invalidYAML(let why): return "invalid kubeconfig YAML: \(why)"
            case .missingKey: return "missing or empty"
            case .invalidValue(let why): return "invalid value: \(why)"
            case .undefinedReference(let name): return "refers to \"\(name)\", which is not defined"
            case .invalidPEM(let why): return "invalid PEM: \(why)"
            case .unsupported(let what): return "not supported: \(what)"
            case .noConfiguration: return "no kubeconfig found (no explicit path, KUBECONFIG, or ~/.kube/config)"
            }
        }
    }

    /// The kubeconfig file concerned (or the file a key names, for a missing certificate file).
    public var file: String
    /// The key concerned, as a path: `current-context`, `clusters[local].cluster.server`, ….
    public var key: String?
    /// What is wrong.
    public var reason: Reason

    /// Makes an error.
    public init(file: String, key: String? = nil, reason: Reason) {
        self.file = file
        self.key = key
        self.reason = reason
    }

    public var description: String {
        "kubeconfig \(file): " + (key.map { "\($0): " } ?? "") + reason.description
    }
}
