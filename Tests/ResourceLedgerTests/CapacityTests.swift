import Foundation
@testable import ResourceLedger
import SwiftletTestSupport
import Testing

@Suite("capacity detection from /proc, /sys and cgroup file trees")
struct CapacityTests {
    /// A fake host: 8 online CPUs, 16 GiB MemTotal, hugepage pools, and the given files.
    static func host(_ files: [String: String]) throws -> (TemporaryTree, MachineCapacity.Options) {
        let tree = try TemporaryTree(prefix: "resource-ledger")
        try tree.write("sys/devices/system/cpu/online", "0-7\n")
        try tree.write("proc/meminfo", "MemTotal:       16777216 kB\nMemFree:         1000000 kB\nMemAvailable:    8388608 kB\n")
        try tree.write("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "512\n")
        try tree.write("sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "0\n")
        for (path, text) in files { try tree.write(path, text) }
        let paths = HostPaths(procRoot: tree.path + "/proc", sysRoot: tree.path + "/sys", cgroupMountRoot: tree.path + "/cgroup")
        return (tree, MachineCapacity.Options(paths: paths, rootDirectory: tree.path, maxPods: 110))
    }

    @Test("cgroup v1: the tightest quota, cpuset and memory limit of the agent's cgroup and its ancestors")
    func v1Ancestors() throws {
        let (tree, options) = try Self.host([
            "proc/self/cgroup": "5:memory:/kubepods/pod1/c1\n3:cpu,cpuacct:/kubepods/pod1/c1\n2:cpuset:/kubepods/pod1/c1\n1:name=systemd:/x\n0::/\n",
            // cpu and cpuacct share a mount named for both, as on most distributions.
            "cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            "cgroup/cpu,cpuacct/kubepods/cpu.cfs_quota_us": "400000\n", "cgroup/cpu,cpuacct/kubepods/cpu.cfs_period_us": "100000\n",
            "cgroup/cpu,cpuacct/kubepods/pod1/cpu.cfs_quota_us": "150000\n", "cgroup/cpu,cpuacct/kubepods/pod1/cpu.cfs_period_us": "100000\n",
            "cgroup/cpu,cpuacct/kubepods/pod1/c1/cpu.cfs_quota_us": "-1\n", "cgroup/cpu,cpuacct/kubepods/pod1/c1/cpu.cfs_period_us": "100000\n",
            "cgroup/cpuset/cpuset.cpus": "0-7\n", "cgroup/cpuset/kubepods/pod1/c1/cpuset.cpus": "0-3\n",
            "cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
            "cgroup/memory/kubepods/memory.limit_in_bytes": "4294967296\n",
            "cgroup/memory/kubepods/pod1/memory.limit_in_bytes": "2147483648\n",
            "cgroup/memory/kubepods/pod1/c1/memory.limit_in_bytes": "9223372036854771712\n",
            "cgroup/unified/cgroup.controllers": "\n",
        ])
        let capacity = try MachineCapacity.detect(options)
        #expect(capacity.resources.apiStrings == [
            "cpu": "1500m", "memory": "2Gi", "hugepages-2Mi": "1Gi", "hugepages-1Gi": "0", "pods": "110",
            "ephemeral-storage": capacity.resources["ephemeral-storage"]!.description,
        ])
        #expect(capacity.sources["cpu"] == .cgroup(.v1, path: "/kubepods/pod1", file: "cpu.cfs_quota_us"))
        #expect(capacity.sources["memory"] == .cgroup(.v1, path: "/kubepods/pod1", file: "memory.limit_in_bytes"))
        #expect(capacity.sources["memory"]!.description == "enclosing cgroup /kubepods/pod1 (v1 memory.limit_in_bytes)")
        #expect(capacity.sources["pods"] == .configuration)
        #expect(capacity.memoryStatsDirectory == tree.path + "/cgroup/memory/kubepods/pod1")
        #expect(capacity.resources["ephemeral-storage"]! > .zero)
    }

