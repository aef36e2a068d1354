/// core/v1 Probe: one action (the inline ProbeHandler) and its timing. The API server fills the
/// defaults (timeout 1 s, period 10 s, thresholds 1 and 3); a static pod's manifest may omit them.
public struct Probe: Codable, Sendable, Hashable {
    public var exec: ExecAction?
    public var httpGet: HTTPGetAction?
    public var tcpSocket: TCPSocketAction?
    public var grpc: GRPCAction?
    public var initialDelaySeconds: Int32?
    public var timeoutSeconds: Int32?
    public var periodSeconds: Int32?
    public var successThreshold: Int32?
    public var failureThreshold: Int32?
    /// Overrides the pod's grace period when this (liveness or startup) probe kills the container.
    public var terminationGracePeriodSeconds: Int64?

    public init(exec: ExecAction? = nil, httpGet: HTTPGetAction? = nil, tcpSocket: TCPSocketAction? = nil, grpc: GRPCAction? = nil,
                initialDelaySeconds: Int32? = nil, timeoutSeconds: Int32? = nil, periodSeconds: Int32? = nil,
                successThreshold: Int32? = nil, failureThreshold: Int32? = nil, terminationGracePeriodSeconds: Int64? = nil) {
        self.exec = exec
        self.httpGet = httpGet
        self.tcpSocket = tcpSocket
        self.grpc = grpc
        self.initialDelaySeconds = initialDelaySeconds
        self.timeoutSeconds = timeoutSeconds
        self.periodSeconds = periodSeconds
        self.successThreshold = successThreshold
        self.failureThreshold = failureThreshold
        self.terminationGracePeriodSeconds = terminationGracePeriodSeconds
    }
}

/// core/v1 ExecAction: a command run in the container (no shell unless the command is one).
public struct ExecAction: Codable, Sendable, Hashable {
    public var command: [String]?
    public init(command: [String]? = nil) { self.command = command }
}

/// core/v1 HTTPGetAction.
public struct HTTPGetAction: Codable, Sendable, Hashable {
    public var path: String?
    /// A number or the name of a container port.
    public var port: IntOrString
    /// Defaults to the pod IP.
    public var host: String?
    /// `HTTP` (the default) or `HTTPS` (certificate not verified).
    public var scheme: String?
    public var httpHeaders: [HTTPHeader]?
    public init(path: String? = nil, port: IntOrString, host: String? = nil, scheme: String? = nil, httpHeaders: [HTTPHeader]? = nil) {
        self.path = path
        self.port = port
        self.host = host
        self.scheme = scheme
        self.httpHeaders = httpHeaders
    }
}

/// core/v1 HTTPHeader.
public struct HTTPHeader: Codable, Sendable, Hashable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// core/v1 TCPSocketAction.
public struct TCPSocketAction: Codable, Sendable, Hashable {
    public var port: IntOrString
    public var host: String?
    public init(port: IntOrString, host: String? = nil) {
        self.port = port
        self.host = host
    }
}

/// core/v1 GRPCAction: the gRPC health checking protocol.
public struct GRPCAction: Codable, Sendable, Hashable {
    public var port: Int32
    /// The `service` of the HealthCheckRequest (nil: the server's overall health).
    public var service: String?
    public init(port: Int32, service: String? = nil) {
        self.port = port
        self.service = service
    }
}

/// intstr.IntOrString: a JSON number or string (a port number or name, `"25%"`).
public enum IntOrString: Codable, Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    case int(Int32)
    case string(String)

    public init(integerLiteral value: Int32) { self = .int(value) }
    public init(stringLiteral value: String) { self = .string(value) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int32.self) {
            self = .int(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected an integer or a string")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .int(let number): try container.encode(number)
        case .string(let text): try container.encode(text)
        }
    }

    /// The number, if this is one (a string is a name, even when it is all digits).
    public var intValue: Int32? {
        if case .int(let number) = self { return number }
        return nil
    }

    public var description: String {
        switch self {
        case .int(let number): return String(number)
        case .string(let text): return text
        }
    }
}
