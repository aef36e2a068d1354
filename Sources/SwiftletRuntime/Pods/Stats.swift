import CRI
import Containerizer
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Container and pod statistics: cgroup CPU and memory (the kubelet's working set), the
/// writable layer's size, and the pod network namespace's interface counters.
extension PodRuntime {
    /// ContainerStats for one container (zeros when it does not run).
    func stats(of record: ContainerRecord) -> ContainerStats {
        stats(of: record, usage: cgroupUsage(record))
    }

    /// The container's cgroup usage when it runs: read once per stats call.
    private func cgroupUsage(_ record: ContainerRecord) -> CgroupUsage? {
        guard containerizer.state(id: record.id) == .running else { return nil }
        return try? containerizer.usage(id: record.id)
    }

    private func stats(of record: ContainerRecord, usage: CgroupUsage?) -> ContainerStats {
        let now = nowNanoseconds()
        var stats = ContainerStats(attributes: ContainerAttributes(id: record.id, metadata: record.config.metadata,
                                                                   labels: record.config.labels, annotations: record.config.annotations))
        if let usage {
            stats.cpu = CpuUsage(timestamp: now, usageCoreNanoSeconds: UInt64Value(value: usage.cpuNanoseconds),
                                 usageNanoCores: UInt64Value(value: nanoCores(record.id, usage.cpuNanoseconds, at: now)))
            var memory = MemoryUsage(timestamp: now, workingSetBytes: UInt64Value(value: usage.memoryWorkingSetBytes),
                                     usageBytes: UInt64Value(value: usage.memoryUsageBytes))
            let limit = record.launch.resources.memoryLimitBytes
            if limit > 0 { memory.availableBytes = UInt64Value(value: UInt64(max(0, limit - Int64(clamping: usage.memoryWorkingSetBytes)))) }
            stats.memory = memory
        } else {
            stats.cpu = CpuUsage(timestamp: now, usageCoreNanoSeconds: UInt64Value(value: 0), usageNanoCores: UInt64Value(value: 0))
            stats.memory = MemoryUsage(timestamp: now, workingSetBytes: UInt64Value(value: 0))
        }
        let (bytes, inodes) = Self.diskUsage(rootfsDirectory(record.id) + "/upper")
        stats.writableLayer = FilesystemUsage(timestamp: now, fsId: FilesystemIdentifier(mountpoint: containersDirectory),
                                              usedBytes: UInt64Value(value: bytes), inodesUsed: UInt64Value(value: inodes))
        return stats
    }

    /// CPU use since the previous sample, in nanocores (0 on the first).
    private func nanoCores(_ id: String, _ usage: UInt64, at time: Int64) -> UInt64 {
        state.withLock { state in
            defer { state.cpuSamples[id] = (time, usage) }
            guard let (previousTime, previousUsage) = state.cpuSamples[id], time > previousTime, usage >= previousUsage else { return 0 }
            return UInt64(Double(usage - previousUsage) / Double(time - previousTime) * 1e9)
        }
    }

    /// ListContainerStats: running containers matching the filter.
    func listStats(_ filter: ContainerStatsFilter?) -> [ContainerStats] {
        let records = state.withLock { Array($0.containers.values) }
        return records.filter { record in
            guard containerizer.state(id: record.id) == .running else { return false }
            guard let filter else { return true }
            if !filter.id.isEmpty && !record.id.hasPrefix(filter.id) { return false }
            if !filter.podSandboxId.isEmpty && !record.sandboxID.hasPrefix(filter.podSandboxId) { return false }
            return matches(record.config.labels, selector: filter.labelSelector)
        }
        .sorted { $0.createdAt < $1.createdAt }
        .map(stats(of:))
    }

    /// PodSandboxStats: its containers' sums, process count, and network counters.
    func stats(of sandbox: SandboxRecord) -> PodSandboxStats {
        let now = nowNanoseconds()
        let records = state.withLock { $0.containers.values.filter { $0.sandboxID == sandbox.id } }
        let running = records.compactMap { record in cgroupUsage(record).map { (record, $0) } }
        let containers = running.map { stats(of: $0.0, usage: $0.1) }
        let processes = running.reduce(0) { $0 + $1.1.pids }
        var cpu: UInt64 = 0, nanoCores: UInt64 = 0, workingSet: UInt64 = 0, usage: UInt64 = 0
        for stats in containers {
            cpu += stats.cpu?.usageCoreNanoSeconds?.value ?? 0
            nanoCores += stats.cpu?.usageNanoCores?.value ?? 0
            workingSet += stats.memory?.workingSetBytes?.value ?? 0
            usage += stats.memory?.usageBytes?.value ?? 0
        }
        var linux = LinuxPodSandboxStats(
            cpu: CpuUsage(timestamp: now, usageCoreNanoSeconds: UInt64Value(value: cpu), usageNanoCores: UInt64Value(value: nanoCores)),
            memory: MemoryUsage(timestamp: now, workingSetBytes: UInt64Value(value: workingSet), usageBytes: UInt64Value(value: usage)),
            process: ProcessUsage(timestamp: now, processCount: UInt64Value(value: processes)),
            containers: containers)
        if !sandbox.hostNetwork, let pid = podProcess(sandbox, records) {
            let interfaces = Self.networkCounters(pid: pid).map { counters in
                NetworkInterfaceUsage(name: counters.name, rxBytes: UInt64Value(value: counters.rxBytes), rxErrors: UInt64Value(value: counters.rxErrors),
                                      txBytes: UInt64Value(value: counters.txBytes), txErrors: UInt64Value(value: counters.txErrors))
            }.filter { $0.name != "lo" }
            linux.network = NetworkUsage(timestamp: now, defaultInterface: interfaces.first { $0.name == "eth0" } ?? interfaces.first,
                                         interfaces: interfaces)
        }
        return PodSandboxStats(
            attributes: PodSandboxAttributes(id: sandbox.id, metadata: sandbox.config.metadata, labels: sandbox.config.labels,
                                             annotations: sandbox.config.annotations),
            linux: linux)
    }

    /// A process in the pod's network namespace (the pid holder or a running container).
    private func podProcess(_ sandbox: SandboxRecord, _ records: [ContainerRecord]) -> Int32? {
        if let holder = sandbox.pidHolder, let info = containerizer.info(id: holder), info.state == .running { return info.pid }
        return records.lazy.compactMap { self.containerizer.info(id: $0.id) }.first { $0.state == .running }?.pid
    }

    struct InterfaceCounters {
        var name: String
        var rxBytes: UInt64, rxErrors: UInt64, txBytes: UInt64, txErrors: UInt64
    }

    /// /proc/<pid>/net/dev: the counters of the network namespace `pid` is in.
    static func networkCounters(pid: Int32) -> [InterfaceCounters] {
        let text = read("/proc/\(pid)/net/dev")
        return text.split(separator: "\n").dropFirst(2).compactMap { line in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            let numbers = parts[1].split(separator: " ").compactMap { UInt64($0) }
            guard numbers.count >= 11 else { return nil }
            return InterfaceCounters(name: parts[0].trimmingCharacters(in: .whitespaces), rxBytes: numbers[0], rxErrors: numbers[2],
                                     txBytes: numbers[8], txErrors: numbers[10])
        }
    }

    /// Bytes and inodes under a directory (not following symlinks, one file system).
    static func diskUsage(_ path: String) -> (UInt64, UInt64) {
        var bytes: UInt64 = 0, inodes: UInt64 = 0
        var root = stat()
        guard lstat(path, &root) == 0 else { return (0, 0) }
        var stack = [path]
        while let directory = stack.popLast() {
            guard let handle = opendir(directory) else { continue }
            defer { closedir(handle) }
            while let entry = readdir(handle) {
                let name = withUnsafePointer(to: entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
                if name == "." || name == ".." { continue }
                let child = directory + "/" + name
                var info = stat()
                guard lstat(child, &info) == 0, info.st_dev == root.st_dev else { continue }
                inodes += 1
                bytes += UInt64(max(0, info.st_blocks)) * 512
                if (info.st_mode & S_IFMT) == S_IFDIR { stack.append(child) }
            }
        }
        return (bytes, inodes)
    }

    /// ListPodSandboxStats.
    func listSandboxStats(_ filter: PodSandboxStatsFilter?) -> [PodSandboxStats] {
        let sandboxes = state.withLock { Array($0.sandboxes.values) }
        return sandboxes.filter { sandbox in
            guard sandbox.state == .ready else { return false }
            guard let filter else { return true }
            if !filter.id.isEmpty && !sandbox.id.hasPrefix(filter.id) { return false }
            return matches(sandbox.config.labels, selector: filter.labelSelector)
        }
        .sorted { $0.createdAt < $1.createdAt }
        .map(stats(of:))
    }
}
