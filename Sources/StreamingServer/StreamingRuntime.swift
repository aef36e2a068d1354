/// What the streaming server asks of the container runtime. The server owns the network side
/// (HTTP upgrade, SPDY/3.1 or WebSocket framing, the k8s channel protocols, tokens); the
/// runtime owns the processes. Data moves through plain file descriptors, so the runtime can
/// hand them straight to the process it starts (a pipe end as its stdin, …).
public protocol StreamingRuntime: Sendable {
    /// Runs `command` in the running container `containerID` and returns its exit code once
    /// it ended and its output was delivered. `io.stdin` (when present) is read until EOF;
    /// `io.stdout`/`io.stderr` are written; the runtime closes none of them (the server does).
    /// Throws `StreamingError` (not found, not running) before anything ran.
    func exec(containerID: String, command: [String], io: StreamIO) async throws -> Int32

    /// Attaches to the running container's stdio: its output from now on, its stdin if it
    /// was created with `stdin: true`. Returns when the container exits or the client's
    /// stdin ended with `stdin_once`. Throws `StreamingError` before anything was attached.
    func attach(containerID: String, io: StreamIO) async throws

    /// Connects to `port` on the loopback of the pod's network namespace and returns the
    /// connected socket; the server closes it.
    func portForward(podSandboxID: String, port: Int32) async throws -> Int32
}

/// One session's descriptors. Absent streams were not requested by the client.
public struct StreamIO: Sendable {
    public var stdin: Int32?
    public var stdout: Int32?
    /// Absent with a tty (stderr is merged into the terminal).
    public var stderr: Int32?
    public var tty: Bool
    /// Terminal sizes as the client resizes (tty sessions); finishes with the session.
    public var resize: AsyncStream<TerminalSize>

    public init(stdin: Int32?, stdout: Int32?, stderr: Int32?, tty: Bool, resize: AsyncStream<TerminalSize>) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.tty = tty
        self.resize = resize
    }
}

/// A terminal size in character cells.
public struct TerminalSize: Sendable, Equatable {
    public var width: UInt16
    public var height: UInt16
    public init(width: UInt16, height: UInt16) {
        self.width = width
        self.height = height
    }
}

/// Why the runtime could not serve a session; the server reports it to the client the way
/// the kubelet's server does (the error channel, or an HTTP status before the upgrade).
public struct StreamingError: Error, Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case notFound, notRunning, invalidArgument, `internal` }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}
