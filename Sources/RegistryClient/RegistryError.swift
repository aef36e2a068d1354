/// Why a pull failed, naming the registry or the object.
public struct RegistryError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No credentials, or the registry refused them (HTTP 401).
        case unauthenticated
        /// The credentials are not allowed this repository (HTTP 403).
        case permissionDenied
        /// The image, tag or blob does not exist (HTTP 404).
        case notFound
        /// Connection, TLS or transfer failure.
        case transport
        /// The registry answered something the protocol does not allow.
        case protocolError
        /// Content that failed verification, or the store refused.
        case store
        case invalidReference
    }

    public var kind: Kind
    public var context: String
    public var detail: String

    public init(_ kind: Kind, context: String, detail: String = "") {
        self.kind = kind
        self.context = context
        self.detail = detail
    }

    public var description: String {
        let suffix = detail.isEmpty ? "" : ": \(detail)"
        switch kind {
        case .unauthenticated: return "registry \(context): authentication required or refused\(suffix)"
        case .permissionDenied: return "registry \(context): access denied\(suffix)"
        case .notFound: return "\(context): not found\(suffix)"
        case .transport: return "\(context)\(suffix)"
        case .protocolError: return "\(context): unexpected registry response\(suffix)"
        case .store: return "\(context)\(suffix)"
        case .invalidReference: return "\(context): not a valid image reference\(suffix)"
        }
    }
}
