import CSwiftletGRPC
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A gRPC server on the gRPC C core.
///
/// One thread blocks on the completion queue and runs the bridge's per-call state machine;
/// each call's handler runs in a task that starts on that same thread and moves to the
/// global executor only if it suspends (``PollerExecutor``). The server owns those tasks:
/// it cancels a task when its call is cancelled, and ``run()`` returns only after every call
/// is over.
///
/// ```swift
/// let server = try GRPCServer(address: "unix:/run/app.sock") { call in
///     call.finish(.ok, message: [])
/// }
/// try await server.run()      // until shutdown() and the grace period
/// ```
public final class GRPCServer: Sendable {
    /// Handles one call; must end it with ``ServerCall/finish(_:message:)`` (a handler that
    /// returns without doing so ends the call with `INTERNAL`).
    public typealias Handler = @Sendable (ServerCall) async -> Void

    /// The address served (`unix:/path` or `host:port`).
    public let address: String
    private let server: UnsafeServer
    private let handler: Handler
    private let executor = PollerExecutor()
    private let shutdownGrace: Duration

    private struct Lifecycle {
        var started = false
        var running = false
        var shutdownRequested = false
        var shutdownWaiters: [CheckedContinuation<Void, Never>] = []
        var stopped = false
        var stopWaiter: CheckedContinuation<Void, Never>?
    }
    private let lifecycle = Mutex(Lifecycle())

    /// Binds `address`.
    ///
    /// - Parameters:
    ///   - maxMessageBytes: the largest message received or sent; larger ones end their
    ///     call with `RESOURCE_EXHAUSTED`.
    ///   - shutdownGrace: how long ``shutdown()`` lets calls in flight finish before it
    ///     cancels them.
    /// - Throws: ``GRPCServerError`` when the address cannot be bound.
    public init(
        address: String, maxMessageBytes: Int = 16 << 20, shutdownGrace: Duration = .seconds(10),
        handler: @escaping Handler
    ) throws(GRPCServerError) {
        guard let server = swg_server_create(address, Int32(clamping: maxMessageBytes)) else {
            throw GRPCServerError(.bind, context: address)
        }
        self.address = address
        self.server = UnsafeServer(pointer: server)
        self.handler = handler
        self.shutdownGrace = shutdownGrace
    }

