/// core/v1 PodStatus: what the node reports (times are metav1.Time strings: ``KubeTime/time(_:)``).
public struct PodStatus: Codable, Sendable, Hashable {
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    public var phase: String?
    public var conditions: [PodCondition]?
    public var message: String?
    /// A CamelCase reason (`Evicted`, `NodeShutdown`, `DeadlineExceeded`).
    public var reason: String?
    public var nominatedNodeName: String?
    public var hostIP: String?
    public var hostIPs: [HostIP]?
    public var podIP: String?
    public var podIPs: [PodIP]?
    public var startTime: String?
    public var initContainerStatuses: [ContainerStatus]?
    public var containerStatuses: [ContainerStatus]?
    public var ephemeralContainerStatuses: [ContainerStatus]?
    /// `Guaranteed`, `Burstable` or `BestEffort`.
    public var qosClass: String?

    public init(phase: String? = nil, conditions: [PodCondition]? = nil, message: String? = nil, reason: String? = nil,
                hostIP: String? = nil, hostIPs: [HostIP]? = nil, podIP: String? = nil, podIPs: [PodIP]? = nil, startTime: String? = nil,
                initContainerStatuses: [ContainerStatus]? = nil, containerStatuses: [ContainerStatus]? = nil, qosClass: String? = nil) {
        self.phase = phase
        self.conditions = conditions
        self.message = message
        self.reason = reason
        self.hostIP = hostIP
        self.hostIPs = hostIPs
        self.podIP = podIP
        self.podIPs = podIPs
        self.startTime = startTime
        self.initContainerStatuses = initContainerStatuses
        self.containerStatuses = containerStatuses
        self.qosClass = qosClass
    }
}

/// core/v1 PodCondition (`PodScheduled`, `PodReadyToStartContainers`, `Initialized`,
/// `ContainersReady`, `Ready`, `DisruptionTarget`).
public struct PodCondition: Codable, Sendable, Hashable {
    public var type: String
    /// `True`, `False` or `Unknown`.
    public var status: String
    public var lastProbeTime: String?
    public var lastTransitionTime: String?
    public var reason: String?
    public var message: String?
    public init(type: String, status: String, lastProbeTime: String? = nil, lastTransitionTime: String? = nil, reason: String? = nil,
                message: String? = nil) {
        self.type = type
        self.status = status
        self.lastProbeTime = lastProbeTime
        self.lastTransitionTime = lastTransitionTime
        self.reason = reason
        self.message = message
    }
}

/// core/v1 HostIP.
public struct HostIP: Codable, Sendable, Hashable {
    public var ip: String
    public init(ip: String) { self.ip = ip }
}

/// core/v1 PodIP.
public struct PodIP: Codable, Sendable, Hashable {
    public var ip: String
    public init(ip: String) { self.ip = ip }
}

/// core/v1 ContainerStatus.
public struct ContainerStatus: Codable, Sendable, Hashable {
    public var name: String
    public var state: ContainerState?
    public var lastState: ContainerState?
    public var ready: Bool
    public var restartCount: Int32
    public var image: String
    public var imageID: String
    /// `<runtime>://<id>`.
    public var containerID: String?
    /// Whether the startup probe (if any) has passed; nil before the container first runs.
    public var started: Bool?

    public init(name: String, state: ContainerState? = nil, lastState: ContainerState? = nil, ready: Bool = false, restartCount: Int32 = 0,
                image: String, imageID: String = "", containerID: String? = nil, started: Bool? = nil) {
        self.name = name
        self.state = state
        self.lastState = lastState
        self.ready = ready
        self.restartCount = restartCount
        self.image = image
        self.imageID = imageID
        self.containerID = containerID
        self.started = started
    }

    private enum CodingKeys: String, CodingKey {
        case name, state, lastState, ready, restartCount, image, imageID, containerID, started
    }

    /// Tolerates the members Go always writes being absent (a hand-made status).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        state = try container.decodeIfPresent(ContainerState.self, forKey: .state)
        lastState = try container.decodeIfPresent(ContainerState.self, forKey: .lastState)
        ready = try container.decodeIfPresent(Bool.self, forKey: .ready) ?? false
        restartCount = try container.decodeIfPresent(Int32.self, forKey: .restartCount) ?? 0
        image = try container.decodeIfPresent(String.self, forKey: .image) ?? ""
        imageID = try container.decodeIfPresent(String.self, forKey: .imageID) ?? ""
        containerID = try container.decodeIfPresent(String.self, forKey: .containerID)
        started = try container.decodeIfPresent(Bool.self, forKey: .started)
    }
}

/// core/v1 ContainerState: at most one of the three (none: waiting without a reason).
public struct ContainerState: Codable, Sendable, Hashable {
    public var waiting: ContainerStateWaiting?
    public var running: ContainerStateRunning?
    public var terminated: ContainerStateTerminated?
    public init(waiting: ContainerStateWaiting? = nil, running: ContainerStateRunning? = nil, terminated: ContainerStateTerminated? = nil) {
        self.waiting = waiting
        self.running = running
        self.terminated = terminated
    }
}

/// core/v1 ContainerStateWaiting (`ContainerCreating`, `CrashLoopBackOff`, `ErrImagePull`,
/// `ImagePullBackOff`, `CreateContainerConfigError`, …).
public struct ContainerStateWaiting: Codable, Sendable, Hashable {
    public var reason: String?
    public var message: String?
    public init(reason: String? = nil, message: String? = nil) {
        self.reason = reason
        self.message = message
    }
}

/// core/v1 ContainerStateRunning.
public struct ContainerStateRunning: Codable, Sendable, Hashable {
    public var startedAt: String?
    public init(startedAt: String? = nil) { self.startedAt = startedAt }
}

/// core/v1 ContainerStateTerminated.
public struct ContainerStateTerminated: Codable, Sendable, Hashable {
    public var exitCode: Int32
    public var signal: Int32?
    /// `Completed`, `Error`, `OOMKilled`, `ContainerStatusUnknown`, …
    public var reason: String?
    public var message: String?
    public var startedAt: String?
    public var finishedAt: String?
    public var containerID: String?
    public init(exitCode: Int32, signal: Int32? = nil, reason: String? = nil, message: String? = nil, startedAt: String? = nil,
                finishedAt: String? = nil, containerID: String? = nil) {
        self.exitCode = exitCode
        self.signal = signal
        self.reason = reason
        self.message = message
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.containerID = containerID
    }
}
