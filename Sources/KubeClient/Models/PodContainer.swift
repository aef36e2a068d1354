/// core/v1 Container (also an init container; a sidecar is an init container with
/// `restartPolicy: Always`).
public struct Container: Codable, Sendable, Hashable {
    public var name: String
    public var image: String?
    /// The entrypoint (replaces the image's ENTRYPOINT); `$(VAR)` references expand from `env`.
    public var command: [String]?
    /// The arguments (replace the image's CMD).
    public var args: [String]?
    public var workingDir: String?
    public var ports: [ContainerPort]?
    public var envFrom: [EnvFromSource]?
    public var env: [EnvVar]?
    public var resources: ResourceRequirements?
    /// Only `Always`, on an init container (a sidecar).
    public var restartPolicy: String?
    public var volumeMounts: [VolumeMount]?
    public var volumeDevices: [VolumeDevice]?
    public var livenessProbe: Probe?
    public var readinessProbe: Probe?
    public var startupProbe: Probe?
    public var lifecycle: Lifecycle?
    /// Defaults to `/dev/termination-log`.
    public var terminationMessagePath: String?
    /// `File` (the default) or `FallbackToLogsOnError`.
    public var terminationMessagePolicy: String?
    /// `Always`, `IfNotPresent` or `Never` (the default depends on the tag: `Always` for `:latest`).
    public var imagePullPolicy: String?
    public var securityContext: SecurityContext?
    public var stdin: Bool?
    public var stdinOnce: Bool?
    public var tty: Bool?

    public init(name: String, image: String? = nil, command: [String]? = nil, args: [String]? = nil, workingDir: String? = nil,
                ports: [ContainerPort]? = nil, envFrom: [EnvFromSource]? = nil, env: [EnvVar]? = nil,
                resources: ResourceRequirements? = nil, restartPolicy: String? = nil, volumeMounts: [VolumeMount]? = nil,
                volumeDevices: [VolumeDevice]? = nil, livenessProbe: Probe? = nil, readinessProbe: Probe? = nil,
                startupProbe: Probe? = nil, lifecycle: Lifecycle? = nil, terminationMessagePath: String? = nil,
                terminationMessagePolicy: String? = nil, imagePullPolicy: String? = nil, securityContext: SecurityContext? = nil,
                stdin: Bool? = nil, stdinOnce: Bool? = nil, tty: Bool? = nil) {
        self.name = name
        self.image = image
        self.command = command
        self.args = args
        self.workingDir = workingDir
        self.ports = ports
        self.envFrom = envFrom
        self.env = env
        self.resources = resources
        self.restartPolicy = restartPolicy
        self.volumeMounts = volumeMounts
        self.volumeDevices = volumeDevices
        self.livenessProbe = livenessProbe
        self.readinessProbe = readinessProbe
        self.startupProbe = startupProbe
        self.lifecycle = lifecycle
        self.terminationMessagePath = terminationMessagePath
        self.terminationMessagePolicy = terminationMessagePolicy
        self.imagePullPolicy = imagePullPolicy
        self.securityContext = securityContext
        self.stdin = stdin
        self.stdinOnce = stdinOnce
        self.tty = tty
    }
}

/// core/v1 ContainerPort.
public struct ContainerPort: Codable, Sendable, Hashable {
    public var name: String?
    public var hostPort: Int32?
    public var containerPort: Int32
    /// `TCP` (the default), `UDP` or `SCTP`.
    public var `protocol`: String?
    public var hostIP: String?
    public init(name: String? = nil, hostPort: Int32? = nil, containerPort: Int32, protocol: String? = nil, hostIP: String? = nil) {
        self.name = name
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.protocol = `protocol`
        self.hostIP = hostIP
    }
}

/// core/v1 EnvVar: a literal `value` or a `valueFrom` source.
public struct EnvVar: Codable, Sendable, Hashable {
    public var name: String
    public var value: String?
    public var valueFrom: EnvVarSource?
    public init(name: String, value: String? = nil, valueFrom: EnvVarSource? = nil) {
        self.name = name
        self.value = value
        self.valueFrom = valueFrom
    }
}

/// core/v1 EnvVarSource: exactly one of the references.
public struct EnvVarSource: Codable, Sendable, Hashable {
    public var fieldRef: ObjectFieldSelector?
    public var resourceFieldRef: ResourceFieldSelector?
    public var configMapKeyRef: ConfigMapKeySelector?
    public var secretKeyRef: SecretKeySelector?
    public init(fieldRef: ObjectFieldSelector? = nil, resourceFieldRef: ResourceFieldSelector? = nil,
                configMapKeyRef: ConfigMapKeySelector? = nil, secretKeyRef: SecretKeySelector? = nil) {
        self.fieldRef = fieldRef
        self.resourceFieldRef = resourceFieldRef
        self.configMapKeyRef = configMapKeyRef
        self.secretKeyRef = secretKeyRef
    }
}

/// core/v1 ObjectFieldSelector (`metadata.name`, `status.podIP`, `spec.nodeName`, …).
public struct ObjectFieldSelector: Codable, Sendable, Hashable {
    /// Defaults to `v1`.
    public var apiVersion: String?
    public var fieldPath: String
    public init(apiVersion: String? = nil, fieldPath: String) {
        self.apiVersion = apiVersion
        self.fieldPath = fieldPath
    }
}

/// core/v1 ResourceFieldSelector (`limits.cpu`, `requests.memory`, …).
public struct ResourceFieldSelector: Codable, Sendable, Hashable {
    public var containerName: String?
    public var resource: String
    /// A quantity (`"1m"`, `"1Mi"`); defaults to `"1"`.
    public var divisor: String?
    public init(containerName: String? = nil, resource: String, divisor: String? = nil) {
        self.containerName = containerName
        self.resource = resource
        self.divisor = divisor
    }

