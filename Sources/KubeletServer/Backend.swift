/// What the kubelet API serves, implemented by the node agent: the server does the HTTP, the
/// authentication and authorization; each method here gets typed parameters and returns bytes
/// or a stream. Errors: throw ``KubeletAPIError`` for the status and plain-text message the
/// client sees (e.g. 404 `pod does not exist`); any other error answers 500 with its
/// description.
///
/// Every call runs in a task that is cancelled when the client goes away or the server shuts
/// down; a method must return promptly once cancelled.
public protocol KubeletAPIBackend: Sendable {
    /// `GET /pods`: the pods bound to the node, a v1 `PodList` as JSON.
    func pods() async throws -> [UInt8]

    /// `GET /runningpods/`: the pods the runtime runs, a v1 `PodList` as JSON.
    func runningPods() async throws -> [UInt8]

    /// `GET /containerLogs/{namespace}/{pod}/{container}`: the container's log as it should
    /// reach the client (already limited, tailed, timestamped). The server sends each element
    /// as it arrives (chunked), and ends the response when the stream finishes; an error
    /// thrown by the stream ends the response early.
    ///
    /// The server stops iterating and drops the stream when the client goes away (or the
    /// server shuts down): the iterating task is cancelled, so an `AsyncThrowingStream`'s
    /// `onTermination` runs; a `follow` stream ends that way.
    func containerLogs(_ request: ContainerLogsRequest) async throws -> AsyncThrowingStream<[UInt8], any Error>

    /// `GET /stats/summary`: a stats/v1alpha1 `Summary` as JSON.
    func statsSummary(onlyCPUAndMemory: Bool) async throws -> [UInt8]

    /// `GET /metrics`, `/metrics/cadvisor`, `/metrics/resource`, `/metrics/probes`:
    /// Prometheus text exposition format (0.0.4).
    func metrics(_ endpoint: KubeletMetricsEndpoint) async throws -> [UInt8]

    /// `GET /spec/`: cAdvisor's `MachineInfo` as JSON.
    func spec() async throws -> [UInt8]

    /// `/exec/{namespace}/{pod}[/{uid}]/{container}`: the runtime's streaming URL for the
    /// session (the CRI `ExecResponse.url`, `http://…`); the server proxies the client's
    /// upgrade to it.
    func exec(_ request: ContainerStreamRequest) async throws -> String

    /// `/attach/{namespace}/{pod}[/{uid}]/{container}`: as ``exec(_:)`` (`command` empty).
    func attach(_ request: ContainerStreamRequest) async throws -> String

    /// `/portForward/{namespace}/{pod}[/{uid}]`: the runtime's streaming URL (the CRI
    /// `PortForwardResponse.url`). Throw 404 `pod not found` when `uid` does not match.
    func portForward(_ request: PortForwardRequest) async throws -> String

    /// `POST /run/{namespace}/{pod}[/{uid}]/{container}?cmd=…`: runs the command to
    /// completion (CRI ExecSync) and returns its output, answered as the body.
    func run(_ request: RunInContainerRequest) async throws -> [UInt8]

    /// Checks behind `/healthz` besides `ping` and `log` (the kubelet's `syncloop`), each also
    /// at `/healthz/<name>`. Default: none.
    var healthChecks: [KubeletHealthCheck] { get }
}

extension KubeletAPIBackend {
    public var healthChecks: [KubeletHealthCheck] { [] }
}

/// A named health check: returns when healthy, throws (its description is the reason) when not.
public struct KubeletHealthCheck: Sendable {
    /// The check's path under `/healthz/`.
    public var name: String
    /// Returns when healthy; throws the reason otherwise.
    public var check: @Sendable () async throws -> Void

    public init(name: String, check: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.check = check
    }
}

