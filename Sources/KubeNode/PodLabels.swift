import CRI
import KubeClient

/// The labels and annotations the kubelet puts on CRI sandboxes and containers, so that a pod's
/// runtime objects are found again (after a restart too) and tools that know the kubelet's
/// conventions (crictl, cAdvisor) read them.
enum PodLabels {
    static let podName = "io.kubernetes.pod.name"
    static let podNamespace = "io.kubernetes.pod.namespace"
    static let podUID = "io.kubernetes.pod.uid"
    static let containerName = "io.kubernetes.container.name"
    static let containerHash = "io.kubernetes.container.hash"
    static let restartCount = "io.kubernetes.container.restartCount"
    static let terminationMessagePath = "io.kubernetes.container.terminationMessagePath"
    static let terminationGracePeriod = "io.kubernetes.pod.terminationGracePeriod"
    static let preStopHandler = "io.kubernetes.container.preStopHandler"
    /// Marks the runtime objects this agent made for pods (kubelet: `io.kubernetes.docker.type`-like).
    static let managedBy = "io.swiftlet.managed-by"
    static let managedByValue = "swiftlet-node"

    static func sandboxLabels(_ pod: Pod) -> [String: String] {
        var labels = pod.metadata.labels ?? [:]
        labels[podName] = pod.metadata.name ?? ""
        labels[podNamespace] = pod.metadata.namespace ?? "default"
        labels[podUID] = pod.metadata.uid ?? ""
        labels[managedBy] = managedByValue
        return labels
    }

    static func containerLabels(_ pod: Pod, container: ContainerSpec) -> [String: String] {
        [
            podName: pod.metadata.name ?? "", podNamespace: pod.metadata.namespace ?? "default", podUID: pod.metadata.uid ?? "",
            containerName: container.name, managedBy: managedByValue,
        ]
    }
}

extension Pod {
    /// `namespace/name`, as the kubelet logs pods.
    var fullName: String { "\(metadata.namespace ?? "default")/\(metadata.name ?? "")" }
    /// `name_namespace(uid)`, as the kubelet names pods in messages.
    var kubeletName: String { "\(metadata.name ?? "")_\(metadata.namespace ?? "default")(\(metadata.uid ?? ""))" }
    var uid: String { metadata.uid ?? "" }
}
