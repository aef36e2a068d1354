/// core/v1 Node: what a node agent registers and reports. Quantities are strings as the API
/// writes them (`"4"`, `"8029264Ki"`, `"110"`).
public struct Node: Codable, Sendable, Hashable {
    public var apiVersion: String? = "v1"
    public var kind: String? = "Node"
    public var metadata: ObjectMeta
    public var spec: NodeSpec?
    public var status: NodeStatus?

    public init(metadata: ObjectMeta, spec: NodeSpec? = nil, status: NodeStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// core/v1 NodeSpec.
public struct NodeSpec: Codable, Sendable, Hashable {
    public var podCIDR: String?
    public var podCIDRs: [String]?
    public var providerID: String?
    public var unschedulable: Bool?
    public var taints: [Taint]?
    public init(podCIDR: String? = nil, podCIDRs: [String]? = nil, providerID: String? = nil, unschedulable: Bool? = nil, taints: [Taint]? = nil) {
        self.podCIDR = podCIDR
        self.podCIDRs = podCIDRs
        self.providerID = providerID
        self.unschedulable = unschedulable
        self.taints = taints
    }
}

/// core/v1 Taint.
public struct Taint: Codable, Sendable, Hashable {
    public var key: String
    public var value: String?
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    public var effect: String
    public var timeAdded: String?
    public init(key: String, value: String? = nil, effect: String, timeAdded: String? = nil) {
        self.key = key
        self.value = value
        self.effect = effect
        self.timeAdded = timeAdded
    }
}

/// core/v1 NodeStatus.
public struct NodeStatus: Codable, Sendable, Hashable {
    public var capacity: [String: String]?
    public var allocatable: [String: String]?
    public var conditions: [NodeCondition]?
    public var addresses: [NodeAddress]?
    public var daemonEndpoints: NodeDaemonEndpoints?
    public var nodeInfo: NodeSystemInfo?
    public var images: [ContainerImage]?
    public init(capacity: [String: String]? = nil, allocatable: [String: String]? = nil, conditions: [NodeCondition]? = nil,
                addresses: [NodeAddress]? = nil, daemonEndpoints: NodeDaemonEndpoints? = nil, nodeInfo: NodeSystemInfo? = nil,
                images: [ContainerImage]? = nil) {
        self.capacity = capacity
        self.allocatable = allocatable
        self.conditions = conditions
        self.addresses = addresses
        self.daemonEndpoints = daemonEndpoints
        self.nodeInfo = nodeInfo
        self.images = images
    }
}

/// core/v1 NodeCondition (`Ready`, `MemoryPressure`, `DiskPressure`, `PIDPressure`, …).
public struct NodeCondition: Codable, Sendable, Hashable {
    public var type: String
    /// `True`, `False` or `Unknown`.
    public var status: String
    public var lastHeartbeatTime: String?
    public var lastTransitionTime: String?
    public var reason: String?
    public var message: String?
    public init(type: String, status: String, lastHeartbeatTime: String? = nil, lastTransitionTime: String? = nil,
                reason: String? = nil, message: String? = nil) {
        self.type = type
        self.status = status
        self.lastHeartbeatTime = lastHeartbeatTime
        self.lastTransitionTime = lastTransitionTime
        self.reason = reason
        self.message = message
    }
}

/// core/v1 NodeAddress (`InternalIP`, `ExternalIP`, `Hostname`).
public struct NodeAddress: Codable, Sendable, Hashable {
    public var type: String
    public var address: String
    public init(type: String, address: String) {
        self.type = type
        self.address = address
    }
}

/// core/v1 NodeDaemonEndpoints: where the kubelet API listens.
public struct NodeDaemonEndpoints: Codable, Sendable, Hashable {
    public var kubeletEndpoint: DaemonEndpoint?
    public init(kubeletEndpoint: DaemonEndpoint? = nil) { self.kubeletEndpoint = kubeletEndpoint }
}

/// core/v1 DaemonEndpoint.
public struct DaemonEndpoint: Codable, Sendable, Hashable {
    public var Port: Int32
    public init(port: Int32) { Port = port }
}

/// core/v1 NodeSystemInfo.
public struct NodeSystemInfo: Codable, Sendable, Hashable {
    public var machineID: String
    public var systemUUID: String
    public var bootID: String
    public var kernelVersion: String
    public var osImage: String
    /// `swiftlet://<version>`.
    public var containerRuntimeVersion: String
    public var kubeletVersion: String
    public var kubeProxyVersion: String
    public var operatingSystem: String
    public var architecture: String
    public init(machineID: String, systemUUID: String, bootID: String, kernelVersion: String, osImage: String,
                containerRuntimeVersion: String, kubeletVersion: String, kubeProxyVersion: String = "",
                operatingSystem: String = "linux", architecture: String) {
        self.machineID = machineID
        self.systemUUID = systemUUID
        self.bootID = bootID
        self.kernelVersion = kernelVersion
        self.osImage = osImage
        self.containerRuntimeVersion = containerRuntimeVersion
        self.kubeletVersion = kubeletVersion
        self.kubeProxyVersion = kubeProxyVersion
        self.operatingSystem = operatingSystem
        self.architecture = architecture
    }
}

/// core/v1 ContainerImage (a node's image list).
public struct ContainerImage: Codable, Sendable, Hashable {
    public var names: [String]?
    public var sizeBytes: Int64?
    public init(names: [String]? = nil, sizeBytes: Int64? = nil) {
        self.names = names
        self.sizeBytes = sizeBytes
    }
}
