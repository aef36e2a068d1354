/// Decodes the resize stream: consecutive JSON objects `{"Width":80,"Height":24}` (Go's
/// `json.Decoder` over the stream: any whitespace between them, field names matched
/// without regard to case, unknown fields ignored).
struct ResizeDecoder {
    /// Resize messages are tiny; a longer pending object is garbage.
    static let maxObject = 4096
    private var pending: [UInt8] = []
    /// Set after the first malformed object; nothing more is decoded (as the kubelet stops).
    private(set) var failed = false

    mutating func feed(_ bytes: [UInt8]) -> [TerminalSize] {
        guard !failed else { return [] }
        pending.append(contentsOf: bytes)
        var sizes: [TerminalSize] = []
        while let end = objectEnd() {
            let object = Array(pending[0...end])
            pending.removeFirst(end + 1)
            guard let size = Self.decode(object) else {
                failed = true
                pending = []
                return sizes
            }
            sizes.append(size)
        }
        if pending.count > Self.maxObject { failed = true; pending = [] }
        return sizes
    }

    /// The index of the `}` closing the object at the front (after whitespace).
    private mutating func objectEnd() -> Int? {
        while let first = pending.first, first == 0x20 || first == 0x0a || first == 0x0d || first == 0x09 {
            pending.removeFirst()
        }
        guard let first = pending.first else { return nil }
        guard first == UInt8(ascii: "{") else {
            failed = true
            pending = []
            return nil
        }
        var depth = 0
        var inString = false
        var escaped = false
        for (index, byte) in pending.enumerated() {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 { return index }
            default: break
            }
        }
        return nil
    }

    /// A flat object's `Width` and `Height` (missing ones are 0, as Go leaves them).
    static func decode(_ object: [UInt8]) -> TerminalSize? {
        var parser = FlatJSONObjectParser(bytes: object)
        guard let fields = parser.parse() else { return nil }
        var size = TerminalSize(width: 0, height: 0)
        for (key, value) in fields {
            switch key.lowercased() {
            case "width":
                guard case .number(let number) = value, let width = UInt16(exactly: number) else { return nil }
                size.width = width
            case "height":
                guard case .number(let number) = value, let height = UInt16(exactly: number) else { return nil }
                size.height = height
            default:
                continue
            }
        }
        return size
    }
}

/// A JSON object whose values are scalars (nested values are refused).
struct FlatJSONObjectParser {
    enum Value: Equatable {
        case number(Double)
        case string(String)
        case bool(Bool)
        case null
    }

    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func parse() -> [(String, Value)]? {
        skipSpace()
        guard take(UInt8(ascii: "{")) else { return nil }
        var fields: [(String, Value)] = []
        skipSpace()
        if take(UInt8(ascii: "}")) { return finish(fields) }
        while true {
            skipSpace()
            guard let key = string() else { return nil }
            skipSpace()
            guard take(UInt8(ascii: ":")) else { return nil }
            skipSpace()
            guard let value = value() else { return nil }
            fields.append((key, value))
            skipSpace()
            if take(UInt8(ascii: ",")) { continue }
            guard take(UInt8(ascii: "}")) else { return nil }
            return finish(fields)
        }
    }

    private mutating func finish(_ fields: [(String, Value)]) -> [(String, Value)]? {
        skipSpace()
        return index == bytes.count ? fields : nil
    }

    private mutating func skipSpace() {
        while index < bytes.count, [0x20, 0x0a, 0x0d, 0x09].contains(bytes[index]) { index += 1 }
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    private mutating func string() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        var output: [UInt8] = []
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(validating: output, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { return nil }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escape)
                case UInt8(ascii: "n"): output.append(0x0a)
                case UInt8(ascii: "t"): output.append(0x09)
                case UInt8(ascii: "r"): output.append(0x0d)
                case UInt8(ascii: "b"): output.append(0x08)
                case UInt8(ascii: "f"): output.append(0x0c)
                case UInt8(ascii: "u"):
                    guard index + 4 <= bytes.count,
                          let code = UInt32(String(decoding: bytes[index..<(index + 4)], as: UTF8.self), radix: 16),
                          let scalar = Unicode.Scalar(code)
                    else { return nil }
                    index += 4
                    output.append(contentsOf: Array(String(Character(scalar)).utf8))
                default: return nil
                }
            default:
                if byte < 0x20 { return nil }
                output.append(byte)
            }
        }
        return nil
    }

    private mutating func value() -> Value? {
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return string().map(Value.string)
        case UInt8(ascii: "t"):
            return literal("true", .bool(true))
        case UInt8(ascii: "f"):
            return literal("false", .bool(false))
        case UInt8(ascii: "n"):
            return literal("null", .null)
        default:
            let start = index
            while index < bytes.count, "+-0123456789.eE".utf8.contains(bytes[index]) { index += 1 }
            guard index > start, let number = Double(String(decoding: bytes[start..<index], as: UTF8.self)) else { return nil }
            return .number(number)
        }
    }

    private mutating func literal(_ word: String, _ value: Value) -> Value? {
        let expected = Array(word.utf8)
        guard index + expected.count <= bytes.count, Array(bytes[index..<(index + expected.count)]) == expected else { return nil }
        index += expected.count
        return value
    }
}
