#if canImport(Glibc)
import Glibc
#endif

/// A container cgroup on cgroup v1: `<mount of controller>/<root>/<id>` for each controller.
public struct CgroupV1: ContainerCgroup {
    /// Controller name -> this container's directory under it.
    public let paths: [String: String]

    /// The controllers a container cgroup uses on v1, where mounted.
    public static let controllers = ["cpu", "cpuacct", "memory", "pids", "cpuset", "hugetlb", "freezer", "devices"]

    /// Controller name -> its hierarchy's mount point.
    public let mounts: [String: String]

    public init(layout: CgroupLayout, root: String, id: String) {
        var paths: [String: String] = [:]
        var mounts: [String: String] = [:]
        for controller in Self.controllers {
            if let mount = layout.v1[controller] {
                paths[controller] = "\(mount)/\(root)/\(id)"
                mounts[controller] = mount
            }
        }
        self.paths = paths
        self.mounts = mounts
    }


    public var directories: [String] { Array(Set(paths.values)).sorted() }

    public func create() throws(ContainerizerError) {
        for directory in directories {
            try CgroupFiles.makeDirectories(directory)
        }
        // cpuset directories start empty and refuse processes until cpus/mems are set: fill
        // every empty level from its parent, top down (another launch may have created a
        // level without filling it yet).
        if let cpuset = paths["cpuset"], let mount = mounts["cpuset"] {
            var level = mount
            for part in cpuset.dropFirst(mount.count).split(separator: "/") {
                let parent = level
                level += "/" + part
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    if try CgroupFiles.read(level, file).trimmingCharacters(in: "\n ").isEmpty {
                        try CgroupFiles.write(level, file, try CgroupFiles.read(parent, file).trimmingCharacters(in: "\n "))
                    }
                }
            }
        }
        if let devices = paths["devices"] {
            try CgroupFiles.write(devices, "devices.deny", "a")
            for rule in DeviceRules.defaultAllowed { try CgroupFiles.write(devices, "devices.allow", rule) }
        }
    }

    /// Privileged containers use the host's /dev: every device.
    public func allowAllDevices() throws(ContainerizerError) {
        if let devices = paths["devices"] { try CgroupFiles.write(devices, "devices.allow", "a") }
    }

    /// Allows one more device ("c 10:229 rwm").
    public func allowDevice(_ rule: String) throws(ContainerizerError) {
        if let devices = paths["devices"] { try CgroupFiles.write(devices, "devices.allow", rule) }
    }

    public func apply(_ limits: ResourceLimits, to controllers: Controllers) throws(ContainerizerError) {
        if controllers.contains(.cpu), let cpu = paths["cpu"] {
            if limits.cpuShares > 0 { try CgroupFiles.write(cpu, "cpu.shares", String(limits.cpuShares)) }
            if limits.cpuPeriod > 0 { try CgroupFiles.write(cpu, "cpu.cfs_period_us", String(limits.cpuPeriod)) }
            try CgroupFiles.write(cpu, "cpu.cfs_quota_us", String(limits.cpuQuota > 0 ? limits.cpuQuota : -1))
        }
        if controllers.contains(.memory), let memory = paths["memory"] {
            let limit = limits.memoryLimitBytes > 0 ? limits.memoryLimitBytes : -1
            // memory+swap must never be below memory: order the writes by direction.
            let hasSwapAccounting = CgroupFiles.exists(memory + "/memory.memsw.limit_in_bytes")
            let current = (try? CgroupFiles.readInt(memory, "memory.limit_in_bytes")) ?? Int64.max
            let growing = limit == -1 || limit > current
            if hasSwapAccounting && growing { try CgroupFiles.write(memory, "memory.memsw.limit_in_bytes", String(limit)) }
            try CgroupFiles.write(memory, "memory.limit_in_bytes", String(limit))
            if hasSwapAccounting && !growing { try CgroupFiles.write(memory, "memory.memsw.limit_in_bytes", String(limit)) }
        }
        if controllers.contains(.pids), let pids = paths["pids"] {
            try CgroupFiles.write(pids, "pids.max", limits.pidsLimit > 0 ? String(limits.pidsLimit) : "max")
        }
        if controllers.contains(.cpuset), let cpuset = paths["cpuset"] {
            if !limits.cpusetCpus.isEmpty { try CgroupFiles.write(cpuset, "cpuset.cpus", limits.cpusetCpus) }
            if !limits.cpusetMems.isEmpty { try CgroupFiles.write(cpuset, "cpuset.mems", limits.cpusetMems) }
        }
        if controllers.contains(.hugetlb), let hugetlb = paths["hugetlb"] {
            for (size, bytes) in limits.hugepageLimits.sorted(by: { $0.key < $1.key }) {
                try CgroupFiles.write(hugetlb, "hugetlb.\(size).limit_in_bytes", String(bytes))
            }
        }
    }

    public func usage(of controllers: Controllers) throws(ContainerizerError) -> CgroupUsage {
        var usage = CgroupUsage()
        if controllers.contains(.cpu), let cpuacct = paths["cpuacct"] {
            usage.cpuNanoseconds = UInt64(max(0, try CgroupFiles.readInt(cpuacct, "cpuacct.usage")))
        }
        if controllers.contains(.memory), let memory = paths["memory"] {
            let used = UInt64(max(0, try CgroupFiles.readInt(memory, "memory.usage_in_bytes")))
            let stat = try CgroupFiles.readKeyed(memory, "memory.stat")
            let inactive = UInt64(max(0, stat["total_inactive_file"] ?? stat["inactive_file"] ?? 0))
            usage.memoryUsageBytes = used
            usage.memoryWorkingSetBytes = used > inactive ? used - inactive : 0
            usage.oomKills = UInt64(max(0, (try? CgroupFiles.readKeyed(memory, "memory.oom_control"))?["oom_kill"] ?? 0))
        }
        if controllers.contains(.pids), let pids = paths["pids"] {
            usage.pids = UInt64(max(0, try CgroupFiles.readInt(pids, "pids.current")))
        }
        return usage
    }

    public func processes() -> [Int32] {
        Array(Set(directories.flatMap { CgroupFiles.processes($0) })).sorted()
    }

    /// Freezes the cgroup so nothing forks away, SIGKILLs every process, thaws, and waits for
    /// the cgroup to empty. A directory that is gone held nothing (rmdir refuses a populated
    /// cgroup): the kubelet removes a finished pod's cgroup tree, with the container cgroups
    /// in it, before its container GC calls RemoveContainer.
    public func killAll() throws(ContainerizerError) {
        let freezer = paths["freezer"].flatMap { CgroupFiles.exists($0) ? $0 : nil }
        if let freezer {
            try CgroupFiles.write(freezer, "freezer.state", "FROZEN")
            for _ in 0..<1000 {
                if (try? CgroupFiles.read(freezer, "freezer.state"))?.hasPrefix("FROZEN") == true { break }
                usleep(1000)
            }
        }
        for pid in processes() { kill(pid, SIGKILL) }
        if let freezer { try CgroupFiles.write(freezer, "freezer.state", "THAWED") }
        for _ in 0..<1000 {
            if processes().isEmpty { return }
            for pid in processes() { kill(pid, SIGKILL) }
            usleep(2000)
        }
        throw ContainerizerError(.cgroup, context: directories.first ?? "", detail: "processes remain after SIGKILL")
    }

    public func destroy() throws(ContainerizerError) {
        for directory in directories { try CgroupFiles.remove(directory) }
    }
}
