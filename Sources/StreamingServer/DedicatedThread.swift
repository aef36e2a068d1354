import CSwiftletStreaming

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs blocking work on a thread of its own, so that it never occupies a thread of the
/// Swift cooperative pool; the awaiting task owns the thread and resumes when it ends.
enum DedicatedThread {
    private final class Job {
        let name: String
        let body: () -> Void
        init(name: String, body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Runs `body` on a new thread (SIGPIPE blocked in it) and returns when it returned.
    static func run(name: String, _ body: @escaping @Sendable () -> Void) async throws(StreamingServerError) {
        let started: Int32 = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            let job = Job(name: name) {
                body()
                continuation.resume(returning: 0)
            }
            let context = Unmanaged.passRetained(job).toOpaque()
            var thread = pthread_t()
            let result = pthread_create(&thread, nil, { context in
                let job = Unmanaged<Job>.fromOpaque(context!).takeRetainedValue()
                sws_name_thread(job.name)
                sws_block_sigpipe()
                job.body()
                return nil
            }, context)
            if result == 0 {
                pthread_detach(thread)
            } else {
                Unmanaged<Job>.fromOpaque(context).release()
                continuation.resume(returning: result)
            }
        }
        if started != 0 { throw StreamingServerError(.thread, context: name, errno: started) }
    }
}
