import Foundation
@testable import ResourceLedger
import SwiftletTestSupport
import Testing

@Suite("pressure signals and conditions")
struct SignalsTests {
    @Test("working set from the limiting v1 cgroup: usage less total_inactive_file; pids from loadavg")
    func v1WorkingSet() throws {
        let (tree, options) = try CapacityTests.host([
            "proc/self/cgroup": "5:memory:/kubepods/pod1\n",
            "cgroup/memory/kubepods/pod1/memory.limit_in_bytes": "2147483648\n",
            "cgroup/memory/kubepods/pod1/memory.usage_in_bytes": "1610612736\n",
            "cgroup/memory/kubepods/pod1/memory.stat": "cache 1000\ninactive_file 1\ntotal_inactive_file 536870912\n",
            "proc/sys/kernel/pid_max": "4194304\n", "proc/sys/kernel/threads-max": "100000\n",
            "proc/loadavg": "0.10 0.20 0.30 2/500 12345\n",
        ])
        let capacity = try MachineCapacity.detect(options)
        let signals = try NodeSignals.read(capacity: capacity)
        #expect(signals.memoryWorkingSet == .bytes(1 << 30))
        #expect(signals[.memoryAvailable] == SignalObservation(available: .bytes(1 << 30), capacity: .bytes(2 << 30)))
        #expect(signals.memorySource == tree.path + "/cgroup/memory/kubepods/pod1")
        #expect(signals[.pidAvailable] == SignalObservation(available: Quantity(99_500), capacity: Quantity(100_000)))
        #expect(signals[.nodeFsAvailable] != nil && signals[.imageFsAvailable] == signals[.nodeFsAvailable])
    }

    @Test("cgroup v2 root: MemAvailable from /proc/meminfo; process count from /proc when loadavg is absent")
    func v2RootFallback() throws {
        let (tree, options) = try CapacityTests.host([
            "proc/self/cgroup": "0::/\n", "cgroup/cgroup.controllers": "cpu memory\n",
            "proc/sys/kernel/pid_max": "32768\n", "proc/1/stat": "", "proc/42/stat": "", "proc/self/x": "",
        ])
        let capacity = try MachineCapacity.detect(options)
        let signals = try NodeSignals.read(capacity: capacity)
        #expect(signals.memoryWorkingSet == nil)
        #expect(signals.memorySource == tree.path + "/proc/meminfo")
        #expect(signals[.memoryAvailable] == SignalObservation(available: .bytes(8 << 30), capacity: .bytes(16 << 30)))
        #expect(signals[.pidAvailable]?.available == Quantity(32766))
    }

    @Test("thresholds met raise the matching conditions, as kubelet's thresholdsMet")
    func pressure() throws {
        let ledger = ResourceLedger(capacity: try ResourceList(parsing: ["memory": "8Gi", "cpu": "2"]),
                                    evictionHard: try KubeletFlags.parseEvictionHard(
                                        "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%,pid.available<1000"))
        func signals(memory: String, nodefs: Int64, inodes: Int64, pids: Int64) throws -> NodeSignals {
            NodeSignals(observations: [
                .memoryAvailable: SignalObservation(available: try Quantity(parsing: memory), capacity: .bytes(8 << 30)),
                .nodeFsAvailable: SignalObservation(available: .bytes(nodefs), capacity: .bytes(1000)),
                .nodeFsInodesFree: SignalObservation(available: Quantity(inodes), capacity: Quantity(1000)),
                .pidAvailable: SignalObservation(available: Quantity(pids), capacity: Quantity(32768)),
            ])
        }
        let calm = ledger.pressure(try signals(memory: "1Gi", nodefs: 500, inodes: 500, pids: 30000))
        #expect(!calm.memory && !calm.disk && !calm.pid && calm.thresholdsMet.isEmpty)
        let tight = ledger.pressure(try signals(memory: "99Mi", nodefs: 99, inodes: 500, pids: 999))
        #expect(tight.memory && tight.disk && tight.pid)
        #expect(tight.thresholdsMet.map(\.description) == ["memory.available<100Mi", "nodefs.available<10%", "pid.available<1k"])
        // Exactly at the threshold is not below it; inodes alone raise DiskPressure.
        let edge = ledger.pressure(try signals(memory: "100Mi", nodefs: 100, inodes: 49, pids: 1000))
        #expect(!edge.memory && edge.disk && !edge.pid)
        #expect(edge.thresholdsMet.map(\.signal) == [.nodeFsInodesFree])
    }

    @Test("this machine's signals are sane")
    func thisMachine() throws {
        let capacity = try MachineCapacity.detect(MachineCapacity.Options(rootDirectory: "/"))
        let signals = try NodeSignals.read(capacity: capacity, imageFsDirectory: NSTemporaryDirectory())
        let memory = try #require(signals[.memoryAvailable])
        #expect(memory.capacity == capacity.resources["memory"])
        #expect(memory.available > .zero && memory.available <= memory.capacity)
        if let workingSet = signals.memoryWorkingSet { #expect(workingSet > .zero) }
        for (space, inodes) in [(EvictionSignal.nodeFsAvailable, EvictionSignal.nodeFsInodesFree), (.imageFsAvailable, .imageFsInodesFree)] {
            let fs = try #require(signals[space]), ino = try #require(signals[inodes])
            #expect(fs.capacity == capacity.resources["ephemeral-storage"] || space == .imageFsAvailable)
            #expect(fs.available <= fs.capacity && fs.capacity > .zero)
            #expect(ino.available <= ino.capacity)
        }
        let pids = try #require(signals[.pidAvailable])
        let pidMax = try Int64(String(contentsOfFile: "/proc/sys/kernel/pid_max", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!
        #expect(pids.capacity <= Quantity(pidMax))
        #expect(pids.available > .zero && pids.available < pids.capacity)
    }
}
