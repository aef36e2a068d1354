import Foundation

/// core/v1 ConfigMap: `data` as text, `binaryData` as base64 strings (as the JSON carries them).
public struct ConfigMap: Codable, Sendable, Hashable {
    public var apiVersion: String? = "v1"
    public var kind: String? = "ConfigMap"
    public var metadata: ObjectMeta
    public var data: [String: String]?
    public var binaryData: [String: String]?
    public var immutable: Bool?

    public init(metadata: ObjectMeta, data: [String: String]? = nil, binaryData: [String: String]? = nil, immutable: Bool? = nil) {
        self.metadata = metadata
        self.data = data
        self.binaryData = binaryData
        self.immutable = immutable
    }

    /// Every key's bytes: `data` as UTF-8, `binaryData` decoded (nil if a value is not base64).
    public var contents: [String: [UInt8]]? {
        var result: [String: [UInt8]] = [:]
        for (key, text) in data ?? [:] { result[key] = Array(text.utf8) }
        for (key, encoded) in binaryData ?? [:] {
            guard let bytes = Data(base64Encoded: encoded) else { return nil }
            result[key] = Array(bytes)
        }
        return result
    }
}
