@testable import ResourceLedger
import Testing

@Suite("the ledger: admission, release, both sides' usage")
struct LedgerTests {
    static func ledger() throws -> ResourceLedger {
        ResourceLedger(capacity: try ResourceList(parsing: ["cpu": "2", "memory": "4Gi", "pods": "3", "ephemeral-storage": "10Gi", "hugepages-2Mi": "0"]),
                       kubeReserved: try KubeletFlags.parseReserved("cpu=100m"))
    }

    @Test("admits what fits and refuses the rest with kubelet's reason and message")
    func admitAndRefuse() throws {
        let ledger = try Self.ledger()
        #expect(ledger.allocatable.apiStrings == ["cpu": "1900m", "memory": "3996Mi", "pods": "3", "ephemeral-storage": ledger.allocatable["ephemeral-storage"]!.description, "hugepages-2Mi": "0"])
        #expect(ledger.admit(.kubernetes("a"), requests: ["cpu": Quantity(milli: 500)]).isAdmitted)
        let refused = ledger.admit(.kubernetes("b"), requests: ["cpu": Quantity(2)])
        #expect(!refused.isAdmitted)
        #expect(refused.reason == "OutOfcpu")
        #expect(refused.message == "Node didn't have enough resource: cpu, requested: 2000, used: 500, capacity: 1900")
        let memory = ledger.admit(.kubernetes("c"), requests: ["memory": try Quantity(parsing: "4Gi")])
        #expect(memory.reason == "OutOfmemory")
        #expect(memory.message == "Node didn't have enough resource: memory, requested: 4294967296, used: 0, capacity: 4190109696")
        #expect(ledger.admit(.kubernetes("d"), requests: ["ephemeral-storage": try Quantity(parsing: "10Gi")]).reason == "OutOfephemeral-storage")
        #expect(ledger.admit(.kubernetes("e"), requests: ["hugepages-2Mi": try Quantity(parsing: "2Mi")]).reason == "OutOfhugepages-2Mi")
        // Several shortfalls: all listed, the first (cpu before memory) reported.
        let both = ledger.admit(.kubernetes("f"), requests: ["memory": try Quantity(parsing: "5Gi"), "cpu": Quantity(3)])
        #expect(both.insufficient.map(\.resource) == ["cpu", "memory"])
        // Extended resources the node does not list are ignored, as kubelet's admission does.
        #expect(ledger.admit(.kubernetes("g"), requests: ["example.com/gpu": Quantity(1)]).isAdmitted)
        #expect(ledger.usage.consumers.count == 2)
    }

    @Test("one pod per Kubernetes consumer against pods; Mesos containers do not count as pods")
    func pods() throws {
        let ledger = try Self.ledger()
        for uid in ["p1", "p2", "p3"] { #expect(ledger.admit(.kubernetes(uid), requests: [:]).isAdmitted) }
        let fourth = ledger.admit(.kubernetes("p4"), requests: [:])
        #expect(fourth.reason == "OutOfpods")
        #expect(fourth.message == "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3")
        #expect(ledger.admit(.mesos("m1"), requests: ["cpu": Quantity(milli: 100)]).isAdmitted)
        // Admitting an admitted pod again replaces its requests, it is not a new pod.
        #expect(ledger.admit(.kubernetes("p1"), requests: ["cpu": Quantity(1)]).isAdmitted)
        #expect(ledger.used(by: .kubernetes).apiStrings == ["pods": "3", "cpu": "1"])
        ledger.release(.kubernetes("p2"))
        #expect(ledger.admit(.kubernetes("p4"), requests: [:]).isAdmitted)
    }

    @Test("each side sees the other's usage; release gives it back")
    func bothSides() throws {
        let ledger = try Self.ledger()
        #expect(ledger.admit(.kubernetes("pod-a"), requests: ["cpu": Quantity(milli: 500), "memory": try Quantity(parsing: "1Gi")]).isAdmitted)
        #expect(ledger.admit(.mesos("container-1"), requests: ["cpu": Quantity(1), "memory": try Quantity(parsing: "512Mi")]).isAdmitted)
        #expect(ledger.used(by: .mesos).apiStrings == ["cpu": "1", "memory": "512Mi"])
        #expect(ledger.used(by: .kubernetes).apiStrings == ["cpu": "500m", "memory": "1Gi", "pods": "1"])
        #expect(ledger.usage.total.apiStrings == ["cpu": "1500m", "memory": "1536Mi", "pods": "1"])
        #expect(ledger.allocatable(availableTo: .kubernetes)["cpu"]?.description == "900m")
        #expect(ledger.allocatable(availableTo: .mesos)["cpu"]?.description == "1400m")
        let refused = ledger.admit(.kubernetes("pod-b"), requests: ["cpu": Quantity(milli: 500)])
        #expect(refused.message == "Node didn't have enough resource: cpu, requested: 500, used: 1500, capacity: 1900")
        #expect(ledger.release(.mesos("container-1"))?["cpu"] == Quantity(1))
        #expect(ledger.release(.mesos("container-1")) == nil)
        #expect(ledger.admit(.kubernetes("pod-b"), requests: ["cpu": Quantity(milli: 500)]).isAdmitted)
        #expect(Consumer.mesos("x").description == "mesos/x")
    }

    @Test("a new capacity recomputes allocatable and keeps what is admitted")
    func updateCapacity() throws {
        let ledger = try Self.ledger()
        #expect(ledger.admit(.mesos("c"), requests: ["cpu": Quantity(1)]).isAdmitted)
        ledger.update(capacity: try ResourceList(parsing: ["cpu": "4", "memory": "4Gi", "pods": "3"]))
        #expect(ledger.allocatable["cpu"]?.description == "3900m")
        #expect(ledger.used(by: .mesos)["cpu"] == Quantity(1))
    }

    @Test("concurrent admissions never over-commit")
    func concurrent() async throws {
        let ledger = ResourceLedger(capacity: try ResourceList(parsing: ["cpu": "4", "memory": "64Gi", "pods": "1000"]), evictionHard: [])
        let admitted = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<400 {
                group.addTask {
                    let consumer: Consumer = i % 2 == 0 ? .kubernetes("pod-\(i)") : .mesos("container-\(i)")
                    return ledger.admit(consumer, requests: ["cpu": Quantity(milli: 100), "memory": Quantity.bytes(1 << 20)]).isAdmitted
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(admitted == 40)
        #expect(ledger.usage.total["cpu"] == Quantity(4))
        // Release and admit concurrently: the total never exceeds allocatable.
        let ids = Array(ledger.usage.consumers.keys)
        await withTaskGroup(of: Void.self) { group in
            for (n, consumer) in ids.enumerated() {
                group.addTask { ledger.release(consumer) }
                group.addTask { _ = ledger.admit(.kubernetes("late-\(n)"), requests: ["cpu": Quantity(milli: 100)]) }
                group.addTask { #expect(ledger.usage.total["cpu", default: .zero] <= Quantity(4)) }
            }
        }
        #expect(ledger.usage.total["cpu", default: .zero] <= Quantity(4))
    }
}
