/// The launch spec `swiftlet-monitor` reads: one directive per line, tab-separated fields,
/// with tab, newline and backslash escaped. The isolators add to it in `prepare`.
public struct LaunchSpec: Sendable, Equatable {
    private(set) var lines: [[String]] = []

    public init() {}

    /// Adds one directive.
    public mutating func add(_ directive: String, _ fields: String...) {
        lines.append([directive] + fields)
    }

    /// Adds one directive with a list of fields.
    public mutating func add(_ directive: String, fields: [String]) {
        lines.append([directive] + fields)
    }

    /// The file's text.
    public var text: String {
        lines.map { $0.map(Self.escape).joined(separator: "\t") }.joined(separator: "\n") + "\n"
    }

    static func escape(_ field: String) -> String {
        guard field.contains(where: { $0 == "\t" || $0 == "\n" || $0 == "\\" }) else { return field }
        var out = ""
        for character in field {
            switch character {
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\\": out += "\\\\"
            default: out.append(character)
            }
        }
        return out
    }
}