    @Test("cgroup v1: a cpuset narrower than the quota wins")
    func v1Cpuset() throws {
        let (tree, options) = try Self.host([
            "proc/self/cgroup": "3:cpu,cpuacct:/agent\n2:cpuset:/agent\n",
            "cgroup/cpu/agent/cpu.cfs_quota_us": "350000\n", "cgroup/cpu/agent/cpu.cfs_period_us": "100000\n",
            "cgroup/cpuset/agent/cpuset.cpus": "2,5\n",
        ])
        let capacity = try MachineCapacity.detect(options)
        #expect(capacity.resources["cpu"]?.description == "2")
        #expect(capacity.sources["cpu"] == .cgroup(.v1, path: "/agent", file: "cpuset.cpus"))
        // No memory controller at all: MemTotal, from the machine.
        #expect(capacity.resources["memory"]?.description == "16Gi")
        #expect(capacity.sources["memory"] == .machine(file: tree.path + "/proc/meminfo"))
        #expect(capacity.memoryStatsDirectory == nil)
    }

    @Test("cgroup v2: cpu.max and memory.max along the path")
    func v2() throws {
        let (tree, options) = try Self.host([
            "proc/self/cgroup": "0::/system.slice/agent.service\n",
            "cgroup/cgroup.controllers": "cpuset cpu io memory pids\n",
            "cgroup/cpuset.cpus.effective": "0-7\n",
            "cgroup/system.slice/cpu.max": "max 100000\n",
            "cgroup/system.slice/memory.max": "1073741824\n",
            "cgroup/system.slice/agent.service/cpu.max": "250000 100000\n",
            "cgroup/system.slice/agent.service/memory.max": "max\n",
            "cgroup/system.slice/agent.service/cpuset.cpus.effective": "0-3\n",
        ])
        let capacity = try MachineCapacity.detect(options)
        #expect(capacity.resources["cpu"]?.description == "2500m")
        #expect(capacity.sources["cpu"] == .cgroup(.v2, path: "/system.slice/agent.service", file: "cpu.max"))
        #expect(capacity.resources["memory"]?.description == "1Gi")
        #expect(capacity.sources["memory"] == .cgroup(.v2, path: "/system.slice", file: "memory.max"))
        #expect(capacity.memoryStatsDirectory == tree.path + "/cgroup/system.slice")
        #expect(capacity.memoryStatsVersion == .v2)
    }

    @Test("hybrid hierarchy without limits: the machine's CPUs and MemTotal")
    func hybridUnlimited() throws {
        let (tree, options) = try Self.host([
            "proc/self/cgroup": "4:memory:/process_api/abc\n3:cpuset:/\n1:cpu:/\n0::/\n",
            "cgroup/cpu/cpu.cfs_quota_us": "-1\n", "cgroup/cpu/cpu.cfs_period_us": "100000\n",
            "cgroup/cpuset/cpuset.cpus": "0-7\n",
            "cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
            "cgroup/memory/process_api/memory.limit_in_bytes": "9223372036854771712\n",
            "cgroup/memory/process_api/abc/memory.limit_in_bytes": "9223372036854771712\n",
            "cgroup/unified/cgroup.controllers": "hugetlb\n",
        ])
        let capacity = try MachineCapacity.detect(options)
        #expect(capacity.resources["cpu"]?.description == "8")
        #expect(capacity.sources["cpu"] == .machine(file: tree.path + "/sys/devices/system/cpu/online"))
        #expect(capacity.resources["memory"]?.description == "16Gi")
        #expect(capacity.sources["memory"] == .machine(file: tree.path + "/proc/meminfo"))
        // Working set then comes from the v1 memory root, as kubelet's root-cgroup stats.
        #expect(capacity.memoryStatsDirectory == tree.path + "/cgroup/memory")
    }

