/// What a token stands for: the CRI request the URL was handed out for.
enum StreamRequest: Sendable, Equatable {
    case exec(containerID: String, command: [String], options: StreamOptions)
    case attach(containerID: String, options: StreamOptions)
    case portForward(podSandboxID: String, port: Int32?)

    /// The URL path segment that serves this request (`/exec/<token>`, …).
    var pathSegment: String {
        switch self {
        case .exec: "exec"
        case .attach: "attach"
        case .portForward: "portforward"
        }
    }
}

/// Which standard streams a session carries, as the CRI request asked.
struct StreamOptions: Sendable, Equatable {
    var stdin: Bool
    var stdout: Bool
    var stderr: Bool
    var tty: Bool
}
