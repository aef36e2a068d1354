import CSwiftletGRPC
import Synchronization

/// One incoming call, from its request to its status.
///
/// A handler reads the request with ``withRequest(_:)``, sends stream messages with
/// ``send(_:)`` and ends the call with ``finish(_:message:)``. The client cancelling, or its
/// deadline passing, cancels the task running the handler.
///
/// Thread safety: the C call accepts sends, the finish and cancel from any thread; the
/// mutable Swift state is behind a mutex. Hence `@unchecked Sendable`.
public final class ServerCall: @unchecked Sendable {
    private let handle: OpaquePointer
    private let tracker: CallTracker
    /// The method path, for example `/runtime.v1.RuntimeService/Version`.
    public let method: String
    /// When the client stops waiting, if it set a deadline.
    public let deadline: ContinuousClock.Instant?
    /// Whether a request message arrived (a unary call without one is a protocol error).
    public let hasRequest: Bool

    private struct State {
        var task: Task<Void, Never>?
        var closed = false
        var cancelled = false
        var finished = false
        var pendingSend: CheckedContinuation<Void, any Error>?
    }
    private let state = Mutex(State())

    init(handle: OpaquePointer, tracker: CallTracker) {
        self.handle = handle
        self.tracker = tracker
        var length = 0
        if let bytes = swg_call_method(handle, &length) {
            self.method = String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
        } else {
            self.method = ""
        }
        let remaining = swg_call_deadline_remaining_ns(handle)
        self.deadline = remaining == Int64.max ? nil : ContinuousClock.now.advanced(by: .nanoseconds(remaining))
        self.hasRequest = swg_call_request(handle, &length) != nil
        tracker.started()
    }

    deinit {
        swg_call_release(handle)
        tracker.ended()
    }

    /// Calls `body` with the request's bytes (empty if none arrived); valid only inside `body`.
    public func withRequest<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var length = 0
        let bytes = swg_call_request(handle, &length)
        return try body(UnsafeRawBufferPointer(start: bytes, count: length))
    }

    /// A request metadata value (a header such as `user-agent`), if the client sent it.
    public func metadata(_ key: String) -> String? {
        var length = 0
        guard let value = swg_call_metadata(handle, key, &length) else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: value, count: length), as: UTF8.self)
    }

    /// Whether the call ended without its status reaching the client (cancelled by the
    /// client, its deadline, or a server shutdown).
    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Sends one message of a server stream; returns when it went out.
    ///
    /// - Throws: ``RPCStatus`` `CANCELLED` when the call is over.
    public func send(_ message: [UInt8]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let closed = state.withLock { state -> Bool in
                if state.closed || state.finished { return true }
                state.pendingSend = continuation
                return false
            }
            if closed {
                continuation.resume(throwing: RPCStatus(.cancelled, "the call is over"))
                return
            }
            let started = message.withUnsafeBufferPointer { buffer in
                withNonNullBase(buffer) { swg_call_send(handle, $0, buffer.count) }
            }
            if started == 0 {
                let pending = state.withLock { state in
                    defer { state.pendingSend = nil }
                    return state.pendingSend
                }
                pending?.resume(throwing: RPCStatus(.cancelled, "the call is over"))
            }
        }
    }

    /// The longest status message sent: it travels in an HTTP/2 trailer, and clients refuse
    /// metadata over 8–16 KiB with the whole response.
    public static let maxStatusMessageBytes = 4096

    /// Ends the call with `status`, after one last message if given. Later calls do nothing.
    /// A status message longer than ``maxStatusMessageBytes`` is cut there.
    public func finish(_ status: RPCStatus, message: [UInt8]? = nil) {
        let first = state.withLock { state in
            defer { state.finished = true }
            return !state.finished
        }
        guard first else { return }
        let code = swg_status_code(rawValue: .init(truncatingIfNeeded: status.code.rawValue))
        let details = Self.bounded(status.message)
        if let message {
            message.withUnsafeBufferPointer { buffer in
                _ = withNonNullBase(buffer) { swg_call_finish(handle, $0, buffer.count, code, details) }
            }
        } else {
            _ = swg_call_finish(handle, nil, 0, code, details)
        }
    }

    static func bounded(_ message: String) -> String {
        guard message.utf8.count > maxStatusMessageBytes else { return message }
        let suffix = "… (truncated)"
        var kept = ""
        for character in message {
            if kept.utf8.count + character.utf8.count + suffix.utf8.count > maxStatusMessageBytes { break }
            kept.append(character)
        }
        return kept + suffix
    }

    /// Whether ``finish(_:message:)`` was called.
    public var isFinished: Bool { state.withLock { $0.finished } }

    /// Cancels the call: the client sees CANCELLED and the handler's task is cancelled.
    public func cancel() {
        swg_call_cancel(handle)
    }

    // MARK: Poller side

    func attach(_ task: Task<Void, Never>) {
        let cancelNow = state.withLock { state -> Bool in
            state.task = task
            return state.closed && state.cancelled
        }
        if cancelNow { task.cancel() }
    }

    func sendCompleted(ok: Bool) {
        let pending = state.withLock { state in
            defer { state.pendingSend = nil }
            return state.pendingSend
        }
        if ok {
            pending?.resume()
        } else {
            pending?.resume(throwing: RPCStatus(.cancelled, "the call is over"))
        }
    }

    func closed(cancelled: Bool) {
        let (task, pending) = state.withLock { state in
            state.closed = true
            state.cancelled = cancelled
            defer { state.pendingSend = nil }
            return (state.task, state.pendingSend)
        }
        pending?.resume(throwing: RPCStatus(.cancelled, "the call is over"))
        if cancelled { task?.cancel() }
    }
}

/// A buffer's base address, or a valid pointer to nothing for an empty buffer: the bridge
/// reads NULL as "no message", and an empty message is a message.
private func withNonNullBase<R>(_ buffer: UnsafeBufferPointer<UInt8>, _ body: (UnsafePointer<UInt8>) -> R) -> R {
    if let base = buffer.baseAddress { return body(base) }
    var empty: UInt8 = 0
    return withUnsafePointer(to: &empty) { body($0) }
}

/// Counts the calls whose Swift side is still alive, so the completion queue is shut down
/// only when no handler can start another batch.
final class CallTracker: Sendable {
    private struct State {
        var live = 0
        var draining = false
        var onIdle: (@Sendable () -> Void)?
    }
    private let state = Mutex(State())

    var liveCount: Int { state.withLock { $0.live } }

    func started() {
        state.withLock { $0.live += 1 }
    }

    func ended() {
        let idle = state.withLock { state -> (@Sendable () -> Void)? in
            state.live -= 1
            guard state.live == 0, state.draining, let onIdle = state.onIdle else { return nil }
            state.onIdle = nil
            return onIdle
        }
        idle?()
    }

    /// Runs `action` once no call is alive: now, or when the last one ends.
    func whenIdle(_ action: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state -> Bool in
            state.draining = true
            if state.live == 0 { return true }
            state.onIdle = action
            return false
        }
        if runNow { action() }
    }
}
