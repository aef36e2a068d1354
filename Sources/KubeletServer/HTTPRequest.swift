/// Bytes read from a connection and not yet consumed.
struct InputBuffer {
    private var storage: [UInt8] = []
    private var start = 0

    var count: Int { storage.count - start }
    var isEmpty: Bool { count == 0 }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start >= storage.count / 2 {
            storage.removeSubrange(0..<start)
            start = 0
        }
        storage.append(contentsOf: bytes)
    }

    mutating func append(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append($0) } }

    /// The first `n` bytes, removed.
    mutating func consume(_ n: Int) -> [UInt8] {
        let taken = Array(storage[start..<start + n])
        start += n
        if start == storage.count {
            storage.removeAll(keepingCapacity: true)
            start = 0
        }
        return taken
    }

    /// Everything, removed.
    mutating func takeAll() -> [UInt8] { consume(count) }

    /// Runs `body` on the unconsumed bytes.
    func withBytes<R>(_ body: (ArraySlice<UInt8>) throws(HTTPError) -> R) throws(HTTPError) -> R {
        try body(storage[start...])
    }
}

/// A request refused before it reached a handler: the status and plain-text message Go's
/// `net/http` server answers with.
struct HTTPError: Error, Equatable {
    var status: Int
    var message: String

    init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    static func badRequest(_ why: String) -> HTTPError { HTTPError(400, "400 Bad Request: \(why)") }
}

/// One HTTP/1.1 request: its head, and its body when it had one.
struct HTTPRequest {
    var method: String
    /// The request target as sent.
    var target: String
    /// The target's path, percent-decoded.
    var path: String
    var rawQuery: String
    /// Query parameters in order, percent-decoded (`+` as space); malformed pairs skipped,
    /// as Go's `URL.Query()`.
    var query: [(name: String, value: String)]
    /// The minor version of HTTP/1.x.
    var minorVersion: Int
    /// Field names lowercased, in order; repeated fields kept.
    var headers: [(name: String, value: String)]
    var body: [UInt8] = []

    /// Every value of a field (case-insensitive name).
    func values(_ name: String) -> [String] {
        let lowered = name.lowercased()
        return headers.filter { $0.name == lowered }.map(\.value)
    }

    func value(_ name: String) -> String? { values(name).first }

    func queryValues(_ name: String) -> [String] { query.filter { $0.name == name }.map(\.value) }

    /// The first value of a query parameter (Go's `FormValue`/`Query().Get`): "" when absent.
    func queryValue(_ name: String) -> String { queryValues(name).first ?? "" }

    func hasQuery(_ name: String) -> Bool { query.contains { $0.name == name } }

    /// Whether a comma-separated field holds `token` (case-insensitive).
    func hasToken(_ name: String, _ token: String) -> Bool {
        values(name).flatMap { $0.split(separator: ",") }.contains {
            $0.trimmingCharacters(in: " \t").lowercased() == token.lowercased()
        }
    }

    /// apimachinery's `httpstream.IsUpgradeRequest`: a Connection field mentioning "upgrade".
    var isUpgrade: Bool { values("connection").contains { $0.lowercased().contains("upgrade") } }

    /// apimachinery's `wsstream.IsWebSocketRequest`.
    var isWebSocket: Bool { isUpgrade && value("upgrade")?.lowercased() == "websocket" }

    /// Whether the connection may carry another request after this one's response.
    var keepAlive: Bool {
        if hasToken("connection", "close") { return false }
        // HTTP/1.0 connections close after one response (no keep-alive framing here).
        return minorVersion >= 1
    }
}

/// The body a request head announces.
enum BodyFraming: Equatable {
    case none
    case length(Int)
    case chunked
}

enum HTTPParser {
    /// Takes a complete request head off the front of `input`; nil while it is incomplete.
    static func parseHead(_ input: inout InputBuffer, maxHeaderBytes: Int) throws(HTTPError) -> (HTTPRequest, BodyFraming)? {
        let end: (head: Int, total: Int)? = try input.withBytes { bytes throws(HTTPError) in headEnd(bytes) }
        guard let end else {
            if input.count > maxHeaderBytes { throw HTTPError(431, "431 Request Header Fields Too Large") }
            return nil
        }
        if end.head > maxHeaderBytes { throw HTTPError(431, "431 Request Header Fields Too Large") }
        let bytes = input.consume(end.total)
        return try parse(head: bytes[0..<end.head])
    }

