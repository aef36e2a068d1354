#if canImport(Glibc)
import Glibc
#endif

/// Where the host's /proc, /sys and cgroup mounts are; tests point these at a file tree.
public struct HostPaths: Sendable, Hashable {
    /// Where procfs is (`/proc`); the agent's cgroups are read from `<procRoot>/self/cgroup`.
    public var procRoot: String
    /// Where sysfs is (`/sys`).
    public var sysRoot: String
    /// Where the cgroup hierarchies are mounted (`/sys/fs/cgroup`: v1 controllers in subdirectories,
    /// cgroup2 at the root or at `unified/`).
    public var cgroupMountRoot: String

    /// The paths; the defaults are the real ones.
    public init(procRoot: String = "/proc", sysRoot: String = "/sys", cgroupMountRoot: String = "/sys/fs/cgroup") {
        self.procRoot = procRoot
        self.sysRoot = sysRoot
        self.cgroupMountRoot = cgroupMountRoot
    }
}

/// A cgroup hierarchy version.
public enum CgroupVersion: String, Sendable, Hashable { case v1, v2 }

/// Where a capacity figure came from, for logs and events ("capacity from the enclosing cgroup /kubepods/…").
public enum CapacitySource: Sendable, Hashable, CustomStringConvertible {
    /// The machine itself, read from `file` (/sys/devices/system/cpu/online, /proc/meminfo, …).
    case machine(file: String)
    /// The limit of the agent's cgroup or an ancestor: the cgroup path (as in /proc/self/cgroup) and the file.
    case cgroup(CgroupVersion, path: String, file: String)
    /// statvfs of the agent's root directory.
    case fileSystem(path: String)
    /// The agent's configuration (max pods).
    case configuration

    public var description: String {
        switch self {
        case .machine(let file): return "machine (\(file))"
        case .cgroup(let version, let path, let file): return "enclosing cgroup \(path) (\(version.rawValue) \(file))"
        case .fileSystem(let path): return "file system of \(path)"
        case .configuration: return "configuration"
        }
    }
}

/// The node's capacity: the machine's, or the tighter limits of the cgroup the agent runs in.
public struct MachineCapacity: Sendable {
    /// What to read and where.
    public struct Options: Sendable, Hashable {
        /// Where /proc, /sys and the cgroup mounts are.
        public var paths: HostPaths
        /// The agent's root directory: ephemeral-storage is its file system's size.
        public var rootDirectory: String
        /// The pods capacity (kubelet's maxPods).
        public var maxPods: Int

        /// Options; the defaults read this machine, with kubelet's 110 pods.
        public init(paths: HostPaths = HostPaths(), rootDirectory: String = "/", maxPods: Int = 110) {
            self.paths = paths
            self.rootDirectory = rootDirectory
            self.maxPods = maxPods
        }
    }

    /// cpu, memory, ephemeral-storage, pods and hugepages-<size>, as Node.status.capacity.
    public var resources: ResourceList
    /// Where each resource's figure came from.
    public var sources: [String: CapacitySource]
    /// The cgroup directory whose usage is the node's memory working set (the limiting cgroup, or the
    /// memory hierarchy's root on v1); nil when only /proc/meminfo can tell (cgroup v2 root, no controller).
    public var memoryStatsDirectory: String?
    /// The cgroup version of `memoryStatsDirectory`.
    public var memoryStatsVersion: CgroupVersion?
    /// The options it was detected with.
    public var options: Options

