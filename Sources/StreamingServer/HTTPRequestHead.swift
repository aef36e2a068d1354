/// An HTTP/1.1 request line and header fields (no body: the streaming endpoints upgrade).
struct HTTPRequestHead: Equatable {
    var method: String
    /// The path, percent-decoded.
    var path: String
    /// Query parameters in order, percent-decoded (`+` as space).
    var query: [(name: String, value: String)]
    var version: String
    /// Field names lowercased, in order; repeated fields kept.
    var headers: [(name: String, value: String)]

    static func == (lhs: HTTPRequestHead, rhs: HTTPRequestHead) -> Bool {
        lhs.method == rhs.method && lhs.path == rhs.path && lhs.version == rhs.version
            && lhs.query.map { "\($0.name)=\($0.value)" } == rhs.query.map { "\($0.name)=\($0.value)" }
            && lhs.headers.map { "\($0.name):\($0.value)" } == rhs.headers.map { "\($0.name):\($0.value)" }
    }

    /// Every value of a field (case-insensitive name).
    func values(_ name: String) -> [String] {
        let lowered = name.lowercased()
        return headers.filter { $0.name == lowered }.map(\.value)
    }

    /// The first value of a field.
    func value(_ name: String) -> String? { values(name).first }

    /// Every value of a field split at commas, trimmed, empty items dropped (Go's
    /// `commaSeparatedHeaderValues`).
    func commaSeparated(_ name: String) -> [String] {
        values(name).flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: " \t") }
            .filter { !$0.isEmpty }
    }

    /// Whether a comma-separated field holds `token` (case-insensitive).
    func hasToken(_ name: String, _ token: String) -> Bool {
        commaSeparated(name).contains { $0.lowercased() == token.lowercased() }
    }

    func queryValues(_ name: String) -> [String] {
        query.filter { $0.name == name }.map(\.value)
    }
}

/// Why a request head was refused.
enum HTTPParseError: Error, Equatable {
    case tooLarge
    case malformed(String)
}

enum HTTPRequestParser {
    static let maxHeadLength = 16 << 10
    private static let terminator: [UInt8] = [13, 10, 13, 10]

    /// Takes a complete head off the front of `input`; nil while it is incomplete.
    static func parse(_ input: inout ByteQueue) throws(HTTPParseError) -> HTTPRequestHead? {
        guard let end = input.firstOffset(of: terminator) else {
            if input.count > maxHeadLength { throw .tooLarge }
            return nil
        }
        if end > maxHeadLength { throw .tooLarge }
        let bytes = input.consume(end + 4)
        guard let text = String(validating: bytes[0..<end], as: UTF8.self) else {
            throw .malformed("request head is not UTF-8")
        }
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst()
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            throw .malformed("malformed request line")
        }
        let target = String(parts[1])
        guard target.hasPrefix("/") else { throw .malformed("malformed request target") }
        let pathPart: Substring
        let queryPart: Substring?
        if let question = target.firstIndex(of: "?") {
            pathPart = target[..<question]
            queryPart = target[target.index(after: question)...]
        } else {
            pathPart = target[...]
            queryPart = nil
        }
        guard let path = percentDecode(pathPart, plusAsSpace: false) else {
            throw .malformed("malformed request path")
        }
        var query: [(name: String, value: String)] = []
        if let queryPart {
            for item in queryPart.split(separator: "&") where !item.isEmpty {
                let pieces = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let name = percentDecode(pieces[0], plusAsSpace: true),
                      let value = percentDecode(pieces.count > 1 ? pieces[1] : "", plusAsSpace: true)
                else { throw .malformed("malformed query") }
                query.append((name, value))
            }
        }
        var headers: [(name: String, value: String)] = []
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw .malformed("malformed header line") }
            let name = line[..<colon]
            guard !name.isEmpty, !name.contains(" "), !name.contains("\t") else {
                throw .malformed("malformed header name")
            }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            headers.append((name.lowercased(), value))
        }
        return HTTPRequestHead(
            method: String(parts[0]), path: path, query: query, version: String(parts[2]), headers: headers)
    }

    static func percentDecode(_ text: Substring, plusAsSpace: Bool) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+") where plusAsSpace:
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing characters from `set`.
    func trimmingCharacters(in set: String) -> String {
        var scalars = Substring(self)[...]
        while let first = scalars.first, set.contains(first) { scalars = scalars.dropFirst() }
        while let last = scalars.last, set.contains(last) { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
