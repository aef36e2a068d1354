import CSwiftletSyscalls

/// Device access rules in the devices cgroup's syntax (`c 1:3 rwm`, `b *:* m`, `a`): written
/// to `devices.allow` on cgroup v1, compiled into a BPF device program on v2.
public enum DeviceRules {
    /// The devices a container may use (runc's default allow-list): the standard nodes, ptys,
    /// and mknod of anything (creating a node is not opening it).
    public static let defaultAllowed = [
        "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
        "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm",
    ]

    /// One rule for the v2 filter: type, major, minor (-1: any) and access bits.
    static func parse(_ rule: String) throws(ContainerizerError) -> swl_device_rule {
        let fields = rule.split(separator: " ")
        let invalid = ContainerizerError(.invalidArgument, context: "device rule \"\(rule)\"", detail: "want \"<a|b|c> <major|*>:<minor|*> <rwm>\"")
        if fields == ["a"] { return swl_device_rule(type: CChar(UInt8(ascii: "a")), major: -1, minor: -1, access: 7) }
        guard fields.count == 3, let type = fields[0].utf8.first, fields[0].count == 1, "abc".utf8.contains(type) else { throw invalid }
        let numbers = fields[1].split(separator: ":", omittingEmptySubsequences: false)
        guard numbers.count == 2 else { throw invalid }
        func number(_ text: Substring) -> Int64? { text == "*" ? -1 : Int64(text).flatMap { $0 >= 0 && $0 <= Int64(UInt32.max) ? $0 : nil } }
        guard let major = number(numbers[0]), let minor = number(numbers[1]) else { throw invalid }
        var access: UInt32 = 0
        for letter in fields[2] {
            switch letter {
            case "m": access |= 1
            case "r": access |= 2
            case "w": access |= 4
            default: throw invalid
            }
        }
        guard access != 0 else { throw invalid }
        return swl_device_rule(type: CChar(bitPattern: type), major: major, minor: minor, access: access)
    }
}
