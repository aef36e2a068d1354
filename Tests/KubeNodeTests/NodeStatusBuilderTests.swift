import Foundation
import KubeClient
import Testing
@testable import KubeNode

@Suite struct NodeStatusBuilderTests {
    let identity = NodeIdentity(
        name: "node-a", hostname: "Node-A", internalIP: "192.0.2.10",
        systemInfo: NodeSystemInfo(machineID: "m", systemUUID: "u", bootID: "b", kernelVersion: "6.1.0", osImage: "Debian GNU/Linux 12",
                                   containerRuntimeVersion: "swiftlet://0.1", kubeletVersion: NodeIdentity.kubeletVersion,
                                   architecture: "amd64"))
    let capacity = ["cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "10Gi"]
    let t0 = Date(timeIntervalSince1970: 1_700_000_000)
    let t1 = Date(timeIntervalSince1970: 1_700_000_100)

    func build(_ inputs: NodeStatusInputs, previous: NodeStatus? = nil, now: Date? = nil) -> NodeStatus {
        NodeStatusBuilder.status(identity: identity, kubeletPort: 10250, inputs: inputs, previous: previous, now: now ?? t0)
    }

    func condition(_ status: NodeStatus, _ type: String) throws -> NodeCondition {
        try #require(status.conditions?.first { $0.type == type })
    }

    @Test func healthyNodeConditionsCarryTheKubeletsReasonsInItsOrder() throws {
        let status = build(NodeStatusInputs(capacity: capacity, allocatable: capacity))
        #expect(status.conditions?.map(\.type) == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"])
        let expected: [(String, String, String, String)] = [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ]
        for (type, value, reason, message) in expected {
            let c = try condition(status, type)
            #expect(c.status == value && c.reason == reason && c.message == message, "\(type)")
            #expect(c.lastHeartbeatTime == KubeTime.time(t0) && c.lastTransitionTime == KubeTime.time(t0))
        }
    }

    @Test func pressureAndNotReadyConditions() throws {
        let status = build(NodeStatusInputs(capacity: capacity, allocatable: capacity, memoryPressure: true, diskPressure: true,
                                            pidPressure: true, notReadyReasons: ["container runtime network not ready"]))
        let memory = try condition(status, "MemoryPressure")
        #expect(memory.status == "True" && memory.reason == "KubeletHasInsufficientMemory"
            && memory.message == "kubelet has insufficient memory available")
        let disk = try condition(status, "DiskPressure")
        #expect(disk.status == "True" && disk.reason == "KubeletHasDiskPressure" && disk.message == "kubelet has disk pressure")
        let pid = try condition(status, "PIDPressure")
        #expect(pid.status == "True" && pid.reason == "KubeletHasInsufficientPID" && pid.message == "kubelet has insufficient PID available")
        let ready = try condition(status, "Ready")
        #expect(ready.status == "False" && ready.reason == "KubeletNotReady" && ready.message == "container runtime network not ready")
    }

    @Test
    func severalNotReadyReasonsAreAggregatedAsTheKubeletDoes() throws {
        let status = build(NodeStatusInputs(capacity: capacity, allocatable: capacity,
                                            notReadyReasons: ["container runtime is down", "network plugin is not ready"]))
        #expect(try condition(status, "Ready").message == "[container runtime is down, network plugin is not ready]")
    }

    @Test
    func missingCapacityMakesTheNodeNotReady() throws {
        let status = build(NodeStatusInputs(capacity: ["cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi"], allocatable: [:]))
        let ready = try condition(status, "Ready")
        #expect(ready.status == "False" && ready.message == "Missing node capacity for resources: pods")
    }

