/// The content type of a PATCH body.
public enum PatchType: String, Sendable, Hashable {
    /// `application/merge-patch+json` (RFC 7386): maps merge, lists are replaced, null deletes.
    case merge = "application/merge-patch+json"
    /// `application/strategic-merge-patch+json`: lists merge by their patch keys (conditions by
    /// `type`, addresses by `type`, containers by `name`); built-in types only.
    case strategicMerge = "application/strategic-merge-patch+json"
    /// `application/json-patch+json` (RFC 6902): a list of operations.
    case json = "application/json-patch+json"
}

/// metav1.DeleteOptions.
public struct DeleteOptions: Codable, Sendable, Hashable {
    public var kind = "DeleteOptions"
    public var apiVersion = "v1"
    /// Seconds before the object is deleted; 0 deletes at once (for pods: without waiting for the kubelet).
    public var gracePeriodSeconds: Int?
    /// `Orphan`, `Background` or `Foreground`.
    public var propagationPolicy: String?
    /// Delete only if the object still has this uid / resourceVersion.
    public var preconditions: Preconditions?
    /// `["All"]` for a server-side dry run.
    public var dryRun: [String]?

    /// metav1.Preconditions.
    public struct Preconditions: Codable, Sendable, Hashable {
        public var uid: String?
        public var resourceVersion: String?
        public init(uid: String? = nil, resourceVersion: String? = nil) {
            self.uid = uid
            self.resourceVersion = resourceVersion
        }
    }

    public init(gracePeriodSeconds: Int? = nil, propagationPolicy: String? = nil, preconditions: Preconditions? = nil,
                dryRun: [String]? = nil) {
        self.gracePeriodSeconds = gracePeriodSeconds
        self.propagationPolicy = propagationPolicy
        self.preconditions = preconditions
        self.dryRun = dryRun
    }
}

/// Query parameters, percent-encoded as Go's url.QueryEscape would accept them.
struct Query {
    var items: [(String, String)] = []

    mutating func add(_ name: String, _ value: String?) {
        if let value { items.append((name, value)) }
    }

    /// `?a=b&c=d`, or "" when empty.
    var text: String {
        items.isEmpty ? "" : "?" + items.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
    }

    static func escape(_ value: String) -> String {
        var out = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
