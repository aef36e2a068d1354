/// A CRI message that encodes and decodes through protobuf-c.
///
/// Every message of `runtime.v1` conforms (generated in `Generated/Conversions.swift`); the
/// same codecs serve `runtime.v1alpha2`, whose messages are a wire-compatible subset.
public protocol ProtobufCCodable: Sendable {
    /// Decodes the protobuf wire form.
    static func decode(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> Self
    /// The protobuf wire form.
    func encode() -> [UInt8]
}

extension ProtobufCCodable {
    /// Decodes the protobuf wire form held in an array.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> Self {
        do {
            return try bytes.withUnsafeBytes { buffer in try Self.decode(buffer) }
        } catch let error as WireError {
            throw error
        } catch {
            throw WireError.malformed(String(describing: Self.self))
        }
    }
}

/// A message that protobuf-c could not decode.
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The bytes are not a valid encoding of the named message (truncated, wrong wire type,
    /// invalid length, a required sub-message that does not parse, …).
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let message): "cannot decode \(message): invalid protobuf wire data"
        }
    }
}
