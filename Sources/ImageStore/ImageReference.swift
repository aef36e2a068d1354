/// An image reference, normalized as containerd and Docker normalize them:
/// `busybox` → `docker.io/library/busybox:latest`; `registry:5000/team/app:v1`;
/// `name@sha256:…` (a digest reference, with or without a tag).
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// The registry host (and port): `docker.io`, `localhost:5000`.
    public var registry: String
    /// The repository path: `library/busybox`.
    public var repository: String
    public var tag: String?
    public var digest: Digest?

    public static let defaultRegistry = "docker.io"

    /// Parses and normalizes `text`; nil if it is not a reference.
    public init?(_ text: String) {
        var rest = Substring(text)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            guard let parsed = Digest(String(rest[rest.index(after: at)...])) else { return nil }
            digest = parsed
            rest = rest[..<at]
        }
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            tag = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
            guard let tag, !tag.isEmpty, tag.count <= 128,
                  tag.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-" }) else { return nil }
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !components.isEmpty, components.allSatisfy({ !$0.isEmpty }) else { return nil }
        var registry = Self.defaultRegistry
        if components.count > 1, components[0].contains(".") || components[0].contains(":") || components[0] == "localhost" {
            registry = components.removeFirst()
        }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" { registry = Self.defaultRegistry }
        // host[:port]: one colon at most, a numeric port after it.
        let hostParts = registry.split(separator: ":", omittingEmptySubsequences: false)
        guard hostParts.count <= 2, !hostParts[0].isEmpty, hostParts.count == 1 || (!hostParts[1].isEmpty && hostParts[1].allSatisfy(\.isNumber)),
              hostParts[0].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) else { return nil }
        if registry == Self.defaultRegistry && components.count == 1 { components.insert("library", at: 0) }
        for component in components {
            let valid = component.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-" }
            guard valid, component.first?.isLetter == true || component.first?.isNumber == true else { return nil }
        }
        self.registry = registry
        self.repository = components.joined(separator: "/")
        self.tag = tag ?? (digest == nil ? "latest" : nil)
        self.digest = digest
    }

    /// `docker.io/library/busybox`
    public var name: String { "\(registry)/\(repository)" }

    /// The full normalized form: `docker.io/library/busybox:latest`, `…@sha256:…`.
    public var description: String {
        var text = name
        if let tag { text += ":" + tag }
        if let digest { text += "@" + digest.description }
        return text
    }

    /// `name:tag`, the form image records are keyed by (nil for a digest-only reference).
    public var tagged: String? { tag.map { "\(name):\($0)" } }

    /// `name@sha256:…`
    public func digested(_ digest: Digest) -> String { "\(name)@\(digest)" }
}
