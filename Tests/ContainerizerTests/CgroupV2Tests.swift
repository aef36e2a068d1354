import Foundation
import SwiftletTestSupport
import Testing
@testable import Containerizer

/// cgroup v2 against the real cgroup2 hierarchy of these hybrid hosts (/sys/fs/cgroup/unified,
/// where only hugetlb is free — cpu, memory and pids are bound to v1): creation, process
/// placement, hugetlb limits, cgroup.kill and removal are verified there; the cpu, memory
/// and pids files on a file tree laid out like a v2 cgroup.
@Suite("cgroup v2", .serialized)
struct CgroupV2Tests {
    static var unifiedMount: String? {
        CgroupLayout.current().v2Mount
    }

    @Test("on the real cgroup2 mount: create, place a process, hugetlb limit, cgroup.kill, remove")
    func realHierarchy() throws {
        let layout = CgroupLayout.current()
        guard let mount = layout.v2Mount else {
            Issue.record("no cgroup2 hierarchy is mounted on this machine")
            return
        }
        let root = "swiftlet-test-v2-\(getpid())"
        let cgroup = CgroupV2(mount: mount, root: root, id: "c1", available: layout.v2Controllers)
        defer {
            try? cgroup.killAll()
            try? cgroup.destroy()
            rmdir("\(mount)/\(root)")
        }
        try cgroup.create()
        #expect(FileManager.default.fileExists(atPath: cgroup.path + "/cgroup.procs"))
        if layout.v2Controllers.contains("hugetlb") {
            // The parent enabled hugetlb for its children.
            #expect(readFile("\(mount)/\(root)/cgroup.subtree_control").contains("hugetlb"))
            let size = try #require(readFile("\(mount)/cgroup.controllers").contains("hugetlb")
                ? (try FileManager.default.contentsOfDirectory(atPath: cgroup.path).first { $0.hasPrefix("hugetlb.") && $0.hasSuffix(".max") })
                : nil)
            let pageSize = String(size.dropFirst("hugetlb.".count).dropLast(".max".count))
            try cgroup.apply(ResourceLimits(hugepageLimits: [pageSize: 0]), to: .hugetlb)
            #expect(readFile(cgroup.path + "/" + size) == "0\n")
        }
        // A real process, moved in, then killed by cgroup.kill with everything it forked.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sh")
        // The shell moves itself in before it forks, so its children are born inside.
        child.arguments = ["-c", "echo $$ > \(cgroup.path)/cgroup.procs && { sleep 60 & sleep 60; }"]
        try child.run()
        usleep(200_000)
        #expect(cgroup.processes().contains(child.processIdentifier))
        #expect(cgroup.processes().count >= 2)  // the shell and its background sleep
        try cgroup.killAll()
        child.waitUntilExit()
        #expect(child.terminationReason == .uncaughtSignal)
        #expect(readFile(cgroup.path + "/cgroup.events").contains("populated 0"))
        try cgroup.destroy()
        #expect(!FileManager.default.fileExists(atPath: cgroup.path))
    }

    @Test("on the real cgroup2 mount: the BPF device filter allows the listed devices and refuses the others",
          arguments: [false, true])
    func deviceFilter(allowKmsg: Bool) throws {
        let layout = CgroupLayout.current()
        guard let mount = layout.v2Mount else {
            Issue.record("no cgroup2 hierarchy is mounted on this machine")
            return
        }
        let root = "swiftlet-test-v2dev-\(getpid())-\(allowKmsg)"
        let cgroup = CgroupV2(mount: mount, root: root, id: "c1", available: layout.v2Controllers)
        let tree = try TemporaryTree(prefix: "swiftlet-v2dev")
        defer {
            try? cgroup.killAll()
            try? cgroup.destroy()
            rmdir("\(mount)/\(root)")
        }
        try cgroup.create()
        try cgroup.restrictDevices(to: DeviceRules.defaultAllowed + (allowKmsg ? ["c 1:11 r"] : []))
        // The shell moves itself in, then tries: write /dev/null, read /dev/zero (allowed), read
        // /dev/kmsg (c 1:11, allowed only when listed), mknod (allowed: m on every char device).
        let output = tree.path + "/out"
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sh")
        child.arguments = ["-c", """
            echo $$ > \(cgroup.path)/cgroup.procs || exit 9
            { echo x > /dev/null && echo null-ok; head -c 1 /dev/zero | wc -c; \
              dd if=/dev/kmsg of=/dev/null count=0 2>/dev/null && echo kmsg-ok || echo kmsg-denied; \
              mknod \(tree.path)/node c 1 11 && echo mknod-ok; } > \(output) 2>&1
            """]
        try child.run()
        child.waitUntilExit()
        #expect(child.terminationStatus == 0)
        let lines = readFile(output).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines == ["null-ok", "1", allowKmsg ? "kmsg-ok" : "kmsg-denied", "mknod-ok"])
        // Outside the cgroup nothing changed.
        #expect(FileManager.default.isReadableFile(atPath: "/dev/kmsg"))
    }

    @Test("a device rule that is not the devices cgroup's syntax is refused", arguments: ["x 1:3 rwm", "c 1 rwm", "c 1:3 q", "c a:b r", "c 1:3"])
    func badDeviceRule(_ rule: String) {
        #expect(throws: ContainerizerError.self) { _ = try DeviceRules.parse(rule) }
    }

    @Test("on a file tree laid out like cgroup v2: cpu.max, cpu.weight, memory.max, swap off, pids.max, usage")
    func fileTree() throws {
        let tree = try TemporaryTree()
        let mount = try tree.directory("cgroup")
        try tree.write("cgroup/cgroup.subtree_control", "")
        try tree.write("cgroup/swiftlet/cgroup.subtree_control", "")
        let cgroup = CgroupV2(mount: mount, root: "swiftlet", id: "c1", available: ["cpu", "memory", "pids", "cpuset"])
        try cgroup.create()
        for file in ["cpu.max", "cpu.weight", "memory.max", "memory.swap.max", "pids.max", "cpuset.cpus"] {
            try tree.write("cgroup/swiftlet/c1/\(file)", "")
        }
        try tree.write("cgroup/swiftlet/c1/cpu.stat", "usage_usec 1500\nuser_usec 1000\n")
        try tree.write("cgroup/swiftlet/c1/memory.current", "10485760\n")
        try tree.write("cgroup/swiftlet/c1/memory.stat", "anon 4096\ninactive_file 4194304\n")
        try tree.write("cgroup/swiftlet/c1/memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
        try tree.write("cgroup/swiftlet/c1/pids.current", "7\n")
        try cgroup.apply(ResourceLimits(cpuShares: 1024, cpuQuota: 50_000, cpuPeriod: 100_000, memoryLimitBytes: 64 << 20,
                                        pidsLimit: 100, cpusetCpus: "0-1"), to: .all)
        #expect(readFile(cgroup.path + "/cpu.max") == "50000 100000")
        #expect(readFile(cgroup.path + "/cpu.weight") == "39")  // the kubelet's conversion of 1024 shares
        #expect(readFile(cgroup.path + "/memory.max") == "\(64 << 20)")
        #expect(readFile(cgroup.path + "/memory.swap.max") == "0")
        #expect(readFile(cgroup.path + "/pids.max") == "100")
        #expect(readFile(cgroup.path + "/cpuset.cpus") == "0-1")
        #expect(readFile(mount + "/cgroup.subtree_control") == "+cpu +cpuset +memory +pids")
        try cgroup.apply(ResourceLimits(), to: .all)
        #expect(readFile(cgroup.path + "/cpu.max") == "max 100000")
        #expect(readFile(cgroup.path + "/memory.max") == "max")
        #expect(readFile(cgroup.path + "/pids.max") == "max")
        let usage = try cgroup.usage()
        #expect(usage.cpuNanoseconds == 1_500_000)
        #expect(usage.memoryUsageBytes == 10_485_760)
        #expect(usage.memoryWorkingSetBytes == 10_485_760 - 4_194_304)
        #expect(usage.oomKills == 1)
        #expect(usage.pids == 7)
    }

    @Test("cpu shares map to cpu.weight as the kubelet maps them", arguments: [
        (Int64(2), Int64(1)), (1024, 39), (262_144, 10_000), (512, 20),
    ])
    func weights(shares: Int64, weight: Int64) {
        #expect(CgroupV2.weight(forShares: shares) == weight)
    }
}
