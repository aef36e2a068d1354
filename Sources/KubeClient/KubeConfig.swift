import Foundation
import Yams

/// A kubeconfig file (`apiVersion: v1, kind: Config`): named clusters, users and contexts, and the
/// current context. Relative file paths inside it are made absolute against the file's directory
/// when it is loaded, as client-go does; each entry remembers the file it came from.
///
/// Load one with ``load(path:)`` or with the `KUBECONFIG` conventions through
/// ``load(explicitPath:environment:)``, then turn it into what a ``KubeClient`` needs with
/// ``clientConfiguration(context:)``.
public struct KubeConfig: Sendable, Hashable {
    /// A cluster entry: where the API server is and how to trust it.
    public struct Cluster: Sendable, Hashable {
        /// `server`: `https://host:port` (maybe with a path prefix).
        public var server: String?
        /// `certificate-authority`: a PEM file (absolute after loading).
        public var certificateAuthority: String?
        /// `certificate-authority-data`: PEM bytes (decoded from base64).
        public var certificateAuthorityData: [UInt8]?
        /// `insecure-skip-tls-verify`.
        public var insecureSkipTLSVerify: Bool = false
        /// The file this entry came from.
        public var source: String = ""
        public init() {}
    }

    /// A user (`AuthInfo`) entry: the client's credentials.
    public struct AuthInfo: Sendable, Hashable {
        /// `client-certificate`: a PEM file.
        public var clientCertificate: String?
        /// `client-certificate-data`: PEM bytes.
        public var clientCertificateData: [UInt8]?
        /// `client-key`: a PEM file.
        public var clientKey: String?
        /// `client-key-data`: PEM bytes.
        public var clientKeyData: [UInt8]?
        /// `token`: a bearer token.
        public var token: String?
        /// `tokenFile`: a file holding a bearer token (re-read on every request, as tokens rotate).
        public var tokenFile: String?
        /// Keys present that this client does not implement (`exec`, `auth-provider`, `username`).
        public var unsupported: [String] = []
        /// The file this entry came from.
        public var source: String = ""
        public init() {}
    }

    /// A context entry: a cluster, a user and a default namespace.
    public struct Context: Sendable, Hashable {
        public var cluster: String?
        public var user: String?
        public var namespace: String?
        /// The file this entry came from.
        public var source: String = ""
        public init() {}
    }

    /// Clusters by name.
    public var clusters: [String: Cluster] = [:]
    /// Users by name.
    public var users: [String: AuthInfo] = [:]
    /// Contexts by name.
    public var contexts: [String: Context] = [:]
    /// `current-context`.
    public var currentContext: String?
    /// The file `current-context` came from (for error messages).
    public var currentContextSource: String = ""
    /// The files this configuration was loaded from, in precedence order.
    public var files: [String] = []

    /// An empty configuration.
    public init() {}

    /// Loads one kubeconfig file.
    public static func load(path: String) throws(KubeConfigError) -> KubeConfig {
        let absolute = absolutePath(path, relativeTo: FileManager.default.currentDirectoryPath)
        let text = try readText(absolute, file: absolute, key: nil)
        return try parse(yaml: text, file: absolute)
    }

    /// Parses kubeconfig YAML; `file` names it in errors and anchors relative paths.
    public static func parse(yaml text: String, file: String) throws(KubeConfigError) -> KubeConfig {
        let directory = (file as NSString).deletingLastPathComponent
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw KubeConfigError(file: file, reason: .invalidYAML("\(error)"))
        }
        var config = KubeConfig()
        config.files = [file]
        guard let root else { return config }  // an empty file is an empty config, as client-go reads it
        guard let top = root.mapping else { throw KubeConfigError(file: file, reason: .invalidYAML("the document is not a mapping")) }
        let reader = FieldReader(file: file, directory: directory)

