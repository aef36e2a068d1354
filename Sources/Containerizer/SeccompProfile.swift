import Foundation

/// A seccomp filter for a container.
public enum SeccompProfile: Sendable, Equatable, Codable {
    /// No filter.
    case unconfined
    /// Swiftlet's RuntimeDefault-style profile: every syscall allowed except those the
    /// Docker/containerd default profile refuses to containers without the matching
    /// capability (kernel modules, kexec, reboot, swap, clock setting, keyrings, bpf, …),
    /// which fail with EPERM.
    case runtimeDefault
    /// A Docker/OCI JSON profile on the node (`localhost/<path>` in the CRI).
    case localhost(String)

    /// A compiled filter: a default action and per-syscall rules.
    public struct Filter: Sendable, Equatable {
        public var defaultAction: String
        public var rules: [Rule]
        public struct Rule: Sendable, Equatable {
            public var action: String
            public var syscall: String
            /// (index, op, value, valueTwo) with op as `eq`, `ne`, `masked_eq`, …
            public var args: [(UInt32, String, UInt64, UInt64)]
            public static func == (l: Rule, r: Rule) -> Bool {
                l.action == r.action && l.syscall == r.syscall && l.args.count == r.args.count
                    && zip(l.args, r.args).allSatisfy { $0 == $1 }
            }
        }
    }

    /// Syscalls refused by the runtime default, each with the capability that lifts the ban.
    static let runtimeDefaultDenied: [(String, String?)] = [
        ("acct", "CAP_SYS_PACCT"), ("add_key", nil), ("bpf", "CAP_SYS_ADMIN"), ("clock_adjtime", "CAP_SYS_TIME"),
        ("clock_settime", "CAP_SYS_TIME"), ("create_module", "CAP_SYS_MODULE"), ("delete_module", "CAP_SYS_MODULE"),
        ("finit_module", "CAP_SYS_MODULE"), ("get_kernel_syms", "CAP_SYS_MODULE"), ("get_mempolicy", "CAP_SYS_NICE"),
        ("init_module", "CAP_SYS_MODULE"), ("ioperm", "CAP_SYS_RAWIO"), ("iopl", "CAP_SYS_RAWIO"),
        ("kcmp", "CAP_SYS_PTRACE"), ("kexec_file_load", "CAP_SYS_BOOT"), ("kexec_load", "CAP_SYS_BOOT"),
        ("keyctl", nil), ("lookup_dcookie", "CAP_SYS_ADMIN"), ("mbind", "CAP_SYS_NICE"), ("mount", "CAP_SYS_ADMIN"),
        ("move_pages", "CAP_SYS_NICE"), ("nfsservctl", nil), ("open_by_handle_at", "CAP_DAC_READ_SEARCH"),
        ("perf_event_open", "CAP_PERFMON"), ("pivot_root", "CAP_SYS_ADMIN"),
        ("process_vm_readv", "CAP_SYS_PTRACE"), ("process_vm_writev", "CAP_SYS_PTRACE"), ("ptrace", "CAP_SYS_PTRACE"),
        ("query_module", "CAP_SYS_MODULE"), ("quotactl", "CAP_SYS_ADMIN"), ("reboot", "CAP_SYS_BOOT"),
        ("request_key", nil), ("set_mempolicy", "CAP_SYS_NICE"), ("setns", "CAP_SYS_ADMIN"),
        ("settimeofday", "CAP_SYS_TIME"), ("stime", "CAP_SYS_TIME"), ("swapoff", "CAP_SYS_ADMIN"),
        ("swapon", "CAP_SYS_ADMIN"), ("_sysctl", nil), ("sysfs", nil), ("umount", "CAP_SYS_ADMIN"),
        ("umount2", "CAP_SYS_ADMIN"), ("unshare", "CAP_SYS_ADMIN"), ("uselib", nil), ("userfaultfd", nil),
        ("ustat", nil), ("vm86", nil), ("vm86old", nil), ("fanotify_init", "CAP_SYS_ADMIN"),
        ("open_tree", "CAP_SYS_ADMIN"), ("move_mount", "CAP_SYS_ADMIN"), ("fsopen", "CAP_SYS_ADMIN"),
        ("fsconfig", "CAP_SYS_ADMIN"), ("fsmount", "CAP_SYS_ADMIN"), ("fspick", "CAP_SYS_ADMIN"),
        ("syslog", "CAP_SYSLOG"),
    ]

