import Foundation
import KubeClient
import Logging
import ResourceLedger
import SwiftletConfig

/// The node's side of the resource ledger: capacity read from the machine (or the enclosing
/// cgroup), the kubelet's reservations and hard eviction thresholds, pressure from live signals.
struct NodeResources: Sendable {
    let ledger: ResourceLedger
    let capacity: MachineCapacity
    let logger: Logger

    static func make(_ configuration: SwiftletConfiguration, logger: Logger) throws(NodeError) -> NodeResources {
        let capacity: MachineCapacity
        do {
            capacity = try MachineCapacity.detect(MachineCapacity.Options(rootDirectory: configuration.root, maxPods: configuration.maxPods))
        } catch {
            throw NodeError(.system, detail: "reading the node's capacity: \(error)")
        }
        func flag(_ map: [String: String], _ separator: String) -> String {
            map.keys.sorted().map { "\($0)\(separator)\(map[$0]!)" }.joined(separator: ",")
        }
        let kubeReserved: ResourceList, systemReserved: ResourceList, thresholds: [EvictionThreshold]
        do {
            kubeReserved = try KubeletFlags.parseReserved(flag(configuration.kubeReserved, "="), flagName: "kube-reserved")
            systemReserved = try KubeletFlags.parseReserved(flag(configuration.systemReserved, "="), flagName: "system-reserved")
            thresholds = configuration.evictionHard.isEmpty ? EvictionThreshold.kubeletDefaults
                : try KubeletFlags.parseEvictionHard(flag(configuration.evictionHard, "<"))
        } catch {
            throw NodeError(.invalidConfiguration, detail: "\(error)")
        }
        for (resource, source) in capacity.sources.sorted(by: { $0.key < $1.key }) {
            logger.info("node capacity", metadata: ["resource": "\(resource)", "value": "\(capacity.resources[resource]?.description ?? "")",
                                                    "source": "\(source)"])
        }
        let ledger = ResourceLedger(capacity: capacity.resources, kubeReserved: kubeReserved, systemReserved: systemReserved,
                                    evictionHard: thresholds)
        return NodeResources(ledger: ledger, capacity: capacity, logger: logger)
    }

    /// Pressure against the hard thresholds, from live signals (none when they cannot be read).
    func pressure() -> NodePressure? {
        guard let signals = try? NodeSignals.read(capacity: capacity) else { return nil }
        return ledger.pressure(signals)
    }

    var memoryCapacity: Int64 { capacity.resources["memory"]?.value ?? 0 }
}

/// The kubelet's admission: a pod whose requests do not fit what is left of allocatable is
/// refused (`OutOfcpu`, `OutOfmemory`, `OutOfpods`, …), as is one naming a runtime class this
/// node does not have. Admitted pods are charged to the ledger until they are gone.
struct PodAdmission: Sendable {
    let ledger: ResourceLedger?

    /// nil when admitted; else the reason and message of the refusal.
    func admit(_ pod: Pod) -> (reason: String, message: String)? {
        if let runtimeClass = pod.spec?.runtimeClassName, !runtimeClass.isEmpty {
            return ("UnexpectedAdmissionError",
                    "Pod was rejected: runtimeclass \"\(runtimeClass)\" is not known to this node (it runs the default runtime handler only)")
        }
        guard let ledger else { return nil }
        let result = ledger.admit(.kubernetes(pod.uid), requests: Self.requests(of: pod))
        guard !result.isAdmitted else { return nil }
        return (result.reason ?? "OutOfResources", "Pod " + (result.message ?? ""))
    }

    func release(_ uid: String) { _ = ledger?.release(.kubernetes(uid)) }

    /// The pod's effective requests: the larger of the containers' sum and any init container's,
    /// plus the pod overhead (the kubelet's `resource.PodRequests`).
    static func requests(of pod: Pod) -> ResourceList {
        func list(_ map: [String: String]?) -> ResourceList {
            var result: ResourceList = [:]
            for (name, text) in map ?? [:] { if let quantity = try? Quantity(parsing: text) { result[name] = quantity } }
            return result
        }
        var sum: ResourceList = [:]
        for container in pod.spec?.containers ?? [] { sum = sum.adding(list(container.resources?.requests)) }
        for container in pod.spec?.initContainers ?? [] {
            for (name, quantity) in list(container.resources?.requests) where quantity > (sum[name] ?? Quantity(0)) { sum[name] = quantity }
        }
        return sum.adding(list(pod.spec?.overhead))
    }
}