    /// Serves until ``shutdown()`` completes: no new calls, calls in flight finished or,
    /// after the grace period, cancelled.
    public func run() async throws(GRPCServerError) {
        let alreadyRunning = lifecycle.withLock { state in
            defer { state.running = true }
            return state.running
        }
        precondition(!alreadyRunning, "GRPCServer.run() called twice")
        // A shutdown requested before this point is applied once the server has started:
        // the core cannot start a server whose shutdown began.
        let shutdownEarly = lifecycle.withLock { state in
            state.started = swg_server_start(server.pointer, 32) != 0
            return state.shutdownRequested
        }
        if shutdownEarly { swg_server_shutdown(server.pointer) }
        try startPoller()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                await self.waitForShutdownRequest()
                // Calls in flight get the grace period, then are cancelled.
                try? await Task.sleep(for: self.shutdownGrace)
                if !Task.isCancelled {
                    swg_server_cancel_all_calls(self.server.pointer)
                }
            }
            await withTaskCancellationHandler {
                await self.waitUntilStopped()
            } onCancel: {
                self.shutdown()
            }
            group.cancelAll()
        }
        swg_server_destroy(server.pointer)
    }

    /// Begins a graceful shutdown: no new calls are accepted, calls in flight go on for the
    /// grace period. Safe to call from any thread, more than once.
    public func shutdown() {
        let (waiters, started) = lifecycle.withLock { state -> ([CheckedContinuation<Void, Never>]?, Bool) in
            guard !state.shutdownRequested else { return (nil, state.started) }
            state.shutdownRequested = true
            defer { state.shutdownWaiters = [] }
            return (state.shutdownWaiters, state.started)
        }
        guard let waiters else { return }
        if started { swg_server_shutdown(server.pointer) }
        for waiter in waiters { waiter.resume() }
    }

    deinit {
        // A server that never ran still holds its socket and a gRPC core reference.
        if !lifecycle.withLock({ $0.running }) {
            swg_server_discard(server.pointer)
        }
    }

    private func waitForShutdownRequest() async {
        await withCheckedContinuation { continuation in
            let now = lifecycle.withLock { state -> Bool in
                if state.shutdownRequested { return true }
                state.shutdownWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func waitUntilStopped() async {
        await withCheckedContinuation { continuation in
            let now = lifecycle.withLock { state -> Bool in
                if state.stopped { return true }
                state.stopWaiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func markStopped() {
        let waiter = lifecycle.withLock { state in
            state.stopped = true
            defer { state.stopWaiter = nil }
            return state.stopWaiter
        }
        waiter?.resume()
    }

    // MARK: The completion-queue thread

    private func startPoller() throws(GRPCServerError) {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(&thread, nil, { context in
            let server = Unmanaged<GRPCServer>.fromOpaque(context!).takeRetainedValue()
            server.poll()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<GRPCServer>.fromOpaque(context).release()
            // Nothing polls the queue: stop the server and wait it out here.
            swg_server_shutdown(server.pointer)
            var event = swg_event()
            repeat { swg_server_next(server.pointer, &event) } while event.kind != SWG_EVENT_QUEUE_SHUTDOWN
            swg_server_destroy(server.pointer)
            throw GRPCServerError(.thread, context: address, errno: result)
        }
        pthread_detach(thread)
    }

    private func poll() {
        swg_name_current_thread("swiftlet-grpc")
        executor.bindToCurrentThread()
        var event = swg_event()
        while true {
            executor.drain()
            swg_server_next(server.pointer, &event)
            switch event.kind {
            case SWG_EVENT_CALL:
                let handle = event.call!
                let call = ServerCall(handle: handle)
                swg_call_set_user(handle, Unmanaged.passRetained(call).toOpaque())
                let handler = self.handler
                // The handler starts on this thread and leaves it only if it suspends
                // (PollerExecutor); the call owns the task.
                call.attach(Task(executorPreference: executor) {
                    await handler(call)
                    if !call.isFinished {
                        call.finish(RPCStatus(.internal, "handler for \(call.method) returned without a status"))
                    }
                })
            case SWG_EVENT_SENT:
                let call = Unmanaged<ServerCall>.fromOpaque(swg_call_user(event.call)!).takeUnretainedValue()
                call.sendCompleted(ok: event.ok != 0)
            case SWG_EVENT_CLOSED:
                let call = Unmanaged<ServerCall>.fromOpaque(swg_call_user(event.call)!).takeRetainedValue()
                call.closed(cancelled: event.cancelled != 0)
            case SWG_EVENT_SERVER_SHUTDOWN:
                // No new calls; the bridge shuts the queue once every accepted call is freed.
                continue
            case SWG_EVENT_QUEUE_SHUTDOWN:
                executor.drain()
                executor.unbind()
                markStopped()
                return
            default:
                continue
            }
        }
    }

    // MARK: gRPC core logs

    /// Routes the gRPC core's own log lines (bind failures, protocol errors) to `handler`.
    /// Process-wide; set it before creating a server.
    public static func setCoreLogHandler(_ handler: @escaping @Sendable (CoreLogSeverity, String) -> Void) {
        coreLogHandler.withLock { $0 = handler }
        swg_set_log_function { severity, file, line, message in
            let text = message.map { String(cString: $0) } ?? ""
            let handler = coreLogHandler.withLock { $0 }
            handler?(CoreLogSeverity(rawValue: severity) ?? .error, text)
        }
    }
}

/// The severity of a gRPC core log line.
public enum CoreLogSeverity: Int32, Sendable {
    case debug = 0
    case info = 1
    case error = 2
}

private let coreLogHandler = Mutex<(@Sendable (CoreLogSeverity, String) -> Void)?>(nil)

/// The bridge's server handle; its functions are thread-safe (swiftlet_grpc.h).
private struct UnsafeServer: @unchecked Sendable {
    let pointer: OpaquePointer
}
