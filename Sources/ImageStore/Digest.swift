import CSwiftletArchive

/// A content digest, `sha256:<64 lowercase hex>` (the only algorithm registries use today).
public struct Digest: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    /// The 64 hex characters.
    public let hex: String

    /// Parses `sha256:<hex>`; nil for anything else.
    public init?(_ text: String) {
        guard text.hasPrefix("sha256:") else { return nil }
        let hex = text.dropFirst(7)
        guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
        self.hex = String(hex)
    }

    init(hex: String) { self.hex = hex }

    public var description: String { "sha256:\(hex)" }

    /// The digest of `bytes`.
    public static func of(_ bytes: some Sequence<UInt8>) -> Digest {
        var hash = SHA256()
        hash.update(Array(bytes))
        return hash.finish()
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let digest = Digest(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\"\(text)\" is not a sha256 digest"))
        }
        self = digest
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.hex < rhs.hex }
}

/// Streaming SHA-256 (OpenSSL's, with the CPU's SHA extensions where present).
public struct SHA256: ~Copyable {
    private let state: OpaquePointer

    public init() {
        guard let state = swa_sha256_new() else { fatalError("OpenSSL cannot create a SHA-256 context") }
        self.state = state
    }

    deinit { swa_sha256_free(state) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        swa_sha256_update(state, base, bytes.count)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public consuming func finish() -> Digest {
        var digest = [UInt8](repeating: 0, count: 32)
        swa_sha256_final(state, &digest)
        let hex = digest.map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
        return Digest(hex: hex)
    }
}