/// An error answered with its status and plain-text message, as the kubelet writes them.
public struct KubeletAPIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The HTTP status answered.
    public var status: Int
    /// The body, sent as is (text).
    public var message: String
    /// Extra response fields (e.g. `Retry-After` with 429).
    public var headers: [String: String]

    public init(status: Int, message: String, headers: [String: String] = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    /// 404, e.g. `pod does not exist`, `container "c" not found in pod "p"`.
    public static func notFound(_ message: String) -> KubeletAPIError { KubeletAPIError(status: 404, message: message) }
    public static func badRequest(_ message: String) -> KubeletAPIError { KubeletAPIError(status: 400, message: message) }
    public static func internalError(_ message: String) -> KubeletAPIError { KubeletAPIError(status: 500, message: message) }

    public var description: String { "\(status): \(message)" }
}

/// The Prometheus endpoints.
public enum KubeletMetricsEndpoint: String, Sendable, CaseIterable {
    case metrics = "/metrics"
    case cadvisor = "/metrics/cadvisor"
    case resource = "/metrics/resource"
    case probes = "/metrics/probes"
}

/// Which of a container's streams a log request wants (`stream`, PodLogsQuerySplitStreams).
public enum ContainerLogStream: String, Sendable, Hashable {
    case all = "All"
    case stdout = "Stdout"
    case stderr = "Stderr"
}

/// `GET /containerLogs/{namespace}/{pod}/{container}` with the v1 `PodLogOptions` query.
public struct ContainerLogsRequest: Sendable, Hashable {
    public var namespace: String
    public var pod: String
    public var container: String
    public var follow: Bool = false
    public var previous: Bool = false
    public var timestamps: Bool = false
    /// Lines from the end (`tailLines`, or legacy `tail`; absent or `tail=all`: every line).
    public var tailLines: Int64?
    /// Bytes at most (`limitBytes`).
    public var limitBytes: Int64?
    /// Only lines newer than this many seconds (`sinceSeconds`).
    public var sinceSeconds: Int64?
    /// Only lines at or after this time (`sinceTime`, RFC 3339), in nanoseconds since the
    /// Unix epoch.
    public var sinceTimeNanoseconds: Int64?
    public var stream: ContainerLogStream = .all

    public init(namespace: String, pod: String, container: String) {
        self.namespace = namespace
        self.pod = pod
        self.container = container
    }
}

/// `/exec/…` or `/attach/…`: the pod, the container, the command (exec; repeated `command`
/// parameters) and the streams (the kubelet's `input`, `output`, `error`, `tty` = "1": the
/// API server's stdin, stdout, stderr, tty; stderr is dropped
/// with a tty, as the kubelet does).
public struct ContainerStreamRequest: Sendable, Hashable {
    public var namespace: String
    public var pod: String
    /// The pod UID from the 4-segment form of the path, else nil.
    public var uid: String?
    public var container: String
    public var command: [String]
    public var stdin: Bool
    public var stdout: Bool
    public var stderr: Bool
    public var tty: Bool

    public init(
        namespace: String, pod: String, uid: String?, container: String, command: [String], stdin: Bool, stdout: Bool,
        stderr: Bool, tty: Bool
    ) {
        self.namespace = namespace
        self.pod = pod
        self.uid = uid
        self.container = container
        self.command = command
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.tty = tty
    }
}

/// `/portForward/{namespace}/{pod}[/{uid}]`. `ports` are the WebSocket client's `port`
/// parameters (SPDY clients name ports per stream: empty).
public struct PortForwardRequest: Sendable, Hashable {
    public var namespace: String
    public var pod: String
    public var uid: String?
    public var ports: [Int32]

    public init(namespace: String, pod: String, uid: String?, ports: [Int32]) {
        self.namespace = namespace
        self.pod = pod
        self.uid = uid
        self.ports = ports
    }
}

/// `POST /run/{namespace}/{pod}[/{uid}]/{container}?cmd=…` (the command split at spaces).
public struct RunInContainerRequest: Sendable, Hashable {
    public var namespace: String
    public var pod: String
    public var uid: String?
    public var container: String
    public var command: [String]

    public init(namespace: String, pod: String, uid: String?, container: String, command: [String]) {
        self.namespace = namespace
        self.pod = pod
        self.uid = uid
        self.container = container
        self.command = command
    }
}
