/// The health protocol's two messages in protobuf wire format, by hand:
///
/// ```proto
/// message HealthCheckRequest { string service = 1; }
/// message HealthCheckResponse { ServingStatus status = 1; }
/// ```
///
/// Both sides are here (the client encodes requests and decodes responses; the reverse
/// serves tests and in-process servers). Decoding follows proto3: unknown fields are
/// skipped, a repeated field's last value wins, absent fields take their defaults.
enum HealthMessages {
    /// A message that is not valid protobuf for its type.
    struct Malformed: Error, Equatable, CustomStringConvertible {
        var description: String
    }

    /// The full method name of Check.
    static let checkMethod = "/grpc.health.v1.Health/Check"

    // MARK: HealthCheckRequest

    static func encodeRequest(service: String) -> [UInt8] {
        // proto3 leaves a field at its default (the empty string) off the wire.
        guard !service.isEmpty else { return [] }
        var bytes: [UInt8] = [0x0A]  // field 1, length-delimited
        appendVarint(UInt64(service.utf8.count), to: &bytes)
        bytes += service.utf8
        return bytes
    }

    static func decodeRequest(_ bytes: some Collection<UInt8>) throws(Malformed) -> String {
        var service = ""
        try forEachField(Array(bytes)) { (field, value) throws(Malformed) in
            if field == 1, case .bytes(let raw) = value {
                guard let text = String(validating: raw, as: UTF8.self) else {
                    throw Malformed(description: "HealthCheckRequest.service is not valid UTF-8")
                }
                service = text
            }
        }
        return service
    }

    // MARK: HealthCheckResponse

    /// Encodes a response with the status's wire number (any int32, for tests of odd servers).
    static func encodeResponse(status: Int32) -> [UInt8] {
        guard status != 0 else { return [] }
        var bytes: [UInt8] = [0x08]  // field 1, varint
        // Enums are int32 on the wire: a negative one takes ten bytes, sign-extended.
        appendVarint(UInt64(bitPattern: Int64(status)), to: &bytes)
        return bytes
    }

    /// The status's wire number.
    static func decodeResponse(_ bytes: some Collection<UInt8>) throws(Malformed) -> Int32 {
        var status: Int32 = 0
        try forEachField(Array(bytes)) { (field, value) throws(Malformed) in
            if field == 1, case .varint(let number) = value {
                status = Int32(truncatingIfNeeded: number)
            }
        }
        return status
    }

    // MARK: Wire format

    enum FieldValue {
        case varint(UInt64)
        case bytes([UInt8])
        case fixed
    }

    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    private static func readVarint(_ bytes: [UInt8], _ index: inout Int) throws(Malformed) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if shift == 63 && byte > 1 { break }
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
            if shift > 63 { break }
        }
        throw Malformed(description: "truncated or overlong varint")
    }

    /// Calls `body` with each field's number and value, in order.
    private static func forEachField(
        _ bytes: [UInt8], _ body: (UInt64, FieldValue) throws(Malformed) -> Void
    ) throws(Malformed) {
        var index = 0
        while index < bytes.count {
            let key = try readVarint(bytes, &index)
            let field = key >> 3
            guard field != 0 else { throw Malformed(description: "field number 0") }
            switch key & 7 {
            case 0:
                try body(field, .varint(try readVarint(bytes, &index)))
            case 1, 5:
                let width = key & 7 == 1 ? 8 : 4
                guard bytes.count - index >= width else { throw Malformed(description: "truncated fixed-width field \(field)") }
                index += width
                try body(field, .fixed)
            case 2:
                let length = try readVarint(bytes, &index)
                guard length <= UInt64(bytes.count - index) else {
                    throw Malformed(description: "length-delimited field \(field) runs past the message")
                }
                let end = index + Int(length)
                let value = Array(bytes[index..<end])
                index = end
                try body(field, .bytes(value))
            default:
                // Groups (3, 4) are proto2-only and 6, 7 do not exist.
                throw Malformed(description: "unsupported wire type \(key & 7) for field \(field)")
            }
        }
    }
}