    /// Where the head ends (an empty line, CRLF or bare LF), skipping leading empty lines:
    /// the head's length and the bytes to consume.
    private static func headEnd(_ bytes: ArraySlice<UInt8>) -> (head: Int, total: Int)? {
        let base = bytes.startIndex
        var index = base
        // Empty lines before the request line are ignored (RFC 9112 §2.2).
        while index < bytes.endIndex, bytes[index] == 13 || bytes[index] == 10 { index += 1 }
        var lineStart = index
        while index < bytes.endIndex {
            if bytes[index] == 10 {
                let line = index - lineStart
                if line == 0 || (line == 1 && bytes[lineStart] == 13) {
                    return (lineStart - base, index + 1 - base)
                }
                lineStart = index + 1
            }
            index += 1
        }
        return nil
    }

    private static func parse(head: ArraySlice<UInt8>) throws(HTTPError) -> (HTTPRequest, BodyFraming) {
        // Lines split on bytes: in a Swift String "\r\n" is one Character.
        var lines: [Substring] = []
        for raw in head.split(separator: 10, omittingEmptySubsequences: false) {
            let line = raw.last == 13 ? raw.dropLast() : raw
            guard let text = String(validating: line, as: UTF8.self) else { throw .badRequest("malformed request head") }
            lines.append(Substring(text))
        }
        while lines.first?.isEmpty == true { lines.removeFirst() }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard !lines.isEmpty else { throw .badRequest("malformed request line") }
        let requestLine = lines.removeFirst()
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(isTokenCharacter), !parts[1].isEmpty else {
            throw .badRequest("malformed HTTP request \"\(requestLine.prefix(100))\"")
        }
        let version = parts[2]
        guard version.hasPrefix("HTTP/"), let (major, minor) = parseVersion(version.dropFirst(5)) else {
            throw .badRequest("malformed HTTP version \"\(version.prefix(20))\"")
        }
        guard major == 1 else { throw HTTPError(505, "505 HTTP Version Not Supported: unsupported protocol version") }

        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let first = line.first, first != " ", first != "\t", let colon = line.firstIndex(of: ":") else {
                throw .badRequest("malformed MIME header line: \(line.prefix(100))")
            }
            let name = line[..<colon]
            guard !name.isEmpty, name.allSatisfy(isTokenCharacter) else {
                throw .badRequest("invalid header name: \"\(name.prefix(100))\"")
            }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            guard !value.unicodeScalars.contains(where: { $0.value == 0 || $0.value == 13 || $0.value == 10 }) else {
                throw .badRequest("invalid header value")
            }
            headers.append((name.lowercased(), value))
        }

