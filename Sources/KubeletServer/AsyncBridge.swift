import CSwiftletTLS
import Synchronization

/// Async work a connection thread asks for: run as a child task of the connection's task
/// (structured: ``KubeletAPIServer/run()`` waits for it), cancellable by the thread.
final class Job: Sendable {
    private let body: @Sendable () async -> Void
    private let cancelled: AsyncStream<Never>
    private let cancellation: AsyncStream<Never>.Continuation

    init(_ body: @escaping @Sendable () async -> Void) {
        self.body = body
        (cancelled, cancellation) = AsyncStream.makeStream(of: Never.self)
    }

    /// Cancels the body's task (before or while it runs).
    func cancel() { cancellation.finish() }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.body() }
            group.addTask { for await _ in self.cancelled {} }
            await group.next()
            group.cancelAll()
        }
    }
}

/// Events from a ``Job`` to the connection thread: queued under a lock, announced on the
/// connection's eventfd. The producer waits while `capacity` events are queued (so a fast
/// log cannot fill memory behind a slow client).
final class Handoff<Event: Sendable>: Sendable {
    private struct State {
        var events: [Event] = []
        var finished = false
        var abandoned = false
        var spaceWaiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    private let capacity: Int
    private let wake: OwnedFD

    init(capacity: Int, wake: OwnedFD) {
        self.capacity = capacity
        self.wake = wake
    }

    // MARK: Producer (a task)

    /// Queues `event`, then waits while the queue is full. False once the consumer abandoned
    /// the handoff or the task was cancelled: stop producing.
    func send(_ event: Event) async -> Bool {
        let queued = state.withLock { state -> Bool in
            guard !state.abandoned else { return false }
            state.events.append(event)
            return true
        }
        guard queued else { return false }
        swt_eventfd_signal(wake.raw)
        while true {
            let (full, abandoned) = state.withLock { ($0.events.count >= capacity, $0.abandoned) }
            if abandoned || Task.isCancelled { return false }
            if !full { return true }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        if state.abandoned || state.events.count < capacity || Task.isCancelled { return true }
                        state.spaceWaiter = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                self.resumeWaiter()
            }
        }
    }

    /// No more events.
    func finish() {
        state.withLock { $0.finished = true }
        swt_eventfd_signal(wake.raw)
    }

    private func resumeWaiter() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.spaceWaiter = nil }
            return state.spaceWaiter
        }
        waiter?.resume()
    }

    // MARK: Consumer (the connection thread)

    /// Every queued event, and whether the producer finished.
    func take() -> (events: [Event], finished: Bool) {
        let taken = state.withLock { state -> ([Event], Bool) in
            defer { state.events.removeAll() }
            return (state.events, state.finished)
        }
        resumeWaiter()
        return taken
    }

    /// The consumer is gone: the producer's next ``send(_:)`` returns false.
    func abandon() {
        state.withLock { state in
            state.abandoned = true
            state.events.removeAll()
        }
        resumeWaiter()
    }
}

/// Hands a connection thread's jobs to its task.
struct JobSubmitter: Sendable {
    let sink: AsyncStream<Job>.Continuation

    /// False when the connection's task no longer takes jobs (the server is stopping).
    func submit(_ job: Job) -> Bool {
        if case .terminated = sink.yield(job) { return false }
        return true
    }
}
