import Synchronization

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
/// Handlers must therefore not block the thread before their first suspension (no blocking
/// syscalls, no waits on another call's progress): that stalls every call. Work that may
/// block belongs behind an `await` on another executor.
///
/// Only the poller thread touches `local`, hence `@unchecked Sendable`.
final class PollerExecutor: TaskExecutor, @unchecked Sendable {
    private var local: [UnownedJob] = []
    private let pollerThread = Mutex<pthread_t?>(nil)

    /// Marks the calling thread as the poller. Call once, from the poller thread.
    func bindToCurrentThread() {
        pollerThread.withLock { $0 = pthread_self() }
    }

    /// Forgets the poller thread (it is about to exit; its id may be reused).
    func unbind() {
        pollerThread.withLock { $0 = nil }
    }

    private var onPollerThread: Bool {
        pollerThread.withLock { thread in
            guard let thread else { return false }
            return pthread_equal(thread, pthread_self()) != 0
        }
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
