import CSwiftletGRPC
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One unary call on a channel of its own (swiftlet_grpc_client.h), run on a thread of its
/// own.
///
/// That thread does all the gRPC core work that can block: creating the call (grpc_init may
/// wait while another thread's grpc_shutdown cleans up), the completion-queue wait, and
/// freeing it (the last grpc_shutdown of the process cleans up synchronously). The Swift
/// cooperative pool only waits for its continuation.
///
/// The C call lives inside ``run(timeout:)``'s thread, from create to free; `handle` exposes
/// it to ``cancel()`` in between, under the lock, so a cancel never reaches a freed call.
final class UnaryCall: Sendable {
    /// How the call ended, copied out of the C call.
    struct Outcome: Sendable {
        enum Kind: Sendable { case completed, connectFailed, connectTimeout, cancelled }
        var kind: Kind
        var code: Int32
        var details: String
        var response: [UInt8]?
    }

    /// Why the call could not be made at all.
    enum LocalFailure: Error {
        /// No thread could be started (errno).
        case thread(Int32)
        /// The bridge could not allocate the call.
        case outOfMemory
    }

    private struct Handle: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    private struct State {
        var handle: Handle?
        var cancelled = false
    }

    private let target: String
    private let method: String
    private let request: [UInt8]
    private let userAgent: String?
    private let state = Mutex(State())

    init(target: String, method: String, request: [UInt8], userAgent: String?) {
        self.target = target
        self.method = method
        self.request = request
        self.userAgent = userAgent
    }

    /// Connects and runs the call within `timeout`; cancelling the calling task cancels it.
    func run(timeout: Duration) async -> Result<Outcome, LocalFailure> {
        let nanoseconds = Self.nanoseconds(timeout)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<Outcome, LocalFailure>, Never>) in
                let job = Job(call: self, timeoutNanoseconds: nanoseconds, continuation: continuation)
                let context = Unmanaged.passRetained(job).toOpaque()
                var thread = pthread_t()
                let result = pthread_create(&thread, nil, { context in
                    let job = Unmanaged<Job>.fromOpaque(context!).takeRetainedValue()
                    swg_name_current_thread("swiftlet-health")
                    job.continuation.resume(returning: job.call.runBlocking(job.timeoutNanoseconds))
                    return nil
                }, context)
                if result == 0 {
                    pthread_detach(thread)
                } else {
                    Unmanaged<Job>.fromOpaque(context).release()
                    continuation.resume(returning: .failure(.thread(result)))
                }
            }
        } onCancel: {
            cancel()
        }
    }

    /// Cancels the call if it is in progress, or makes it end at once if it has not started.
    func cancel() {
        state.withLock { state in
            state.cancelled = true
            if let handle = state.handle {
                swg_client_call_cancel(handle.pointer)
            }
        }
    }

    private final class Job: Sendable {
        let call: UnaryCall
        let timeoutNanoseconds: Int64
        let continuation: CheckedContinuation<Result<Outcome, LocalFailure>, Never>
        init(call: UnaryCall, timeoutNanoseconds: Int64, continuation: CheckedContinuation<Result<Outcome, LocalFailure>, Never>) {
            self.call = call
            self.timeoutNanoseconds = timeoutNanoseconds
            self.continuation = continuation
        }
    }

    /// The whole call, blocking this (dedicated) thread: create, run, copy out, free.
    private func runBlocking(_ timeoutNanoseconds: Int64) -> Result<Outcome, LocalFailure> {
        let created = request.withUnsafeBufferPointer { buffer in
            swg_client_call_create(target, method, buffer.baseAddress, buffer.count, userAgent)
        }
        guard let pointer = created else { return .failure(.outOfMemory) }
        state.withLock { state in
            state.handle = Handle(pointer: pointer)
            // A cancel that came first: the run returns at once.
            if state.cancelled { swg_client_call_cancel(pointer) }
        }
        swg_client_call_run(pointer, timeoutNanoseconds)
        let outcome = Self.outcome(of: pointer)
        state.withLock { $0.handle = nil }
        swg_client_call_free(pointer)
        return .success(outcome)
    }

    private static func outcome(of pointer: OpaquePointer) -> Outcome {
        let kind: Outcome.Kind
        switch swg_client_call_outcome(pointer) {
        case SWG_CLIENT_COMPLETED: kind = .completed
        case SWG_CLIENT_CONNECT_FAILED: kind = .connectFailed
        case SWG_CLIENT_CONNECT_TIMEOUT: kind = .connectTimeout
        default: kind = .cancelled
        }
        var length = 0
        let response = swg_client_call_response(pointer, &length).map { Array(UnsafeBufferPointer(start: $0, count: length)) }
        return Outcome(
            kind: kind,
            code: Int32(truncatingIfNeeded: swg_client_call_status(pointer).rawValue),
            details: String(cString: swg_client_call_details(pointer)),
            response: response
        )
    }

    /// The timeout in nanoseconds, clamped to 0...Int64.max.
    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return .max }
        let (total, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? .max : max(total, 0)
    }
}
