import CRI

/// The runtime seen from the node: the same CRI services the socket serves, called in-process.
struct RuntimeCalls: Sendable {
    let runtime: any RuntimeService
    let images: any ImageService

    static func context(_ method: String, service: String = "RuntimeService") -> CallContext {
        CallContext(apiVersion: .v1, method: "/runtime.v1.\(service)/\(method)")
    }

    /// Everything the runtime has for one pod: its sandboxes (newest first) and containers with
    /// their statuses.
    struct PodState: Sendable {
        var sandboxes: [PodSandbox] = []
        /// The newest sandbox's status (IPs), when there is one.
        var sandboxStatus: PodSandboxStatus?
        var containers: [CRI.ContainerStatus] = []

        var readySandbox: PodSandbox? { sandboxes.first { $0.state == .sandboxReady } }
        var podIPs: [String] {
            guard let network = sandboxStatus?.network, !network.ip.isEmpty else { return [] }
            return [network.ip] + network.additionalIps.map(\.ip)
        }
        /// The instances of container `name`, newest attempt first.
        func instances(of name: String) -> [CRI.ContainerStatus] {
            containers.filter { $0.metadata?.name == name }.sorted { ($0.metadata?.attempt ?? 0) > ($1.metadata?.attempt ?? 0) }
        }
        /// Instances in the newest sandbox only.
        func current(_ name: String) -> CRI.ContainerStatus? { instances(of: name).first }
        var running: [CRI.ContainerStatus] { containers.filter { $0.state == .containerRunning } }
    }

    func podState(uid: String) async throws -> PodState {
        var state = PodState()
        let sandboxes = try await runtime.listPodSandbox(
            ListPodSandboxRequest(filter: PodSandboxFilter(labelSelector: [PodLabels.podUID: uid])), context: Self.context("ListPodSandbox"))
        state.sandboxes = sandboxes.items.sorted { $0.createdAt > $1.createdAt }
        if let newest = state.sandboxes.first {
            state.sandboxStatus = try? await runtime.podSandboxStatus(PodSandboxStatusRequest(podSandboxId: newest.id),
                                                                     context: Self.context("PodSandboxStatus")).status
        }
        let containers = try await runtime.listContainers(
            ListContainersRequest(filter: ContainerFilter(labelSelector: [PodLabels.podUID: uid])), context: Self.context("ListContainers"))
        for container in containers.containers {
            if let status = try? await runtime.containerStatus(ContainerStatusRequest(containerId: container.id),
                                                              context: Self.context("ContainerStatus")).status {
                state.containers.append(status)
            }
        }
        return state
    }

    /// Pod UIDs of every sandbox this node made, with their sandbox IDs.
    func managedPods() async throws -> [String: [String]] {
        let sandboxes = try await runtime.listPodSandbox(
            ListPodSandboxRequest(filter: PodSandboxFilter(labelSelector: [PodLabels.managedBy: PodLabels.managedByValue])),
            context: Self.context("ListPodSandbox"))
        var pods: [String: [String]] = [:]
        for sandbox in sandboxes.items {
            pods[sandbox.labels[PodLabels.podUID] ?? "", default: []].append(sandbox.id)
        }
        return pods
    }
}
