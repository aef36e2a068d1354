import Foundation
import KubeClient

/// What the node status is computed from, gathered each status period.
public struct NodeStatusInputs: Sendable {
    /// Capacity and allocatable as the API writes quantities.
    public var capacity: [String: String]
    public var allocatable: [String: String]
    /// Pressure against the hard eviction thresholds.
    public var memoryPressure: Bool
    public var diskPressure: Bool
    public var pidPressure: Bool
    /// Why the node is not ready, in the kubelet's words; empty when it is.
    public var notReadyReasons: [String]
    /// The node's images, largest first.
    public var images: [ContainerImage]

    public init(capacity: [String: String], allocatable: [String: String], memoryPressure: Bool = false, diskPressure: Bool = false,
                pidPressure: Bool = false, notReadyReasons: [String] = [], images: [ContainerImage] = []) {
        self.capacity = capacity
        self.allocatable = allocatable
        self.memoryPressure = memoryPressure
        self.diskPressure = diskPressure
        self.pidPressure = pidPressure
        self.notReadyReasons = notReadyReasons
        self.images = images
    }
}

/// Builds the Node's status as the kubelet's `nodestatus` setters do: conditions with the
/// kubelet's reasons and messages (a transition time that moves only when the status does),
/// capacity, allocatable, addresses, nodeInfo, daemonEndpoints and at most 50 images.
public enum NodeStatusBuilder {
    /// The most images reported (the kubelet's `nodeStatusMaxImages`).
    public static let maxImages = 50

    /// The status for `inputs`, carrying transition times over from `previous`.
    public static func status(identity: NodeIdentity, kubeletPort: Int, inputs: NodeStatusInputs, previous: NodeStatus?,
                              now: Date) -> NodeStatus {
        let time = KubeTime.time(now)
        // The kubelet's ReadyCondition: required capacity first, then the other reasons, as
        // one aggregate (`[a, b]` for several).
        var reasons: [String] = []
        let missing = ["cpu", "memory", "pods", "ephemeral-storage"].filter { inputs.capacity[$0] == nil }
        if !missing.isEmpty { reasons.append("Missing node capacity for resources: \(missing.joined(separator: ", "))") }
        reasons += inputs.notReadyReasons
        let notReadyMessage = reasons.count == 1 ? reasons[0] : "[\(reasons.joined(separator: ", "))]"
        func condition(_ type: String, _ isTrue: Bool, trueReason: String, trueMessage: String, falseReason: String,
                       falseMessage: String) -> NodeCondition {
            let status = isTrue ? "True" : "False"
            let old = previous?.conditions?.first { $0.type == type }
            let transition = old?.status == status ? (old?.lastTransitionTime ?? time) : time
            return NodeCondition(type: type, status: status, lastHeartbeatTime: time, lastTransitionTime: transition,
                                 reason: isTrue ? trueReason : falseReason, message: isTrue ? trueMessage : falseMessage)
        }
        let conditions = [
            condition("MemoryPressure", inputs.memoryPressure,
                      trueReason: "KubeletHasInsufficientMemory", trueMessage: "kubelet has insufficient memory available",
                      falseReason: "KubeletHasSufficientMemory", falseMessage: "kubelet has sufficient memory available"),
            condition("DiskPressure", inputs.diskPressure,
                      trueReason: "KubeletHasDiskPressure", trueMessage: "kubelet has disk pressure",
                      falseReason: "KubeletHasNoDiskPressure", falseMessage: "kubelet has no disk pressure"),
            condition("PIDPressure", inputs.pidPressure,
                      trueReason: "KubeletHasInsufficientPID", trueMessage: "kubelet has insufficient PID available",
                      falseReason: "KubeletHasSufficientPID", falseMessage: "kubelet has sufficient PID available"),
            condition("Ready", reasons.isEmpty,
                      trueReason: "KubeletReady", trueMessage: "kubelet is posting ready status",
                      falseReason: "KubeletNotReady", falseMessage: notReadyMessage),
        ]
        let images = inputs.images.sorted { ($0.sizeBytes ?? 0) > ($1.sizeBytes ?? 0) }.prefix(maxImages)
        return NodeStatus(capacity: inputs.capacity, allocatable: inputs.allocatable, conditions: conditions,
                          addresses: identity.addresses,
                          daemonEndpoints: NodeDaemonEndpoints(kubeletEndpoint: DaemonEndpoint(port: Int32(kubeletPort))),
                          nodeInfo: identity.systemInfo, images: Array(images))
    }

    /// Whether two statuses differ in anything but heartbeat times (a change is posted at once;
    /// otherwise the status is posted every report period).
    public static func differs(_ a: NodeStatus, _ b: NodeStatus?) -> Bool {
        guard let b else { return true }
        func stripped(_ status: NodeStatus) -> NodeStatus {
            var status = status
            status.conditions = status.conditions?.map { condition in
                var condition = condition
                condition.lastHeartbeatTime = nil
                return condition
            }.sorted { $0.type < $1.type }
            return status
        }
        return stripped(a) != stripped(b)
    }

    /// The labels the kubelet registers a Node with, then `--node-labels`.
    public static func labels(identity: NodeIdentity, extra: [String: String]) -> [String: String] {
        var labels = [
            "kubernetes.io/hostname": identity.hostname.lowercased(),
            "kubernetes.io/os": identity.systemInfo.operatingSystem,
            "kubernetes.io/arch": identity.systemInfo.architecture,
            "beta.kubernetes.io/os": identity.systemInfo.operatingSystem,
            "beta.kubernetes.io/arch": identity.systemInfo.architecture,
        ]
        labels.merge(extra) { _, new in new }
        return labels
    }

    /// Parses `--register-with-taints` entries (`key=value:Effect` or `key:Effect`).
    public static func taints(_ entries: [String]) throws(NodeError) -> [Taint] {
        try entries.map { (entry) throws(NodeError) -> Taint in
            guard let colon = entry.lastIndex(of: ":") else {
                throw NodeError(.invalidConfiguration, detail: "taint \"\(entry)\" has no effect (key=value:Effect)")
            }
            let effect = String(entry[entry.index(after: colon)...])
            guard ["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(effect) else {
                throw NodeError(.invalidConfiguration, detail: "taint \"\(entry)\": effect \"\(effect)\" is not NoSchedule, PreferNoSchedule or NoExecute")
            }
            // The kubelet's parseTaint: exactly one ':' and at most one '='; a non-empty key.
            guard entry.split(separator: ":", omittingEmptySubsequences: false).count == 2 else {
                throw NodeError(.invalidConfiguration, detail: "taint \"\(entry)\": invalid taint spec (key=value:Effect)")
            }
            let parts = entry[..<colon].split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count <= 2, let key = parts.first, !key.isEmpty else {
                throw NodeError(.invalidConfiguration, detail: "taint \"\(entry)\": invalid taint spec (key=value:Effect)")
            }
            return Taint(key: String(key), value: parts.count > 1 ? String(parts[1]) : nil, effect: effect)
        }
    }
}