    @Test func transitionTimesAreKeptWhileAStatusHoldsAndMoveWhenItChanges() throws {
        let first = build(NodeStatusInputs(capacity: capacity, allocatable: capacity), now: t0)
        let same = build(NodeStatusInputs(capacity: capacity, allocatable: capacity), previous: first, now: t1)
        for type in ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"] {
            let c = try condition(same, type)
            #expect(c.lastTransitionTime == KubeTime.time(t0), "\(type)")
            #expect(c.lastHeartbeatTime == KubeTime.time(t1), "\(type)")
        }
        let changed = build(NodeStatusInputs(capacity: capacity, allocatable: capacity, diskPressure: true, notReadyReasons: ["x"]),
                            previous: first, now: t1)
        #expect(try condition(changed, "DiskPressure").lastTransitionTime == KubeTime.time(t1))
        #expect(try condition(changed, "Ready").lastTransitionTime == KubeTime.time(t1))
        #expect(try condition(changed, "MemoryPressure").lastTransitionTime == KubeTime.time(t0))
    }

    @Test func aConditionSetByAnotherPartyTransitionsWhenTheNodeTakesItBack() throws {
        // The node lifecycle controller marks a silent node Unknown; the next status is True again.
        var previous = build(NodeStatusInputs(capacity: capacity, allocatable: capacity), now: t0)
        previous.conditions = previous.conditions?.map { c in
            var c = c
            if c.type == "Ready" { c.status = "Unknown"; c.reason = "NodeStatusUnknown" }
            return c
        }
        let status = build(NodeStatusInputs(capacity: capacity, allocatable: capacity), previous: previous, now: t1)
        let ready = try condition(status, "Ready")
        #expect(ready.status == "True" && ready.lastTransitionTime == KubeTime.time(t1))
        #expect(NodeStatusBuilder.differs(status, previous))
    }

    @Test func differsIgnoresHeartbeatsOnly() {
        let inputs = NodeStatusInputs(capacity: capacity, allocatable: capacity)
        let first = build(inputs, now: t0)
        let later = build(inputs, previous: first, now: t1)
        #expect(first != later)  // the heartbeats moved
        #expect(!NodeStatusBuilder.differs(later, first))
        #expect(NodeStatusBuilder.differs(later, nil))
        // The order the server returns conditions in does not matter.
        var reordered = first
        reordered.conditions?.reverse()
        #expect(!NodeStatusBuilder.differs(later, reordered))
        // Any other change counts.
        var pressure = inputs
        pressure.memoryPressure = true
        #expect(NodeStatusBuilder.differs(build(pressure, previous: first, now: t1), first))
        var allocatable = inputs
        allocatable.allocatable["pods"] = "100"
        #expect(NodeStatusBuilder.differs(build(allocatable, previous: first, now: t1), first))
        var images = inputs
        images.images = [ContainerImage(names: ["busybox:1.36"], sizeBytes: 1)]
        #expect(NodeStatusBuilder.differs(build(images, previous: first, now: t1), first))
    }

    @Test func addressesEndpointsAndNodeInfo() {
        let status = build(NodeStatusInputs(capacity: capacity, allocatable: ["cpu": "1900m"]))
        #expect(status.addresses == [NodeAddress(type: "InternalIP", address: "192.0.2.10"), NodeAddress(type: "Hostname", address: "Node-A")])
        #expect(status.daemonEndpoints?.kubeletEndpoint?.Port == 10250)
        #expect(status.nodeInfo == identity.systemInfo)
        #expect(status.capacity == capacity && status.allocatable == ["cpu": "1900m"])
    }

    @Test func atMostFiftyImagesLargestFirst() throws {
        let images = (1...60).map { ContainerImage(names: ["image-\($0):1"], sizeBytes: Int64($0 * 1000)) }.shuffled()
        let status = build(NodeStatusInputs(capacity: capacity, allocatable: capacity, images: images))
        let reported = try #require(status.images)
        #expect(reported.count == NodeStatusBuilder.maxImages && reported.count == 50)
        #expect(reported.first?.sizeBytes == 60_000 && reported.last?.sizeBytes == 11_000)
        #expect(reported.map { $0.sizeBytes ?? 0 } == reported.map { $0.sizeBytes ?? 0 }.sorted(by: >))
        let few = build(NodeStatusInputs(capacity: capacity, allocatable: capacity, images: [
            ContainerImage(names: ["small"], sizeBytes: 1), ContainerImage(names: ["big"], sizeBytes: 9),
        ]))
        #expect(few.images?.map { $0.names ?? [] } == [["big"], ["small"]])
    }

    @Test func labelsAreTheKubeletsDefaultsThenTheExtraOnes() {
        let labels = NodeStatusBuilder.labels(identity: identity, extra: ["role": "edge", "kubernetes.io/arch": "custom"])
        #expect(labels == [
            "kubernetes.io/hostname": "node-a", "kubernetes.io/os": "linux", "kubernetes.io/arch": "custom",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", "role": "edge",
        ])
    }

    @Test func taintsParse() throws {
        let taints = try NodeStatusBuilder.taints(["dedicated=gpu:NoSchedule", "example.com/maintenance:NoExecute", "soft=:PreferNoSchedule"])
        #expect(taints.count == 3)
        #expect(taints.first == Taint(key: "dedicated", value: "gpu", effect: "NoSchedule"))
        #expect(taints.dropFirst().first == Taint(key: "example.com/maintenance", value: nil, effect: "NoExecute"))
        // An empty value is no value (the API omits it).
        #expect(taints.last?.key == "soft" && (taints.last?.value ?? "") == "" && taints.last?.effect == "PreferNoSchedule")
        #expect(try NodeStatusBuilder.taints([]) == [])
    }

    @Test(arguments: ["dedicated=gpu", "dedicated=gpu:NoRun", ":NoSchedule", "key:"])
    func malformedTaintsAreRefused(_ entry: String) {
        #expect(throws: NodeError.self) { try NodeStatusBuilder.taints(["ok:NoSchedule", entry]) }
        do {
            _ = try NodeStatusBuilder.taints([entry])
        } catch {
            #expect(error.kind == .invalidConfiguration)
            #expect(error.detail.contains(entry))
        }
    }

    @Test
    func taintsWithAnEmptyKeyOrExtraSeparatorsAreRefused() {
        #expect(throws: NodeError.self) { try NodeStatusBuilder.taints(["=gpu:NoSchedule"]) }
        #expect(throws: NodeError.self) { try NodeStatusBuilder.taints(["a=b=c:NoSchedule"]) }
        #expect(throws: NodeError.self) { try NodeStatusBuilder.taints(["a:b:NoSchedule"]) }
    }
}