    /// The filter for a container with `capabilities`; nil when unconfined.
    public func filter(capabilities: Capabilities) throws(ContainerizerError) -> Filter? {
        switch self {
        case .unconfined:
            return nil
        case .runtimeDefault:
            let held = Set(capabilities.nameList)
            var rules = Self.runtimeDefaultDenied.compactMap { syscall, capability -> Filter.Rule? in
                if let capability, held.contains(capability) { return nil }
                return Filter.Rule(action: "errno:1", syscall: syscall, args: [])
            }
            // clone(2) creating namespaces (a user namespace hands out capabilities inside it)
            // and clone3, whose flags seccomp cannot see (ENOSYS: libc falls back to clone).
            if !held.contains("CAP_SYS_ADMIN") {
                let namespaceFlags: [UInt64] = [0x0002_0000, 0x0200_0000, 0x0400_0000, 0x0800_0000, 0x1000_0000, 0x2000_0000, 0x4000_0000]
                for flag in namespaceFlags {
                    rules.append(Filter.Rule(action: "errno:1", syscall: "clone", args: [(0, "masked_eq", flag, flag)]))
                }
                rules.append(Filter.Rule(action: "errno:38", syscall: "clone3", args: []))
            }
            return Filter(defaultAction: "allow", rules: rules)
        case .localhost(let path):
            return try Self.load(path, capabilities: capabilities)
        }
    }

    private struct JSONProfile: Decodable {
        var defaultAction: String
        var defaultErrnoRet: UInt32?
        var syscalls: [JSONSyscall]?
    }

    private struct JSONSyscall: Decodable {
        var names: [String]?
        var name: String?
        var action: String
        var errnoRet: UInt32?
        var args: [JSONArg]?
        var includes: JSONFilter?
        var excludes: JSONFilter?
    }

    private struct JSONArg: Decodable {
        var index: UInt32
        var value: UInt64
        var valueTwo: UInt64?
        var op: String
    }

    private struct JSONFilter: Decodable {
        var caps: [String]?
        var arches: [String]?
    }

    static func action(_ name: String, errno: UInt32?) throws(ContainerizerError) -> String {
        switch name {
        case "SCMP_ACT_ALLOW": return "allow"
        case "SCMP_ACT_ERRNO": return "errno:\(errno ?? 1)"
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return "kill"
        case "SCMP_ACT_KILL_PROCESS": return "kill_process"
        case "SCMP_ACT_TRAP": return "trap"
        case "SCMP_ACT_LOG": return "log"
        case "SCMP_ACT_TRACE": return "trace:\(errno ?? 1)"
        default: throw ContainerizerError(.invalidArgument, context: "seccomp action \(name)", detail: "not supported")
        }
    }

    static func load(_ path: String, capabilities: Capabilities) throws(ContainerizerError) -> Filter {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ContainerizerError(.invalidArgument, context: "seccomp profile \(path)", detail: "cannot be read")
        }
        let profile: JSONProfile
        do {
            profile = try JSONDecoder().decode(JSONProfile.self, from: data)
        } catch {
            throw ContainerizerError(.invalidArgument, context: "seccomp profile \(path)", detail: "invalid JSON: \(error)")
        }
        let held = Set(capabilities.nameList)
        var rules: [Filter.Rule] = []
        for entry in profile.syscalls ?? [] {
            if let needed = entry.includes?.caps, !needed.allSatisfy(held.contains) { continue }
            if let excluded = entry.excludes?.caps, excluded.contains(where: held.contains) { continue }
            // A rule's errno is its own errnoRet, else EPERM (defaultErrnoRet is the default action's).
            let action = try Self.action(entry.action, errno: entry.errnoRet ?? 1)
            let args = try (entry.args ?? []).map { arg throws(ContainerizerError) -> (UInt32, String, UInt64, UInt64) in
                let op: String = switch arg.op {
                case "SCMP_CMP_NE": "ne"
                case "SCMP_CMP_LT": "lt"
                case "SCMP_CMP_LE": "le"
                case "SCMP_CMP_EQ": "eq"
                case "SCMP_CMP_GE": "ge"
                case "SCMP_CMP_GT": "gt"
                case "SCMP_CMP_MASKED_EQ": "masked_eq"
                default: ""
                }
                guard !op.isEmpty else {
                    throw ContainerizerError(.invalidArgument, context: "seccomp profile \(path)", detail: "unknown operator \(arg.op)")
                }
                return (arg.index, op, arg.value, arg.valueTwo ?? 0)
            }
            for name in (entry.names ?? []) + (entry.name.map { [$0] } ?? []) {
                rules.append(Filter.Rule(action: action, syscall: name, args: args))
            }
        }
        return Filter(defaultAction: try Self.action(profile.defaultAction, errno: profile.defaultErrnoRet), rules: rules)
    }
}
