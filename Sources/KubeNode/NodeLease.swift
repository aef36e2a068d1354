import Foundation
import KubeClient
import Logging

/// The node's heartbeat: a Lease named after the node in `kube-node-lease`, renewed every
/// quarter of its duration (10 s of 40 s), as the kubelet's lease controller does — an update
/// of the last Lease seen, falling back to get-or-create (with the Node as owner) after a
/// failure, with 200 ms → 7 s backoff while the API server is away.
public struct NodeLease: Sendable {
    public let client: KubeClient
    public let nodeName: String
    public let durationSeconds: Int
    let logger: Logger
    /// The Node's UID once known (the Lease's owner reference).
    let nodeUID: @Sendable () -> String?

    public init(client: KubeClient, nodeName: String, durationSeconds: Int, logger: Logger, nodeUID: @escaping @Sendable () -> String?) {
        self.client = client
        self.nodeName = nodeName
        self.durationSeconds = durationSeconds
        self.logger = logger
        self.nodeUID = nodeUID
    }

    /// The namespace node leases live in.
    public static let namespace = "kube-node-lease"

    var path: String { "/apis/coordination.k8s.io/v1/namespaces/\(Self.namespace)/leases/\(nodeName)" }

    /// How often the Lease is renewed.
    public var renewInterval: Duration { .milliseconds(durationSeconds * 250) }

    /// Renews until cancelled.
    public func run() async {
        var latest: Lease?
        var backoff = Duration.milliseconds(200)
        while !Task.isCancelled {
            do {
                latest = try await renew(latest)
                backoff = .milliseconds(200)
                try? await Task.sleep(for: renewInterval)
            } catch {
                latest = nil
                logger.warning("failed to renew the node lease, will retry", metadata: [
                    "lease": "\(Self.namespace)/\(nodeName)", "error": "\(error)", "retryIn": "\(backoff)",
                ])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(7))
            }
        }
    }

    /// One renewal: updates `latest` when there is one (one round trip), else gets or creates.
    func renew(_ latest: Lease?) async throws(KubeAPIError) -> Lease {
        if var lease = latest {
            lease.spec?.renewTime = KubeTime.microTime(Date())
            setOwner(&lease)
            return try await client.update(path, lease, as: Lease.self)
        }
        do {
            var lease = try await client.get(path, as: Lease.self)
            lease.spec = lease.spec ?? LeaseSpec()
            lease.spec?.holderIdentity = nodeName
            lease.spec?.leaseDurationSeconds = Int32(durationSeconds)
            lease.spec?.renewTime = KubeTime.microTime(Date())
            setOwner(&lease)
            return try await client.update(path, lease, as: Lease.self)
        } catch let error where error.isNotFound {
            var lease = Lease(metadata: ObjectMeta(name: nodeName, namespace: Self.namespace),
                              spec: LeaseSpec(holderIdentity: nodeName, leaseDurationSeconds: Int32(durationSeconds),
                                              renewTime: KubeTime.microTime(Date())))
            setOwner(&lease)
            return try await client.create("/apis/coordination.k8s.io/v1/namespaces/\(Self.namespace)/leases", lease, as: Lease.self)
        }
    }

    private func setOwner(_ lease: inout Lease) {
        guard lease.metadata.ownerReferences?.isEmpty ?? true, let uid = nodeUID() else { return }
        lease.metadata.ownerReferences = [OwnerReference(apiVersion: "v1", kind: "Node", name: nodeName, uid: uid)]
    }
}
