/// coordination.k8s.io/v1 Lease: the node's heartbeat in `kube-node-lease`.
public struct Lease: Codable, Sendable, Hashable {
    public var apiVersion: String? = "coordination.k8s.io/v1"
    public var kind: String? = "Lease"
    public var metadata: ObjectMeta
    public var spec: LeaseSpec?

    public init(metadata: ObjectMeta, spec: LeaseSpec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}

/// coordination.k8s.io/v1 LeaseSpec (times are metav1.MicroTime strings: ``KubeTime/microTime(_:)``).
public struct LeaseSpec: Codable, Sendable, Hashable {
    public var holderIdentity: String?
    public var leaseDurationSeconds: Int32?
    public var acquireTime: String?
    public var renewTime: String?
    public var leaseTransitions: Int32?

    public init(holderIdentity: String? = nil, leaseDurationSeconds: Int32? = nil, acquireTime: String? = nil, renewTime: String? = nil,
                leaseTransitions: Int32? = nil) {
        self.holderIdentity = holderIdentity
        self.leaseDurationSeconds = leaseDurationSeconds
        self.acquireTime = acquireTime
        self.renewTime = renewTime
        self.leaseTransitions = leaseTransitions
    }
}
