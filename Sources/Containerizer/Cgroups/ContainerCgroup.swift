/// The resource limits of a container, in the CRI's units (LinuxContainerResources).
public struct ResourceLimits: Sendable, Equatable, Codable {
    /// cpu.shares (v1) / mapped to cpu.weight (v2); 0 leaves the default.
    public var cpuShares: Int64 = 0
    /// CFS quota per period in µs; 0 or less is unlimited.
    public var cpuQuota: Int64 = 0
    /// CFS period in µs; 0 leaves the default (100000).
    public var cpuPeriod: Int64 = 0
    /// Memory limit in bytes; 0 is unlimited. Swap is never granted beyond it.
    public var memoryLimitBytes: Int64 = 0
    /// Maximum number of processes; 0 is unlimited.
    public var pidsLimit: Int64 = 0
    /// cpuset.cpus / cpuset.mems ("0-1", "0"); empty inherits.
    public var cpusetCpus: String = ""
    public var cpusetMems: String = ""
    /// Huge page size ("2MB", "1GB") -> limit in bytes.
    public var hugepageLimits: [String: Int64] = [:]

    public init(cpuShares: Int64 = 0, cpuQuota: Int64 = 0, cpuPeriod: Int64 = 0, memoryLimitBytes: Int64 = 0,
                pidsLimit: Int64 = 0, cpusetCpus: String = "", cpusetMems: String = "", hugepageLimits: [String: Int64] = [:]) {
        self.cpuShares = cpuShares
        self.cpuQuota = cpuQuota
        self.cpuPeriod = cpuPeriod
        self.memoryLimitBytes = memoryLimitBytes
        self.pidsLimit = pidsLimit
        self.cpusetCpus = cpusetCpus
        self.cpusetMems = cpusetMems
        self.hugepageLimits = hugepageLimits
    }
}

/// What a container's cgroup reports.
public struct CgroupUsage: Sendable, Equatable, Codable {
    /// Total CPU time consumed, in nanoseconds.
    public var cpuNanoseconds: UInt64 = 0
    /// Memory charged, in bytes.
    public var memoryUsageBytes: UInt64 = 0
    /// The kubelet's working set: usage minus inactive file pages.
    public var memoryWorkingSetBytes: UInt64 = 0
    /// Processes in the cgroup.
    public var pids: UInt64 = 0
    /// How often the OOM killer killed a process of this cgroup.
    public var oomKills: UInt64 = 0

    public init() {}
}

/// The cgroup controllers an isolator is responsible for.
public struct Controllers: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let cpu = Controllers(rawValue: 1 << 0)
    public static let memory = Controllers(rawValue: 1 << 1)
    public static let pids = Controllers(rawValue: 1 << 2)
    public static let cpuset = Controllers(rawValue: 1 << 3)
    public static let hugetlb = Controllers(rawValue: 1 << 4)
    public static let all: Controllers = [.cpu, .memory, .pids, .cpuset, .hugetlb]
}

/// One container's cgroup, on cgroup v1 (a directory per controller) or v2 (one directory).
public protocol ContainerCgroup: Sendable {
    /// The cgroup directories a process is added to (each one's `cgroup.procs`).
    var directories: [String] { get }
    /// Creates the directories (and missing parents).
    func create() throws(ContainerizerError)
    /// Writes the limits of `controllers` (also on a running container: `update`).
    func apply(_ limits: ResourceLimits, to controllers: Controllers) throws(ContainerizerError)
    /// What `controllers` report (cpu time; memory, working set and OOM kills; pids): only
    /// their files are read, so each isolator reads its own.
    func usage(of controllers: Controllers) throws(ContainerizerError) -> CgroupUsage
    /// The processes in the cgroup.
    func processes() -> [Int32]
    /// Kills every process in the cgroup, including ones forking as it runs.
    func killAll() throws(ContainerizerError)
    /// Removes the directories; the cgroup must be empty.
    func destroy() throws(ContainerizerError)
}

extension ContainerCgroup {
    /// Everything the cgroup reports.
    public func usage() throws(ContainerizerError) -> CgroupUsage {
        try usage(of: .all)
    }
}