    private enum CodingKeys: String, CodingKey { case containerName, resource, divisor }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        containerName = try container.decodeIfPresent(String.self, forKey: .containerName)
        resource = try container.decode(String.self, forKey: .resource)
        divisor = try container.decodeIfPresent(QuantityText.self, forKey: .divisor)?.text
    }
}

/// core/v1 ConfigMapKeySelector.
public struct ConfigMapKeySelector: Codable, Sendable, Hashable {
    public var name: String?
    public var key: String
    public var optional: Bool?
    public init(name: String? = nil, key: String, optional: Bool? = nil) {
        self.name = name
        self.key = key
        self.optional = optional
    }
}

/// core/v1 SecretKeySelector.
public struct SecretKeySelector: Codable, Sendable, Hashable {
    public var name: String?
    public var key: String
    public var optional: Bool?
    public init(name: String? = nil, key: String, optional: Bool? = nil) {
        self.name = name
        self.key = key
        self.optional = optional
    }
}

/// core/v1 EnvFromSource: every key of a config map or secret, optionally prefixed.
public struct EnvFromSource: Codable, Sendable, Hashable {
    public var prefix: String?
    public var configMapRef: ConfigMapEnvSource?
    public var secretRef: SecretEnvSource?
    public init(prefix: String? = nil, configMapRef: ConfigMapEnvSource? = nil, secretRef: SecretEnvSource? = nil) {
        self.prefix = prefix
        self.configMapRef = configMapRef
        self.secretRef = secretRef
    }
}

/// core/v1 ConfigMapEnvSource.
public struct ConfigMapEnvSource: Codable, Sendable, Hashable {
    public var name: String?
    public var optional: Bool?
    public init(name: String? = nil, optional: Bool? = nil) {
        self.name = name
        self.optional = optional
    }
}

/// core/v1 SecretEnvSource.
public struct SecretEnvSource: Codable, Sendable, Hashable {
    public var name: String?
    public var optional: Bool?
    public init(name: String? = nil, optional: Bool? = nil) {
        self.name = name
        self.optional = optional
    }
}

/// core/v1 ResourceRequirements: quantities by resource name (`cpu`, `memory`, `ephemeral-storage`).
/// A hand-written manifest's numbers (`cpu: 1`) decode as their text (`"1"`), as the API accepts them.
public struct ResourceRequirements: Codable, Sendable, Hashable {
    public var limits: [String: String]?
    public var requests: [String: String]?
    public init(limits: [String: String]? = nil, requests: [String: String]? = nil) {
        self.limits = limits
        self.requests = requests
    }

    private enum CodingKeys: String, CodingKey { case limits, requests }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        limits = try container.decodeIfPresent([String: QuantityText].self, forKey: .limits)?.mapValues(\.text)
        requests = try container.decodeIfPresent([String: QuantityText].self, forKey: .requests)?.mapValues(\.text)
    }
}

/// A resource.Quantity as JSON may carry it: a string (always, from the API server) or a number
/// (in a hand-written manifest), kept as text.
struct QuantityText: Decodable, Sendable {
    let text: String

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self.text = text
        } else if let number = try? container.decode(Int64.self) {
            text = String(number)
        } else if let number = try? container.decode(Double.self), number.isFinite {
            text = String(number)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected a quantity (a string or a number)")
        }
    }
}

/// core/v1 VolumeMount.
public struct VolumeMount: Codable, Sendable, Hashable {
    public var name: String
    public var readOnly: Bool?
    public var mountPath: String
    public var subPath: String?
    /// `None` (the default), `HostToContainer` or `Bidirectional`.
    public var mountPropagation: String?
    public var subPathExpr: String?
    public init(name: String, readOnly: Bool? = nil, mountPath: String, subPath: String? = nil, mountPropagation: String? = nil,
                subPathExpr: String? = nil) {
        self.name = name
        self.readOnly = readOnly
        self.mountPath = mountPath
        self.subPath = subPath
        self.mountPropagation = mountPropagation
        self.subPathExpr = subPathExpr
    }
}

/// core/v1 VolumeDevice: a raw block volume.
public struct VolumeDevice: Codable, Sendable, Hashable {
    public var name: String
    public var devicePath: String
    public init(name: String, devicePath: String) {
        self.name = name
        self.devicePath = devicePath
    }
}

/// core/v1 Lifecycle: the handlers after start and before stop.
public struct Lifecycle: Codable, Sendable, Hashable {
    public var postStart: LifecycleHandler?
    public var preStop: LifecycleHandler?
    public init(postStart: LifecycleHandler? = nil, preStop: LifecycleHandler? = nil) {
        self.postStart = postStart
        self.preStop = preStop
    }
}

/// core/v1 LifecycleHandler: exactly one action.
public struct LifecycleHandler: Codable, Sendable, Hashable {
    public var exec: ExecAction?
    public var httpGet: HTTPGetAction?
    /// Deprecated; accepted, not run (as the kubelet).
    public var tcpSocket: TCPSocketAction?
    public var sleep: SleepAction?
    public init(exec: ExecAction? = nil, httpGet: HTTPGetAction? = nil, tcpSocket: TCPSocketAction? = nil, sleep: SleepAction? = nil) {
        self.exec = exec
        self.httpGet = httpGet
        self.tcpSocket = tcpSocket
        self.sleep = sleep
    }
}

/// core/v1 SleepAction.
public struct SleepAction: Codable, Sendable, Hashable {
    public var seconds: Int64
    public init(seconds: Int64) { self.seconds = seconds }
}
