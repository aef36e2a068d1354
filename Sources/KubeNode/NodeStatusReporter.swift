import Foundation
import KubeClient
import Logging
import Synchronization

/// Gathers what the node status is computed from (resources, pressure, readiness, images).
public protocol NodeStatusSource: Sendable {
    func statusInputs() async -> NodeStatusInputs
}

/// Registers the Node and keeps its status current: computed every `updateFrequency` (10 s),
/// patched to `nodes/<name>/status` when it changed or `reportFrequency` (5 min) has passed,
/// as the kubelet 1.20 does with node leases on.
public final class NodeStatusReporter: Sendable {
    public let client: KubeClient
    public let identity: NodeIdentity
    let source: any NodeStatusSource
    let kubeletPort: Int
    let labels: [String: String]
    let taints: [Taint]
    let updateFrequency: Duration
    let reportFrequency: Duration
    let logger: Logger
    /// Called with the Node's pod CIDRs whenever they are first seen or change.
    let onPodCIDRs: @Sendable ([String]) async -> Void
    private let state = Mutex(State())

    struct State {
        var uid: String?
        var lastPosted: NodeStatus?
        var lastPostedAt: ContinuousClock.Instant?
        var podCIDRs: [String] = []
    }

    public init(client: KubeClient, identity: NodeIdentity, source: any NodeStatusSource, kubeletPort: Int, labels: [String: String],
                taints: [Taint], updateFrequency: Duration, reportFrequency: Duration, logger: Logger,
                onPodCIDRs: @escaping @Sendable ([String]) async -> Void) {
        self.client = client
        self.identity = identity
        self.source = source
        self.kubeletPort = kubeletPort
        self.labels = NodeStatusBuilder.labels(identity: identity, extra: labels)
        self.taints = taints
        self.updateFrequency = updateFrequency
        self.reportFrequency = reportFrequency
        self.logger = logger
        self.onPodCIDRs = onPodCIDRs
    }

    /// The registered Node's UID (nil until registered).
    public var nodeUID: String? { state.withLock { $0.uid } }

    /// Registers the Node, retrying (100 ms doubling to 7 s, as the kubelet) until it is
    /// registered or the task is cancelled. An existing Node of the same name is adopted: its
    /// labels get the kubelet's defaults and its status is replaced with this node's.
    public func register() async throws(KubeAPIError) {
        var delay = Duration.milliseconds(100)
        while true {
            do {
                try await registerOnce()
                return
            } catch let error where error.kind != .cancelled {
                logger.warning("unable to register node with the API server", metadata: [
                    "node": "\(identity.name)", "error": "\(error)", "retryIn": "\(delay)",
                ])
                do { try await Task.sleep(for: delay) } catch { throw KubeAPIError(.cancelled, detail: "cancelled while registering") }
                delay = min(delay * 2, .seconds(7))
            }
        }
    }

    func registerOnce() async throws(KubeAPIError) {
        let inputs = await source.statusInputs()
        let status = NodeStatusBuilder.status(identity: identity, kubeletPort: kubeletPort, inputs: inputs, previous: nil, now: Date())
        let metadata = ObjectMeta(name: identity.name, labels: labels,
                                  annotations: ["volumes.kubernetes.io/controller-managed-attach-detach": "true"])
        let node = Node(metadata: metadata, spec: NodeSpec(taints: taints.isEmpty ? nil : taints), status: status)
        let stored: Node
        do {
            stored = try await client.create("/api/v1/nodes", node, as: Node.self)
            logger.info("successfully registered node", metadata: ["node": "\(identity.name)"])
        } catch let error where error.isAlreadyExists {
            // Adopt: the kubelet's default labels back on it (a merge patch keeps other fields).
            let patch: JSONValue = ["metadata": ["labels": .object(labels.mapValues { .string($0) })]]
            _ = try await client.patch("/api/v1/nodes/\(identity.name)", patch, type: .strategicMerge)
            stored = try await postStatus(status)
            logger.info("node already registered; adopted it", metadata: ["node": "\(identity.name)", "uid": "\(stored.metadata.uid ?? "")"])
        }
        state.withLock {
            $0.uid = stored.metadata.uid
            $0.lastPosted = status
            $0.lastPostedAt = .now
        }
        await notePodCIDRs(stored)
    }

    /// Computes and posts the status until cancelled.
    public func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: updateFrequency)
            if Task.isCancelled { return }
            await updateOnce()
        }
    }

    /// One status period, as the kubelet's `tryUpdateNodeStatus`: the Node is read from the API
    /// server, the status computed over it, and posted when it differs from what the server holds
    /// (another party — the node lifecycle controller marking it Unknown — may have changed it) or
    /// the report period has passed; a failed post is retried up to five times
    /// (`nodeStatusUpdateRetry`).
    public func updateOnce(force: Bool = false) async {
        let inputs = await source.statusInputs()
        for attempt in 1...5 {
            do {
                let stored = try await client.get("/api/v1/nodes/\(identity.name)", as: Node.self)
                let postedAt = state.withLock { $0.lastPostedAt }
                let status = NodeStatusBuilder.status(identity: identity, kubeletPort: kubeletPort, inputs: inputs, previous: stored.status,
                                                      now: Date())
                let due = postedAt.map { ContinuousClock.now - $0 >= reportFrequency } ?? true
                var updated = stored
                if force || due || NodeStatusBuilder.differs(status, stored.status) {
                    updated = try await postStatus(status)
                    state.withLock {
                        $0.lastPosted = status
                        $0.lastPostedAt = .now
                    }
                }
                state.withLock { $0.uid = updated.metadata.uid ?? $0.uid }
                await notePodCIDRs(updated)
                return
            } catch {
                if error.kind == .cancelled { return }
                logger.warning("error updating node status, will retry", metadata: [
                    "node": "\(identity.name)", "attempt": "\(attempt)", "error": "\(error)",
                ])
            }
        }
    }

    func postStatus(_ status: NodeStatus) async throws(KubeAPIError) -> Node {
        struct StatusPatch: Encodable { var status: NodeStatus }
        return try await client.patch("/api/v1/nodes/\(identity.name)/status", StatusPatch(status: status), type: .strategicMerge,
                                      as: Node.self)
    }

    private func notePodCIDRs(_ node: Node) async {
        let cidrs = node.spec?.podCIDRs ?? node.spec?.podCIDR.map { [$0] } ?? []
        let changed = state.withLock { state -> Bool in
            guard !cidrs.isEmpty, cidrs != state.podCIDRs else { return false }
            state.podCIDRs = cidrs
            return true
        }
        if changed {
            logger.info("pod CIDR assigned", metadata: ["podCIDRs": "\(cidrs.joined(separator: ","))"])
            await onPodCIDRs(cidrs)
        }
    }
}
