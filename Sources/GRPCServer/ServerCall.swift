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

    init(handle: OpaquePointer) {
        self.handle = handle
        var length = 0
        if let bytes = swg_call_method(handle, &length) {
            self.method = String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
        } else {
            self.method = ""
        }
        let remaining = swg_call_deadline_remaining_ns(handle)
        self.deadline = remaining == Int64.max ? nil : ContinuousClock.now.advanced(by: .nanoseconds(remaining))
        self.hasRequest = swg_call_request(handle, &length) != nil
    }

    deinit {
        swg_call_release(handle)
    }

    /// Calls `body` with the request's bytes (empty if none arrived); valid only inside `body`.
    public func withRequest<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var length = 0
        let bytes = swg_call_request(handle, &length)
        return try body(UnsafeRawBufferPointer(start: bytes, count: length))
    }

    /// Whether the call ended without its status reaching the client (cancelled by the
    /// client, its deadline, or a server shutdown).
    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Sends one message of a server stream; returns when it went out. One send at a time.
    ///
    /// - Throws: ``RPCStatus`` `CANCELLED` when the call is over, `INTERNAL` when another
    ///   send is still in flight.
    public func send(_ message: [UInt8]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let refusal = state.withLock { state -> RPCStatus? in
                if state.closed || state.finished { return RPCStatus(.cancelled, "the call is over") }
                if state.pendingSend != nil { return RPCStatus(.internal, "a send is already in flight on \(method)") }
                state.pendingSend = continuation
                return nil
            }
            if let refusal {
                continuation.resume(throwing: refusal)
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
        let started: Int32
        if let message {
            started = message.withUnsafeBufferPointer { buffer in
                withNonNullBase(buffer) { swg_call_finish(handle, $0, buffer.count, code, details) }
            }
        } else {
            started = swg_call_finish(handle, nil, 0, code, details)
        }
        if started == 0 {
            // The status cannot go out (the call is over, or the core refused the batch):
            // make sure the client is not left waiting for it.
            swg_call_cancel(handle)
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
        state.withLock { $0.task = task }
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

    /// The call is over. A send still in flight is left alone: its batch always completes
    /// (failed, if the call was cancelled) and ``sendCompleted(ok:)`` resumes it, so the
    /// waiting sender keeps this object alive until the bridge is done with it.
    func closed(cancelled: Bool) {
        let task = state.withLock { state in
            state.closed = true
            state.cancelled = cancelled
            return state.task
        }
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