        let target = String(parts[1])
        let (path, rawQuery) = try splitTarget(target, method: String(parts[0]))
        var request = HTTPRequest(
            method: String(parts[0]), target: target, path: path, rawQuery: rawQuery,
            query: parseQuery(rawQuery), minorVersion: minor, headers: headers)
        if minor >= 1 {
            let hosts = request.values("host")
            if hosts.isEmpty { throw .badRequest("missing required Host header") }
            if hosts.count > 1 { throw .badRequest("too many Host headers") }
        }
        return (request, try framing(&request))
    }

    private static func parseVersion(_ text: Substring) -> (Int, Int)? {
        let pieces = text.split(separator: ".", omittingEmptySubsequences: false)
        guard pieces.count == 2, pieces.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigit) }),
              let major = Int(pieces[0]), let minor = Int(pieces[1])
        else { return nil }
        return (major, minor)
    }

    /// The decoded path and the raw query of an origin-form (`/p?q`), absolute-form
    /// (`http://host/p?q`) or asterisk-form target.
    private static func splitTarget(_ target: String, method: String) throws(HTTPError) -> (String, String) {
        if target == "*" {
            guard method == "OPTIONS" else { throw .badRequest("invalid request URI") }
            return ("*", "")
        }
        var rest = Substring(target)
        if !rest.hasPrefix("/") {
            let lowered = rest.lowercased()
            guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://") else { throw .badRequest("invalid request URI") }
            rest = rest.dropFirst(lowered.hasPrefix("http://") ? 7 : 8)
            if let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) {
                rest = rest[slash...]
            } else {
                rest = ""
            }
            if !rest.hasPrefix("/") { rest = "/" + rest }
        }
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let pathPart: Substring
        let query: Substring
        if let question = rest.firstIndex(of: "?") {
            pathPart = rest[..<question]
            query = rest[rest.index(after: question)...]
        } else {
            pathPart = rest
            query = ""
        }
        guard let path = percentDecode(pathPart, plusAsSpace: false) else { throw .badRequest("invalid URL escape in path") }
        return (path, String(query))
    }

    static func parseQuery(_ raw: String) -> [(name: String, value: String)] {
        raw.split(separator: "&").compactMap { item in
            let pieces = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = percentDecode(pieces[0], plusAsSpace: true),
                  let value = percentDecode(pieces.count > 1 ? pieces[1] : "", plusAsSpace: true)
            else { return nil }
            return (name, value)
        }
    }

    private static func framing(_ request: inout HTTPRequest) throws(HTTPError) -> BodyFraming {
        let encodings = request.values("transfer-encoding")
        let lengths = request.values("content-length")
        if !encodings.isEmpty {
            guard encodings.count == 1, encodings[0].lowercased() == "chunked" else {
                throw HTTPError(501, "501 Not Implemented: unsupported transfer encoding")
            }
            guard lengths.isEmpty else { throw .badRequest("both Transfer-Encoding and Content-Length present") }
            return .chunked
        }
        guard let first = lengths.first else { return .none }
        guard lengths.allSatisfy({ $0 == first }), !first.isEmpty, first.count <= 18, first.allSatisfy(\.isASCIIDigit),
              let length = Int(first)
        else { throw .badRequest("bad Content-Length") }
        return length == 0 ? .none : .length(length)
    }

    /// Decodes a complete chunked body at the front of `bytes`: the body and the bytes it
    /// took; nil while incomplete.
    static func decodeChunked(_ bytes: ArraySlice<UInt8>, limit: Int) throws(HTTPError) -> (body: [UInt8], consumed: Int)? {
        var body: [UInt8] = []
        var index = bytes.startIndex
        func line() -> Substring? {
            guard let newline = bytes[index...].firstIndex(of: 10) else { return nil }
            var end = newline
            if end > index, bytes[end - 1] == 13 { end -= 1 }
            defer { index = newline + 1 }
            return Substring(decoding: bytes[index..<end], as: UTF8.self)
        }
        while true {
            guard let sizeLine = line() else { return nil }
            let sizeText = sizeLine.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: " \t") } ?? ""
            guard !sizeText.isEmpty, sizeText.count <= 15, let size = Int(sizeText, radix: 16) else {
                throw .badRequest("malformed chunked encoding")
            }
            if size == 0 {
                // Trailer fields, then the empty line.
                while true {
                    guard let trailer = line() else { return nil }
                    if trailer.isEmpty { return (body, index - bytes.startIndex) }
                }
            }
            if body.count + size > limit { throw HTTPError(413, "413 Request Entity Too Large") }
            guard bytes.endIndex - index >= size + 1 else { return nil }
            body.append(contentsOf: bytes[index..<index + size])
            index += size
            guard let rest = line() else { return nil }
            guard rest.isEmpty else { throw .badRequest("malformed chunked encoding") }
        }
    }

    static func percentDecode(_ text: Substring, plusAsSpace: Bool) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
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

    /// RFC 9110 `tchar`.
    static func isTokenCharacter(_ character: Character) -> Bool {
        guard let ascii = character.asciiValue else { return false }
        switch ascii {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(ascii)
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { asciiValue.map { $0 >= 48 && $0 <= 57 } ?? false }
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
