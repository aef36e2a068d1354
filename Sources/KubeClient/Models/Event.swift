/// core/v1 Event as the kubelet records them (`Pulling`, `Pulled`, `Created`, `Started`,
/// `Killing`, `Unhealthy`, `BackOff`, `FailedMount`, …). Times are RFC 3339 strings;
/// `eventTime` is a metav1.MicroTime (``KubeTime/microTime(_:)``), null in the legacy form.
public struct Event: Codable, Sendable, Hashable {
    public var apiVersion: String? = "v1"
    public var kind: String? = "Event"
    public var metadata: ObjectMeta
    public var involvedObject: ObjectReference
    public var reason: String?
    public var message: String?
    public var source: EventSource?
    public var firstTimestamp: String?
    public var lastTimestamp: String?
    public var count: Int32?
    /// `Normal` or `Warning`.
    public var type: String?
    public var eventTime: String?
    public var action: String?
    public var related: ObjectReference?
    public var reportingComponent: String?
    public var reportingInstance: String?

    public init(metadata: ObjectMeta, involvedObject: ObjectReference, reason: String? = nil, message: String? = nil,
                source: EventSource? = nil, firstTimestamp: String? = nil, lastTimestamp: String? = nil, count: Int32? = nil,
                type: String? = nil, eventTime: String? = nil, action: String? = nil, related: ObjectReference? = nil,
                reportingComponent: String? = nil, reportingInstance: String? = nil) {
        self.metadata = metadata
        self.involvedObject = involvedObject
        self.reason = reason
        self.message = message
        self.source = source
        self.firstTimestamp = firstTimestamp
        self.lastTimestamp = lastTimestamp
        self.count = count
        self.type = type
        self.eventTime = eventTime
        self.action = action
        self.related = related
        self.reportingComponent = reportingComponent
        self.reportingInstance = reportingInstance
    }
}

/// core/v1 ObjectReference (`fieldPath` names a container: `spec.containers{web}`).
public struct ObjectReference: Codable, Sendable, Hashable {
    public var kind: String?
    public var namespace: String?
    public var name: String?
    public var uid: String?
    public var apiVersion: String?
    public var resourceVersion: String?
    public var fieldPath: String?
    public init(kind: String? = nil, namespace: String? = nil, name: String? = nil, uid: String? = nil, apiVersion: String? = nil,
                resourceVersion: String? = nil, fieldPath: String? = nil) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.apiVersion = apiVersion
        self.resourceVersion = resourceVersion
        self.fieldPath = fieldPath
    }
}

/// core/v1 EventSource (the kubelet: component `kubelet`, host the node name).
public struct EventSource: Codable, Sendable, Hashable {
    public var component: String?
    public var host: String?
    public init(component: String? = nil, host: String? = nil) {
        self.component = component
        self.host = host
    }
}