        for (name, body) in try reader.namedEntries(top["clusters"], list: "clusters", field: "cluster") {
            let key = "clusters[\(name)].cluster"
            var cluster = Cluster()
            cluster.source = file
            cluster.server = try reader.string(body?["server"], "\(key).server")
            cluster.certificateAuthority = try reader.path(body?["certificate-authority"], "\(key).certificate-authority")
            cluster.certificateAuthorityData = try reader.base64(body?["certificate-authority-data"], "\(key).certificate-authority-data")
            cluster.insecureSkipTLSVerify = try reader.bool(body?["insecure-skip-tls-verify"], "\(key).insecure-skip-tls-verify") ?? false
            if config.clusters[name] == nil { config.clusters[name] = cluster }
        }
        for (name, body) in try reader.namedEntries(top["users"], list: "users", field: "user") {
            let key = "users[\(name)].user"
            var user = AuthInfo()
            user.source = file
            user.clientCertificate = try reader.path(body?["client-certificate"], "\(key).client-certificate")
            user.clientCertificateData = try reader.base64(body?["client-certificate-data"], "\(key).client-certificate-data")
            user.clientKey = try reader.path(body?["client-key"], "\(key).client-key")
            user.clientKeyData = try reader.base64(body?["client-key-data"], "\(key).client-key-data")
            user.token = try reader.string(body?["token"], "\(key).token")
            user.tokenFile = try reader.path(body?["tokenFile"], "\(key).tokenFile")
            user.unsupported = ["exec", "auth-provider", "username", "password"].filter { body?[$0] != nil }
            if config.users[name] == nil { config.users[name] = user }
        }
        for (name, body) in try reader.namedEntries(top["contexts"], list: "contexts", field: "context") {
            let key = "contexts[\(name)].context"
            var context = Context()
            context.source = file
            context.cluster = try reader.string(body?["cluster"], "\(key).cluster")
            context.user = try reader.string(body?["user"], "\(key).user")
            context.namespace = try reader.string(body?["namespace"], "\(key).namespace")
            if config.contexts[name] == nil { config.contexts[name] = context }
        }
        config.currentContext = try reader.string(top["current-context"], "current-context")
        config.currentContextSource = file
        return config
    }

    static func absolutePath(_ path: String, relativeTo directory: String) -> String {
        if path.hasPrefix("/") { return path }
        return ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent(path)
    }

    static func readData(_ path: String, file: String, key: String?) throws(KubeConfigError) -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw KubeConfigError(file: key == nil ? path : file, key: key.map { "\($0) (\(path))" }, reason: .fileNotFound)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KubeConfigError(file: key == nil ? path : file, key: key.map { "\($0) (\(path))" },
                                  reason: .unreadable(String(cString: strerror(errno))))
        }
        return Array(data)
    }

    static func readText(_ path: String, file: String, key: String?) throws(KubeConfigError) -> String {
        let bytes = try readData(path, file: file, key: key)
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw KubeConfigError(file: file, key: key, reason: .unreadable("not UTF-8 text"))
        }
        return text
    }
}

/// Reads typed fields from a kubeconfig's YAML nodes, naming the file and key in every error.
private struct FieldReader {
    let file: String
    let directory: String

    func fail(_ key: String, _ reason: KubeConfigError.Reason) -> KubeConfigError {
        KubeConfigError(file: file, key: key, reason: reason)
    }

    /// `list: - name: N; field: {...}` → [(N, the field's mapping)].
    func namedEntries(_ node: Yams.Node?, list: String, field: String) throws(KubeConfigError) -> [(String, Yams.Node.Mapping?)] {
        guard let node, !isNull(node) else { return [] }
        guard let sequence = node.sequence else { throw fail(list, .invalidYAML("not a list")) }
        var entries: [(String, Yams.Node.Mapping?)] = []
        for (index, element) in sequence.enumerated() {
            guard let mapping = element.mapping else { throw fail("\(list)[\(index)]", .invalidYAML("not a mapping")) }
            guard let name = try string(mapping["name"], "\(list)[\(index)].name") else { throw fail("\(list)[\(index)].name", .missingKey) }
            let body = mapping[field]
            if let body, !isNull(body), body.mapping == nil { throw fail("\(list)[\(name)].\(field)", .invalidYAML("not a mapping")) }
            entries.append((name, body?.mapping))
        }
        return entries
    }

    func isNull(_ node: Yams.Node) -> Bool {
        guard let scalar = node.scalar, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    func string(_ node: Yams.Node?, _ key: String) throws(KubeConfigError) -> String? {
        guard let node, !isNull(node) else { return nil }
        guard let scalar = node.scalar else { throw fail(key, .invalidValue("not a string")) }
        return scalar.string.isEmpty ? nil : scalar.string
    }

    func path(_ node: Yams.Node?, _ key: String) throws(KubeConfigError) -> String? {
        try string(node, key).map { KubeConfig.absolutePath($0, relativeTo: directory) }
    }

    func bool(_ node: Yams.Node?, _ key: String) throws(KubeConfigError) -> Bool? {
        guard let node, !isNull(node) else { return nil }
        guard let value = node.bool else { throw fail(key, .invalidValue("not a boolean")) }
        return value
    }

    func base64(_ node: Yams.Node?, _ key: String) throws(KubeConfigError) -> [UInt8]? {
        guard let text = try string(node, key) else { return nil }
        guard let data = Data(base64Encoded: text.filter { !$0.isWhitespace }) else { throw fail(key, .invalidValue("not base64")) }
        return Array(data)
    }
}
