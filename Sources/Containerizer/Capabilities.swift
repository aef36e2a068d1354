import Foundation

/// Linux capabilities by name, as a set.
public struct Capabilities: Sendable, Equatable, Codable {
    /// Bit mask of capability numbers.
    public var mask: UInt64

    public init(mask: UInt64) { self.mask = mask }

    /// The capability names in kernel order (CAP_CHOWN = 0 …).
    public static let names = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// The set from names (`CAP_NET_ADMIN` or `NET_ADMIN`; `ALL` is every capability).
    public init(names: [String]) throws(ContainerizerError) {
        var mask: UInt64 = 0
        for name in names {
            let upper = name.uppercased()
            if upper == "ALL" { mask = Self.all.mask; continue }
            let full = upper.hasPrefix("CAP_") ? upper : "CAP_" + upper
            guard let index = Self.names.firstIndex(of: full) else {
                throw ContainerizerError(.invalidArgument, context: "capability \(name)", detail: "unknown capability")
            }
            mask |= 1 << UInt64(index)
        }
        self.mask = mask
    }

    /// Adds and drops names, as the CRI's add_capabilities/drop_capabilities.
    public func adding(_ add: [String], dropping drop: [String]) throws(ContainerizerError) -> Capabilities {
        let added = try Capabilities(names: add)
        let dropped = try Capabilities(names: drop)
        return Capabilities(mask: (mask | added.mask) & ~dropped.mask)
    }

    public var nameList: [String] {
        Self.names.enumerated().filter { mask & (1 << UInt64($0.offset)) != 0 }.map(\.element)
    }

    public static let all = Capabilities(mask: (1 << UInt64(names.count)) - 1)

    /// The capabilities this process may grant: its bounding set (`CapBnd` in
    /// /proc/self/status). A host can lack some (these machines have no CAP_SYS_RESOURCE);
    /// containerd's privileged containers get "all current capabilities" for that reason.
    public static let grantable: Capabilities = {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix("CapBnd:") {
            if let mask = UInt64(line.dropFirst("CapBnd:".count).trimmingCharacters(in: .whitespaces), radix: 16) {
                return Capabilities(mask: mask & all.mask)
            }
        }
        return all
    }()

    /// containerd's default set for CRI containers.
    public static let criDefault = try! Capabilities(names: [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ])
}
