#if canImport(Glibc)
import Glibc
#endif

/// One eviction signal's reading: what is available and out of what (percentages apply to `capacity`).
public struct SignalObservation: Sendable, Hashable, CustomStringConvertible {
    /// What is left (bytes, inodes or process ids).
    public var available: Quantity
    /// The total it is left of.
    public var capacity: Quantity

    /// Makes an observation.
    public init(available: Quantity, capacity: Quantity) {
        self.available = available
        self.capacity = capacity
    }

    public var description: String { "\(available) of \(capacity)" }
}

/// The node's eviction signals, read as kubelet's eviction manager observes them.
public struct NodeSignals: Sendable, Hashable {
    /// The observations by signal; signals that could not be read are absent.
    public var observations: [EvictionSignal: SignalObservation]
    /// The memory working set in bytes (usage less inactive file pages), when read from a cgroup.
    public var memoryWorkingSet: Quantity?
    /// Where memory.available came from: the cgroup directory, or /proc/meminfo.
    public var memorySource: String

    /// Makes signals from observations.
    public init(observations: [EvictionSignal: SignalObservation], memoryWorkingSet: Quantity? = nil, memorySource: String = "") {
        self.observations = observations
        self.memoryWorkingSet = memoryWorkingSet
        self.memorySource = memorySource
    }

    /// The observation of one signal.
    public subscript(signal: EvictionSignal) -> SignalObservation? { observations[signal] }

    /// Reads the signals for a node of this capacity:
    /// - memory.available: memory capacity − working set, the working set being the usage of the
    ///   limiting cgroup (or the v1 memory root) less its inactive file pages (v1 `total_inactive_file`,
    ///   v2 `inactive_file`); /proc/meminfo MemAvailable when no cgroup can tell.
    /// - nodefs.* (and containerfs.*): statvfs of the root directory; imagefs.*: of `imageFsDirectory`,
    ///   or the root directory's when images share it.
    /// - pid.available: min(kernel.pid_max, kernel.threads-max) − tasks (from /proc/loadavg).
    public static func read(capacity: MachineCapacity, imageFsDirectory: String? = nil) throws(ResourceLedgerError) -> NodeSignals {
        let paths = capacity.options.paths
        var observations: [EvictionSignal: SignalObservation] = [:]
        let memoryCapacity = capacity.resources[ResourceName.memory] ?? .zero

        var workingSet: Quantity?
        var memorySource = paths.procRoot + "/meminfo"
        if let directory = capacity.memoryStatsDirectory, let version = capacity.memoryStatsVersion,
           let usage = HostFile.integer(directory + (version == .v1 ? "/memory.usage_in_bytes" : "/memory.current")),
           let stat = HostFile.text(directory + "/memory.stat").map(HostFile.keyedValues) {
            let inactive = stat[version == .v1 ? "total_inactive_file" : "inactive_file"] ?? 0
            workingSet = .bytes(max(0, usage - inactive))
            memorySource = directory
        }
        if let workingSet {
            observations[.memoryAvailable] = SignalObservation(available: (memoryCapacity - workingSet).clampedAtZero, capacity: memoryCapacity)
        } else {
            let meminfo = HostFile.keyedValues(try HostFile.read(paths.procRoot + "/meminfo").get())
            if let available = meminfo["MemAvailable"] {
                observations[.memoryAvailable] = SignalObservation(available: .bytes(min(available, memoryCapacity.value)), capacity: memoryCapacity)
            }
        }

        let nodeFs = try HostFile.fileSystem(capacity.options.rootDirectory)
        let imageFs = try imageFsDirectory.map { dir throws(ResourceLedgerError) in try HostFile.fileSystem(dir) } ?? nodeFs
        for (fs, space, inodes) in [(nodeFs, EvictionSignal.nodeFsAvailable, EvictionSignal.nodeFsInodesFree),
                                    (nodeFs, .containerFsAvailable, .containerFsInodesFree),
                                    (imageFs, .imageFsAvailable, .imageFsInodesFree)] {
            observations[space] = SignalObservation(available: .bytes(fs.available), capacity: .bytes(fs.capacity))
            observations[inodes] = SignalObservation(available: Quantity(fs.inodesFree), capacity: Quantity(fs.inodes))
        }

        let limits = ["pid_max", "threads-max"].compactMap { HostFile.integer(paths.procRoot + "/sys/kernel/" + $0) }
        if let maxTasks = limits.min() {
            // /proc/loadavg: "0.38 0.70 0.87 1/84 31385" — runnable/total tasks.
            let loadavgTasks = HostFile.text(paths.procRoot + "/loadavg")?.split(separator: " ").dropFirst(3).first?
                .split(separator: "/").last.flatMap { Int64($0) }
            let tasks = loadavgTasks ?? Int64(HostFile.entries(paths.procRoot).filter { Int($0) != nil }.count)
            observations[.pidAvailable] = SignalObservation(available: Quantity(max(0, maxTasks - tasks)), capacity: Quantity(maxTasks))
        }
        return NodeSignals(observations: observations, memoryWorkingSet: workingSet, memorySource: memorySource)
    }
}

/// Which node pressure conditions hold.
public struct NodePressure: Sendable, Hashable {
    /// MemoryPressure.
    public var memory: Bool
    /// DiskPressure.
    public var disk: Bool
    /// PIDPressure.
    public var pid: Bool
    /// The thresholds met, for logs and events ("memory.available<100Mi").
    public var thresholdsMet: [EvictionThreshold]

    /// Evaluates thresholds against signals, as kubelet's thresholdsMet: a threshold is met when its
    /// quantity (of the observation's capacity, for percentages) is non-zero and more than what is
    /// available. Thresholds without an observation are not met.
    public init(thresholds: [EvictionThreshold], signals: NodeSignals) {
        thresholdsMet = thresholds.filter { threshold in
            guard let observed = signals[threshold.signal] else { return false }
            let quantity = threshold.quantity(capacity: observed.capacity)
            return !quantity.isZero && observed.available < quantity
        }
        memory = thresholdsMet.contains { $0.signal.condition == .memoryPressure }
        disk = thresholdsMet.contains { $0.signal.condition == .diskPressure }
        pid = thresholdsMet.contains { $0.signal.condition == .pidPressure }
    }
}
