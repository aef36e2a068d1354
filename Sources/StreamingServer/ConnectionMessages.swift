import CSwiftletStreaming
import Synchronization

/// What a connection's loop asks of the runtime; its owning task performs it.
enum ConnectionCommand: Sendable {
    /// Runs an exec; `keepAlive` holds the process's ends of the pipes until it returns.
    case exec(containerID: String, command: [String], io: StreamIO, keepAlive: [OwnedFD])
    case attach(containerID: String, io: StreamIO, keepAlive: [OwnedFD])
    case portForward(podSandboxID: String, port: Int32, requestID: String)
}

/// What the owning task reports back to a connection's loop.
enum ConnectionEvent: Sendable {
    /// The exec (its exit code) or attach (nil) ended, or failed before it ran.
    case remoteCommandFinished(Result<Int32?, StreamingError>)
    case portForwardConnected(requestID: String, socket: OwnedFD)
    case portForwardFailed(requestID: String, message: String)
    /// The server shuts down: the connection ends now.
    case abort
}

/// Events for a connection's loop thread, which polls an eventfd to learn of them. Posting
/// to a loop that has ended drops the event (and with it any descriptor it carries).
final class ConnectionMailbox: Sendable {
    private struct State {
        var events: [ConnectionEvent] = []
        var open = true
    }

    private let state = Mutex(State())
    /// The eventfd the loop polls.
    let wakeFD: OwnedFD

    init() throws(StreamingServerError) {
        let fd = sws_wakefd_new()
        guard fd >= 0 else { throw StreamingServerError(.resources, context: "eventfd", errno: -fd) }
        wakeFD = OwnedFD(fd)
    }

    /// Queues `event`; false when the loop has ended.
    @discardableResult
    func post(_ event: ConnectionEvent) -> Bool {
        let posted = state.withLock { state in
            guard state.open else { return false }
            state.events.append(event)
            return true
        }
        if posted { sws_wakefd_signal(wakeFD.raw) }
        return posted
    }

    /// The events queued so far (loop thread).
    func take() -> [ConnectionEvent] {
        sws_wakefd_drain(wakeFD.raw)
        return state.withLock { state in
            defer { state.events = [] }
            return state.events
        }
    }

    /// Refuses further events and drops the queued ones (loop thread, at its end).
    func close() {
        let dropped = state.withLock { state in
            state.open = false
            defer { state.events = [] }
            return state.events
        }
        _ = dropped
    }
}
