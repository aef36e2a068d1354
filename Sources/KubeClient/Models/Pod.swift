/// core/v1 Pod: the unit the node runs. Quantities are strings as the API writes them
/// (`"100m"`, `"64Mi"`); times are RFC 3339 strings (``KubeTime``).
public struct Pod: Codable, Sendable, Hashable {
    public var apiVersion: String? = "v1"
    public var kind: String? = "Pod"
    public var metadata: ObjectMeta
    public var spec: PodSpec?
    public var status: PodStatus?

    public init(metadata: ObjectMeta, spec: PodSpec? = nil, status: PodStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// core/v1 PodSpec. Fields the node does not act on yet but must carry unchanged (a mirror pod,
/// an update) are kept as ``JSONValue`` (`affinity`, `topologySpreadConstraints`).
public struct PodSpec: Codable, Sendable, Hashable {
    public var volumes: [Volume]?
    public var initContainers: [Container]?
    public var containers: [Container]
    public var ephemeralContainers: [JSONValue]?
    /// `Always` (the default), `OnFailure` or `Never`.
    public var restartPolicy: String?
    public var terminationGracePeriodSeconds: Int64?
    public var activeDeadlineSeconds: Int64?
    /// `ClusterFirst` (the default), `ClusterFirstWithHostNet`, `Default` or `None`.
    public var dnsPolicy: String?
    public var nodeSelector: [String: String]?
    public var serviceAccountName: String?
    /// Deprecated alias of `serviceAccountName`, still written by the API server.
    public var serviceAccount: String?
    public var automountServiceAccountToken: Bool?
    public var nodeName: String?
    public var hostNetwork: Bool?
    public var hostPID: Bool?
    public var hostIPC: Bool?
    public var shareProcessNamespace: Bool?
    public var securityContext: PodSecurityContext?
    public var imagePullSecrets: [LocalObjectReference]?
    public var hostname: String?
    public var subdomain: String?
    public var setHostnameAsFQDN: Bool?
    public var affinity: JSONValue?
    public var schedulerName: String?
    public var tolerations: [Toleration]?
    public var hostAliases: [HostAlias]?
    public var priorityClassName: String?
    public var priority: Int32?
    public var preemptionPolicy: String?
    public var dnsConfig: PodDNSConfig?
    public var readinessGates: [PodReadinessGate]?
    public var runtimeClassName: String?
    public var enableServiceLinks: Bool?
    /// Resources the runtime class adds to the pod's accounting.
    public var overhead: [String: String]?
    public var topologySpreadConstraints: [JSONValue]?
    public var os: PodOS?
    public var hostUsers: Bool?

    public init(volumes: [Volume]? = nil, initContainers: [Container]? = nil, containers: [Container], restartPolicy: String? = nil,
                terminationGracePeriodSeconds: Int64? = nil, activeDeadlineSeconds: Int64? = nil, dnsPolicy: String? = nil,
                nodeSelector: [String: String]? = nil, serviceAccountName: String? = nil, automountServiceAccountToken: Bool? = nil,
                nodeName: String? = nil, hostNetwork: Bool? = nil, hostPID: Bool? = nil, hostIPC: Bool? = nil,
                shareProcessNamespace: Bool? = nil, securityContext: PodSecurityContext? = nil,
                imagePullSecrets: [LocalObjectReference]? = nil, hostname: String? = nil, subdomain: String? = nil,
                tolerations: [Toleration]? = nil, hostAliases: [HostAlias]? = nil, priorityClassName: String? = nil,
                priority: Int32? = nil, dnsConfig: PodDNSConfig? = nil, readinessGates: [PodReadinessGate]? = nil,
                runtimeClassName: String? = nil, enableServiceLinks: Bool? = nil, overhead: [String: String]? = nil) {
        self.volumes = volumes
        self.initContainers = initContainers
        self.containers = containers
        self.restartPolicy = restartPolicy
        self.terminationGracePeriodSeconds = terminationGracePeriodSeconds
        self.activeDeadlineSeconds = activeDeadlineSeconds
        self.dnsPolicy = dnsPolicy
        self.nodeSelector = nodeSelector
        self.serviceAccountName = serviceAccountName
        self.automountServiceAccountToken = automountServiceAccountToken
        self.nodeName = nodeName
        self.hostNetwork = hostNetwork
        self.hostPID = hostPID
        self.hostIPC = hostIPC
        self.shareProcessNamespace = shareProcessNamespace
        self.securityContext = securityContext
        self.imagePullSecrets = imagePullSecrets
        self.hostname = hostname
        self.subdomain = subdomain
        self.tolerations = tolerations
        self.hostAliases = hostAliases
        self.priorityClassName = priorityClassName
        self.priority = priority
        self.dnsConfig = dnsConfig
        self.readinessGates = readinessGates
        self.runtimeClassName = runtimeClassName
        self.enableServiceLinks = enableServiceLinks
        self.overhead = overhead
    }
}

/// core/v1 LocalObjectReference (an image pull secret, a config map or secret by name).
public struct LocalObjectReference: Codable, Sendable, Hashable {
    public var name: String?
    public init(name: String? = nil) { self.name = name }
}

/// core/v1 Toleration.
public struct Toleration: Codable, Sendable, Hashable {
    /// Empty with operator `Exists` matches every taint.
    public var key: String?
    /// `Equal` (the default) or `Exists`.
    public var `operator`: String?
    public var value: String?
    /// `NoSchedule`, `PreferNoSchedule`, `NoExecute`, or empty for all.
    public var effect: String?
    /// How long a `NoExecute` taint is tolerated (nil: forever).
    public var tolerationSeconds: Int64?
    public init(key: String? = nil, operator: String? = nil, value: String? = nil, effect: String? = nil, tolerationSeconds: Int64? = nil) {
        self.key = key
        self.operator = `operator`
        self.value = value
        self.effect = effect
        self.tolerationSeconds = tolerationSeconds
    }
}

/// core/v1 HostAlias: an `/etc/hosts` entry.
public struct HostAlias: Codable, Sendable, Hashable {
    public var ip: String
    public var hostnames: [String]?
    public init(ip: String, hostnames: [String]? = nil) {
        self.ip = ip
        self.hostnames = hostnames
    }
}

/// core/v1 PodDNSConfig.
public struct PodDNSConfig: Codable, Sendable, Hashable {
    public var nameservers: [String]?
    public var searches: [String]?
    public var options: [PodDNSConfigOption]?
    public init(nameservers: [String]? = nil, searches: [String]? = nil, options: [PodDNSConfigOption]? = nil) {
        self.nameservers = nameservers
        self.searches = searches
        self.options = options
    }
}

/// core/v1 PodDNSConfigOption (`ndots: "5"`).
public struct PodDNSConfigOption: Codable, Sendable, Hashable {
    public var name: String?
    public var value: String?
    public init(name: String? = nil, value: String? = nil) {
        self.name = name
        self.value = value
    }
}

/// core/v1 PodReadinessGate.
public struct PodReadinessGate: Codable, Sendable, Hashable {
    public var conditionType: String
    public init(conditionType: String) { self.conditionType = conditionType }
}

/// core/v1 PodOS.
public struct PodOS: Codable, Sendable, Hashable {
    /// `linux` or `windows`.
    public var name: String
    public init(name: String) { self.name = name }
}
