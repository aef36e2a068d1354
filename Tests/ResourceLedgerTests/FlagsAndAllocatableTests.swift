@testable import ResourceLedger
import Testing

@Suite("kubelet flags: --kube-reserved/--system-reserved and --eviction-hard")
struct FlagTests {
    @Test("reservations parse with kubelet's names and syntax")
    func reserved() throws {
        let reserved = try KubeletFlags.parseReserved("cpu=100m,memory=100Mi,ephemeral-storage=1Gi,pid=1000")
        #expect(reserved.apiStrings == ["cpu": "100m", "memory": "100Mi", "ephemeral-storage": "1Gi", "pid": "1k"])
        #expect(reserved["pid"]?.value == 1000)
        #expect(try KubeletFlags.parseReserved("") == [:])
        #expect(try KubeletFlags.parseReserved(" cpu = 1 ,")["cpu"] == Quantity(1))
    }

    @Test("bad reservations are refused with what is wrong")
    func badReserved() {
        func kind(_ flag: String) -> ResourceLedgerError.Kind? {
            do { _ = try KubeletFlags.parseReserved(flag, flagName: "system-reserved"); return nil } catch { return error.kind }
        }
        #expect(kind("nvidia.com/gpu=1") == .invalidReservation)
        #expect(kind("pods=10") == .invalidReservation)
        #expect(kind("cpu=-100m") == .invalidReservation)
        #expect(kind("cpu") == .malformedFlag(flag: "system-reserved"))
        #expect(kind("cpu=lots") == .invalidQuantity)
        #expect((try? KubeletFlags.parseReserved("cpu")) == nil)
    }

    @Test("eviction-hard: kubelet's defaults spelled out parse to the defaults")
    func evictionDefaults() throws {
        let parsed = try KubeletFlags.parseEvictionHard("memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%")
        #expect(parsed == EvictionThreshold.kubeletDefaults)
        #expect(parsed.map(\.description) == ["memory.available<100Mi", "nodefs.available<10%", "nodefs.inodesFree<5%", "imagefs.available<15%"])
        #expect(try KubeletFlags.parseEvictionHard("pid.available<1k") == [EvictionThreshold(signal: .pidAvailable, value: .quantity(Quantity(1000)))])
        #expect(try KubeletFlags.parseEvictionHard("") == [])
    }

    @Test("naming one signal drops the other defaults unless merged; 0% and 100% disable")
    func evictionMerge() throws {
        let alone = try KubeletFlags.parseEvictionHard("memory.available<500Mi")
        #expect(alone.count == 1)
        let merged = try KubeletFlags.parseEvictionHard("memory.available<500Mi,imagefs.available<0%", mergeDefaults: true)
        #expect(merged.map(\.signal) == [.memoryAvailable, .nodeFsAvailable, .nodeFsInodesFree])
        #expect(merged[0].value == .quantity(try Quantity(parsing: "500Mi")))
        #expect(try KubeletFlags.parseEvictionHard("nodefs.available<100%").isEmpty)
    }

    @Test("bad eviction statements", arguments: [
        ("memory.free<1Gi", ResourceLedgerError.Kind.unknownSignal),
        ("memory.available>100Mi", .invalidOperator),
        ("memory.available=100Mi", .invalidOperator),
        ("memory.available<=100Mi", .invalidOperator),
        ("memory.available<lots", .invalidQuantity),
        ("memory.available<0", .invalidThreshold),
        ("memory.available<-1Gi", .invalidThreshold),
        ("nodefs.available<150%", .invalidThreshold),
        ("nodefs.available<-5%", .invalidThreshold),
        ("nodefs.available<x%", .invalidThreshold),
        ("memory.available", .malformedFlag(flag: "eviction-hard")),
    ])
    func badEviction(flag: String, kind: ResourceLedgerError.Kind) {
        do {
            _ = try KubeletFlags.parseEvictionHard(flag)
            Issue.record("\(flag) parsed")
        } catch {
            #expect(error.kind == kind, "\(error)")
        }
    }
}

@Suite("allocatable as kubelet computes it")
struct AllocatableTests {
    @Test("the Kubernetes docs' example: 14.5 CPUs, 32Gi−3Gi−500Mi memory, ~88Gi storage (float32 10%)")
    func docsExample() throws {
        let capacity = try ResourceList(parsing: ["cpu": "16", "memory": "32Gi", "ephemeral-storage": "100Gi", "pods": "110"])
        let allocatable = NodeAllocatable.allocatable(
            capacity: capacity,
            kubeReserved: try KubeletFlags.parseReserved("cpu=1,memory=2Gi,ephemeral-storage=1Gi"),
            systemReserved: try KubeletFlags.parseReserved("cpu=500m,memory=1Gi,ephemeral-storage=1Gi"),
            evictionHard: try KubeletFlags.parseEvictionHard("memory.available<500Mi,nodefs.available<10%"))
        // 10% is float32 0.1 in kubelet: int64(107374182400 × 0.10000000149) = 10737418400, not 10Gi.
        #expect(allocatable.apiStrings == ["cpu": "14500m", "memory": "29196Mi", "ephemeral-storage": "94489280352", "pods": "110"])
    }

    @Test("reservation: only capacity's resources, zero left out, pid not reported")
    func reservation() throws {
        let capacity = try ResourceList(parsing: ["cpu": "2", "memory": "4Gi", "pods": "110"])
        let reserved = NodeAllocatable.reservation(capacity: capacity, kubeReserved: try KubeletFlags.parseReserved("cpu=100m,pid=1000"),
                                                   systemReserved: [:], evictionHard: EvictionThreshold.kubeletDefaults)
        #expect(reserved.apiStrings == ["cpu": "100m", "memory": "100Mi"])
    }

    @Test("hugepages come out of allocatable memory, not capacity; never below zero")
    func hugePages() throws {
        let capacity = try ResourceList(parsing: ["cpu": "4", "memory": "8Gi", "hugepages-2Mi": "1Gi", "hugepages-1Gi": "2Gi", "pods": "110"])
        let allocatable = NodeAllocatable.allocatable(capacity: capacity)
        #expect(allocatable["memory"]?.description == "5020Mi")
        #expect(allocatable["hugepages-2Mi"]?.description == "1Gi")
        #expect(allocatable["hugepages-1Gi"]?.description == "2Gi")
        let small = NodeAllocatable.allocatable(capacity: try ResourceList(parsing: ["memory": "50Mi", "cpu": "1"]),
                                                kubeReserved: try KubeletFlags.parseReserved("cpu=2"))
        #expect(small["memory"] == .zero)
        #expect(small["cpu"] == .zero)
        #expect(small["memory"]?.description == "0")
    }

    @Test("a percentage memory threshold is taken of memory capacity")
    func memoryPercentage() throws {
        let allocatable = NodeAllocatable.allocatable(capacity: try ResourceList(parsing: ["memory": "10Gi"]),
                                                      evictionHard: try KubeletFlags.parseEvictionHard("memory.available<10%"))
        let gi10: Int64 = 10 << 30
        #expect(allocatable["memory"]?.value == gi10 - Int64(Double(gi10) * Double(Float(10) / 100)))
    }
}