    /// Reads the capacity: online CPUs, MemTotal, hugepages pools, the root directory's file system
    /// and maxPods, each bounded by the agent's own cgroup and its ancestors (cpu quota, cpuset,
    /// memory limit; cgroup v1 or v2 per controller, as /proc/self/cgroup says).
    public static func detect(_ options: Options = Options()) throws(ResourceLedgerError) -> MachineCapacity {
        let paths = options.paths
        let placements = CgroupPlacement.all(paths)
        var resources: ResourceList = [:]
        var sources: [String: CapacitySource] = [:]

        // cpu
        let onlineFile = paths.sysRoot + "/devices/system/cpu/online"
        let online = HostFile.text(onlineFile).flatMap(Self.countCPUs) ?? Int64(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        var cpu = (millis: online * 1000, source: CapacitySource.machine(file: onlineFile))
        func tighterCPU(_ millis: Int64, _ source: CapacitySource) { if millis > 0 && millis < cpu.millis { cpu = (millis, source) } }
        for level in placements["cpu"]?.levels ?? [] {
            if placements["cpu"]!.version == .v1 {
                if let quota = HostFile.integer(level.directory + "/cpu.cfs_quota_us"), let period = HostFile.integer(level.directory + "/cpu.cfs_period_us"),
                   quota > 0, period > 0 {
                    tighterCPU((quota * 1000 + period - 1) / period, .cgroup(.v1, path: level.path, file: "cpu.cfs_quota_us"))
                }
            } else if let fields = HostFile.text(level.directory + "/cpu.max")?.split(separator: " "), fields.count == 2,
                      let quota = Int64(fields[0]), let period = Int64(fields[1]), quota > 0, period > 0 {
                tighterCPU((quota * 1000 + period - 1) / period, .cgroup(.v2, path: level.path, file: "cpu.max"))
            }
        }
        if let cpuset = placements["cpuset"] {
            let file = cpuset.version == .v1 ? "cpuset.cpus" : "cpuset.cpus.effective"
            for level in cpuset.levels {
                if let count = HostFile.text(level.directory + "/" + file).flatMap(Self.countCPUs) {
                    tighterCPU(count * 1000, .cgroup(cpuset.version, path: level.path, file: file))
                }
            }
        }
        resources[ResourceName.cpu] = Quantity(milli: cpu.millis)
        sources[ResourceName.cpu] = cpu.source

        // memory
        let meminfoFile = paths.procRoot + "/meminfo"
        guard let memTotal = HostFile.keyedValues(try HostFile.read(meminfoFile).get())["MemTotal"] else {
            throw ResourceLedgerError(.unreadable, context: meminfoFile, detail: "no MemTotal")
        }
        var memory = (bytes: memTotal, source: CapacitySource.machine(file: meminfoFile), directory: String?.none)
        if let placement = placements["memory"] {
            let file = placement.version == .v1 ? "memory.limit_in_bytes" : "memory.max"
            for level in placement.levels {
                // v1 "unlimited" is Int64.max rounded down to a page (4 KiB … 64 KiB); v2 says "max".
                if let limit = HostFile.integer(level.directory + "/" + file), limit > 0, limit < 0x7FFF_FFFF_FFFF_0000, limit < memory.bytes {
                    memory = (limit, .cgroup(placement.version, path: level.path, file: file), level.directory)
                }
            }
            if memory.directory == nil && placement.version == .v1 { memory.directory = placement.hierarchy }
        }
        resources[ResourceName.memory] = .bytes(memory.bytes)
        sources[ResourceName.memory] = memory.source

        // hugepages: every pool, even empty, as cadvisor reports them; kubelet takes them from
        // allocatable memory, not from memory capacity.
        let hugePagesDirectory = paths.sysRoot + "/kernel/mm/hugepages"
        for entry in HostFile.entries(hugePagesDirectory) where entry.hasPrefix("hugepages-") && entry.hasSuffix("kB") {
            guard let kib = Int64(entry.dropFirst("hugepages-".count).dropLast(2)),
                  let count = HostFile.integer("\(hugePagesDirectory)/\(entry)/nr_hugepages") else { continue }
            let name = ResourceName.hugePages(pageSizeBytes: kib * 1024)
            resources[name] = .bytes(count * kib * 1024)
            sources[name] = .machine(file: "\(hugePagesDirectory)/\(entry)/nr_hugepages")
        }

        // ephemeral-storage and pods
        resources[ResourceName.ephemeralStorage] = .bytes(try HostFile.fileSystem(options.rootDirectory).capacity)
        sources[ResourceName.ephemeralStorage] = .fileSystem(path: options.rootDirectory)
        resources[ResourceName.pods] = Quantity(Int64(options.maxPods))
        sources[ResourceName.pods] = .configuration

        return MachineCapacity(resources: resources, sources: sources, memoryStatsDirectory: memory.directory,
                               memoryStatsVersion: memory.directory == nil ? nil : placements["memory"]?.version, options: options)
    }

    /// The number of CPUs in a list like `0-3,5,8-9`; nil when empty or malformed.
    static func countCPUs(_ list: String) -> Int64? {
        var count: Int64 = 0
        for range in list.trimmingWhitespace.split(separator: ",") {
            let bounds = range.split(separator: "-").map { Int64($0.trimmingWhitespace) }
            guard let first = bounds.first ?? nil, let last = bounds.last ?? nil, bounds.count <= 2, last >= first else { return nil }
            count += last - first + 1
        }
        return count > 0 ? count : nil
    }
}

/// The agent's cgroup for one controller: its hierarchy, and its directories from itself up to the mount root.
struct CgroupPlacement {
    var version: CgroupVersion
    /// The mounted hierarchy's directory.
    var hierarchy: String
    /// The agent's cgroup and its visible ancestors, innermost first: directory and cgroup path.
    var levels: [(directory: String, path: String)]