    @Test("a container without a cgroup namespace sees its own cgroup at the mount root")
    func containerWithoutNamespace() throws {
        let (tree, options) = try Self.host([
            "proc/self/cgroup": "4:memory:/docker/abc\n",
            "cgroup/memory/memory.limit_in_bytes": "536870912\n",
        ])
        let capacity = try withExtendedLifetime(tree) { try MachineCapacity.detect(options) }
        #expect(capacity.resources["memory"]?.description == "512Mi")
        #expect(capacity.sources["memory"] == .cgroup(.v1, path: "/docker/abc", file: "memory.limit_in_bytes"))
    }

    @Test("CPU lists", arguments: [("0-7", 8), ("0", 1), ("0-3,5,8-9\n", 7), ("", nil), ("3-1", nil), ("a", nil)] as [(String, Int64?)])
    func cpuLists(list: String, count: Int64?) {
        #expect(MachineCapacity.countCPUs(list) == count)
    }

    @Test("a missing /proc/meminfo or root directory is an error naming the path")
    func missing() throws {
        let tree = try TemporaryTree(prefix: "resource-ledger")
        let options = MachineCapacity.Options(paths: HostPaths(procRoot: tree.path + "/proc", sysRoot: tree.path, cgroupMountRoot: tree.path), rootDirectory: tree.path)
        #expect {
            _ = try MachineCapacity.detect(options)
        } throws: { error in
            (error as? ResourceLedgerError)?.context == tree.path + "/proc/meminfo" && (error as? ResourceLedgerError)?.errno == ENOENT
        }
        try tree.write("proc/meminfo", "MemTotal: 1024 kB\n")
        var noRoot = options
        noRoot.rootDirectory = tree.path + "/absent"
        #expect(throws: ResourceLedgerError.self) { try MachineCapacity.detect(noRoot) }
    }

    // MARK: This machine

    /// Whether this process's memory cgroup and its ancestors leave memory unlimited (below MemTotal).
    static func memoryUnlimited() -> Bool {
        guard let cgroups = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
              let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
              let totalKB = meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") })?
                  .split(separator: " ").dropFirst().first.flatMap({ Int64($0) }) else { return false }
        for line in cgroups.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let (base, file): (String, String) = fields[1].split(separator: ",").contains("memory")
                ? ("/sys/fs/cgroup/memory", "memory.limit_in_bytes") : fields[0] == "0" ? ("/sys/fs/cgroup", "memory.max") : ("", "")
            guard !base.isEmpty else { continue }
            var path = String(fields[2])
            while true {
                if let text = try? String(contentsOfFile: base + path + "/" + file, encoding: .utf8),
                   let limit = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit < totalKB * 1024 { return false }
                if path == "/" || path.isEmpty { break }
                path = (path as NSString).deletingLastPathComponent
            }
        }
        return true
    }

    @Test("this machine: online CPUs, and MemTotal when memory is unlimited")
    func thisMachine() throws {
        let capacity = try MachineCapacity.detect(MachineCapacity.Options(rootDirectory: NSTemporaryDirectory()))
        let online = Int64(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        if case .machine = capacity.sources["cpu"] {
            #expect(capacity.resources["cpu"] == Quantity(online))
        } else {
            #expect(capacity.resources["cpu"]! <= Quantity(online))  // a quota or cpuset of an enclosing cgroup
        }
        #expect(capacity.resources["cpu"]! > .zero)
        if Self.memoryUnlimited() {
            let meminfo = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
            let kb = meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }!.split(separator: " ")[1]
            #expect(capacity.resources["memory"] == .bytes(Int64(kb)! * 1024))
            #expect(capacity.resources["memory"]?.description == "\(kb)Ki")
        } else {
            #expect(capacity.sources["memory"].map { if case .cgroup = $0 { true } else { false } } == true)
        }
        #expect(capacity.resources["ephemeral-storage"]! > .zero)
        #expect(capacity.resources.keys.contains("hugepages-2Mi") == FileManager.default.fileExists(atPath: "/sys/kernel/mm/hugepages/hugepages-2048kB"))
    }
}
