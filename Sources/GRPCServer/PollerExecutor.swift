#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs call handlers on the completion-queue thread while they do not suspend.
///
/// A task created with this executor as its preference starts on the poller thread, right
/// after the event that created it, so a handler that answers without suspending (Version,
/// Status, the in-memory List calls) costs no thread hop at all. Jobs enqueued from any other
/// thread — a handler resumed after awaiting real work — go to the global concurrent
/// executor, so slow work never holds the poller.
///
/// Only the poller thread touches `local`, hence `@unchecked Sendable`.
final class PollerExecutor: TaskExecutor, @unchecked Sendable {
    private var local: [UnownedJob] = []
    private var pollerThread: pthread_t?

    /// Marks the calling thread as the poller. Call once, from the poller thread.
    func bindToCurrentThread() {
        pollerThread = pthread_self()
    }

    private var onPollerThread: Bool {
        guard let pollerThread else { return false }
        return pthread_equal(pollerThread, pthread_self()) != 0
    }

    func enqueue(_ job: consuming ExecutorJob) {
        if onPollerThread {
            local.append(UnownedJob(job))
        } else {
            globalConcurrentExecutor.enqueue(job)
        }
    }

    /// Runs the jobs enqueued from the poller thread, including those they enqueue.
    func drain() {
        var index = 0
        while index < local.count {
            let job = local[index]
            index += 1
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
        local.removeAll(keepingCapacity: true)
    }
}