    /// The placements of the cpu, cpuset and memory controllers, from `<procRoot>/self/cgroup`.
    static func all(_ paths: HostPaths) -> [String: CgroupPlacement] {
        let lines = (HostFile.text(paths.procRoot + "/self/cgroup") ?? "").split(separator: "\n").map {
            $0.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        }.filter { $0.count == 3 }
        let root = paths.cgroupMountRoot
        let unified = [root + "/unified", root].first { HostFile.exists($0 + "/cgroup.controllers") }
        let unifiedControllers = unified.flatMap { HostFile.text($0 + "/cgroup.controllers") }?.split(separator: " ").map(String.init) ?? []
        var result: [String: CgroupPlacement] = [:]
        for controller in ["cpu", "cpuset", "memory"] {
            if let line = lines.first(where: { $0[0] != "0" && $0[1].split(separator: ",").contains(Substring(controller)) }),
               let hierarchy = [root + "/" + controller, root + "/" + line[1]].first(where: HostFile.isDirectory) {
                result[controller] = CgroupPlacement(version: .v1, hierarchy: hierarchy, cgroupPath: line[2])
            } else if let line = lines.first(where: { $0[0] == "0" && $0[1].isEmpty }), let unified, unifiedControllers.contains(controller) {
                result[controller] = CgroupPlacement(version: .v2, hierarchy: unified, cgroupPath: line[2])
            }
        }
        return result
    }

    /// Finds the cgroup under the hierarchy. When the mount shows only part of the tree (a container
    /// without a cgroup namespace sees its own cgroup at the mount root), leading components are dropped
    /// until a directory exists; the mount root then stands for that prefix.
    init(version: CgroupVersion, hierarchy: String, cgroupPath: String) {
        self.version = version
        self.hierarchy = hierarchy
        let components = cgroupPath.split(separator: "/").map(String.init)
        var dropped = components.count
        for drop in 0...components.count where HostFile.isDirectory(([hierarchy] + components.dropFirst(drop)).joined(separator: "/")) {
            dropped = drop
            break
        }
        let prefix = Array(components.prefix(dropped))
        let visible = Array(components.dropFirst(dropped))
        levels = (0...visible.count).reversed().map { depth in
            (([hierarchy] + visible.prefix(depth)).joined(separator: "/"), "/" + (prefix + visible.prefix(depth)).joined(separator: "/"))
        }
    }
}
