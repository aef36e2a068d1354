import Foundation

/// core/v1 Secret: `data` values are base64 strings as the JSON carries them; `stringData` is
/// write-only (the API server merges it into `data` and never returns it).
public struct Secret: Codable, Sendable, Hashable {
    public var apiVersion: String? = "v1"
    public var kind: String? = "Secret"
    public var metadata: ObjectMeta
    public var data: [String: String]?
    public var stringData: [String: String]?
    /// `Opaque`, `kubernetes.io/dockerconfigjson`, `kubernetes.io/tls`, …
    public var type: String?
    public var immutable: Bool?

    public init(metadata: ObjectMeta, data: [String: String]? = nil, stringData: [String: String]? = nil, type: String? = nil,
                immutable: Bool? = nil) {
        self.metadata = metadata
        self.data = data
        self.stringData = stringData
        self.type = type
        self.immutable = immutable
    }

    /// Every key's bytes: `data` decoded, then `stringData` over it as the API server merges them
    /// (nil if a `data` value is not base64).
    public var contents: [String: [UInt8]]? {
        var result: [String: [UInt8]] = [:]
        for (key, encoded) in data ?? [:] {
            guard let bytes = Data(base64Encoded: encoded) else { return nil }
            result[key] = Array(bytes)
        }
        for (key, text) in stringData ?? [:] { result[key] = Array(text.utf8) }
        return result
    }
}
