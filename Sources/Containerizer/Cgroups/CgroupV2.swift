import CSwiftletSyscalls
#if canImport(Glibc)
import Glibc
#endif

/// A container cgroup on the cgroup v2 unified hierarchy: `<mount>/<root>/<id>`.
///
/// Controllers are enabled on the way down (`cgroup.subtree_control`) where the hierarchy
/// offers them; limits for a controller it does not offer are not written.
public struct CgroupV2: ContainerCgroup {
    public let mount: String
    public let path: String
    /// The controllers the hierarchy offers (the root's cgroup.controllers).
    public let available: Set<String>

    public init(mount: String, root: String, id: String, available: [String]) {
        self.mount = mount
        self.path = "\(mount)/\(root)/\(id)"
        self.available = Set(available)
    }

    public var directories: [String] { [path] }

    static let wanted = ["cpu", "cpuset", "memory", "pids", "hugetlb", "io"]

    public func create() throws(ContainerizerError) {
        // Enable controllers in every ancestor below the mount, then create the leaf.
        let relative = path.dropFirst(mount.count).split(separator: "/")
        var current = mount
        let enable = Self.wanted.filter(available.contains).map { "+" + $0 }.joined(separator: " ")
        for part in relative {
            if !enable.isEmpty {
                try CgroupFiles.write(current, "cgroup.subtree_control", enable)
            }
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST { throw .cgroup(current, "mkdir") }
        }
    }

    /// Lets the container's processes use exactly the devices `rules` allow (devices-cgroup
    /// syntax) and refuses every other with EPERM: a BPF device program attached to its
    /// directory, as runc and crun do (v2 has no devices controller). It goes with the cgroup.
    public func restrictDevices(to rules: [String]) throws(ContainerizerError) {
        var parsed: [swl_device_rule] = []
        for rule in rules { parsed.append(try DeviceRules.parse(rule)) }
        let directory = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw .cgroup(path, "open") }
        defer { close(directory) }
        var message = [CChar](repeating: 0, count: 512)
        guard swl_attach_device_filter(directory, parsed, parsed.count, &message, message.count) == 0 else {
            let code = errno
            throw ContainerizerError(.cgroup, context: path, errno: code,
                                     detail: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }

    /// cpu.shares (2–262144) to cpu.weight (1–10000), as the kubelet and runc convert.
    static func weight(forShares shares: Int64) -> Int64 {
        1 + ((min(max(shares, 2), 262_144) - 2) * 9999) / 262_142
    }

    public func apply(_ limits: ResourceLimits, to controllers: Controllers) throws(ContainerizerError) {
        if controllers.contains(.cpu), available.contains("cpu") {
            if limits.cpuShares > 0 { try CgroupFiles.write(path, "cpu.weight", String(Self.weight(forShares: limits.cpuShares))) }
            let period = limits.cpuPeriod > 0 ? limits.cpuPeriod : 100_000
            try CgroupFiles.write(path, "cpu.max", "\(limits.cpuQuota > 0 ? String(limits.cpuQuota) : "max") \(period)")
        }
        if controllers.contains(.memory), available.contains("memory") {
            try CgroupFiles.write(path, "memory.max", limits.memoryLimitBytes > 0 ? String(limits.memoryLimitBytes) : "max")
            // No swap beyond the limit: swap is off for the container.
            if CgroupFiles.exists(path + "/memory.swap.max") { try CgroupFiles.write(path, "memory.swap.max", "0") }
        }
        if controllers.contains(.pids), available.contains("pids") {
            try CgroupFiles.write(path, "pids.max", limits.pidsLimit > 0 ? String(limits.pidsLimit) : "max")
        }
        if controllers.contains(.cpuset), available.contains("cpuset") {
            if !limits.cpusetCpus.isEmpty { try CgroupFiles.write(path, "cpuset.cpus", limits.cpusetCpus) }
            if !limits.cpusetMems.isEmpty { try CgroupFiles.write(path, "cpuset.mems", limits.cpusetMems) }
        }
        if controllers.contains(.hugetlb), available.contains("hugetlb") {
            for (size, bytes) in limits.hugepageLimits.sorted(by: { $0.key < $1.key }) {
                try CgroupFiles.write(path, "hugetlb.\(size).max", String(bytes))
            }
        }
    }

    public func usage(of controllers: Controllers) throws(ContainerizerError) -> CgroupUsage {
        var usage = CgroupUsage()
        if controllers.contains(.cpu) {
            let cpu = try CgroupFiles.readKeyed(path, "cpu.stat")
            usage.cpuNanoseconds = UInt64(max(0, cpu["usage_usec"] ?? 0)) * 1000
        }
        if controllers.contains(.memory), available.contains("memory") {
            let used = UInt64(max(0, try CgroupFiles.readInt(path, "memory.current")))
            let inactive = UInt64(max(0, try CgroupFiles.readKeyed(path, "memory.stat")["inactive_file"] ?? 0))
            usage.memoryUsageBytes = used
            usage.memoryWorkingSetBytes = used > inactive ? used - inactive : 0
            usage.oomKills = UInt64(max(0, try CgroupFiles.readKeyed(path, "memory.events")["oom_kill"] ?? 0))
        }
        if controllers.contains(.pids) {
            if available.contains("pids") {
                usage.pids = UInt64(max(0, try CgroupFiles.readInt(path, "pids.current")))
            } else {
                usage.pids = UInt64(processes().count)
            }
        }
        return usage
    }

    public func processes() -> [Int32] {
        CgroupFiles.processes(path)
    }

    /// `cgroup.kill` (Linux 5.14+): the kernel kills every process, forks included. A directory
    /// that is gone held nothing (see ``CgroupV1/killAll()``).
    public func killAll() throws(ContainerizerError) {
        guard CgroupFiles.exists(path) else { return }
        if CgroupFiles.exists(path + "/cgroup.kill") {
            try CgroupFiles.write(path, "cgroup.kill", "1")
        } else {
            // Before Linux 5.14: freeze (so nothing forks away), kill, thaw.
            try CgroupFiles.write(path, "cgroup.freeze", "1")
            for _ in 0..<1000 where (try? CgroupFiles.readKeyed(path, "cgroup.events"))?["frozen"] != 1 { usleep(1000) }
            for pid in processes() { kill(pid, SIGKILL) }
            try CgroupFiles.write(path, "cgroup.freeze", "0")
        }
        for _ in 0..<1000 {
            let events = (try? CgroupFiles.readKeyed(path, "cgroup.events")) ?? [:]
            if events["populated"] == 0 || (events.isEmpty && processes().isEmpty) { return }
            for pid in processes() { kill(pid, SIGKILL) }
            usleep(2000)
        }
        throw ContainerizerError(.cgroup, context: path, detail: "processes remain after cgroup.kill")
    }

    public func destroy() throws(ContainerizerError) {
        try CgroupFiles.remove(path)
    }
}
