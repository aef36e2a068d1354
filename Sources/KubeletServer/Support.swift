import CSwiftletTLS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What this module holds open, for the tests' leak checks.
enum ResourceCounters {
    /// Descriptors wrapped in an ``OwnedFD`` and not yet closed.
    static let descriptors = Atomic<Int>(0)
    /// TLS sessions not yet freed.
    static let tlsSessions = Atomic<Int>(0)
}

/// A file descriptor closed exactly once: by ``close()`` or when the last reference goes.
final class OwnedFD: Sendable {
    private let storage: Mutex<Int32>

    init(_ fd: Int32) {
        storage = Mutex(fd)
        if fd >= 0 { ResourceCounters.descriptors.add(1, ordering: .relaxed) }
    }

    /// The descriptor, or -1 once closed.
    var raw: Int32 { storage.withLock { $0 } }

    func close() {
        let fd = storage.withLock { fd in
            defer { fd = -1 }
            return fd
        }
        if fd >= 0 {
            _ = Glibc.close(fd)
            ResourceCounters.descriptors.subtract(1, ordering: .relaxed)
        }
    }

    deinit { close() }
}

/// Runs blocking work on a thread of its own (never a thread of the cooperative pool); the
/// awaiting task owns the thread and resumes when its body returned.
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
    static func run(name: String, _ body: @escaping @Sendable () -> Void) async throws(KubeletServerError) {
        let started: Int32 = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            let job = Job(name: name) {
                body()
                continuation.resume(returning: 0)
            }
            let context = Unmanaged.passRetained(job).toOpaque()
            var thread = pthread_t()
            let result = pthread_create(&thread, nil, { context in
                let job = Unmanaged<Job>.fromOpaque(context!).takeRetainedValue()
                swt_name_thread(job.name)
                swt_block_sigpipe()
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
        if started != 0 { throw KubeletServerError(.thread, context: name, errno: started) }
    }
}

extension Duration {
    /// Whole milliseconds, clamped to what poll(2) takes.
    var pollMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(0, ms))
    }
}

/// poll(2) on `fds` until `deadline` (nil: no limit), retrying EINTR. Returns the count
/// ready, 0 at the deadline, -1 with errno on failure.
func pollUntil(_ fds: inout [pollfd], deadline: ContinuousClock.Instant?) -> Int32 {
    while true {
        var timeout: Int32 = -1
        if let deadline {
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero { return 0 }
            timeout = max(1, left.pollMilliseconds)
        }
        let ready = poll(&fds, nfds_t(fds.count), timeout)
        if ready >= 0 || errno != EINTR { return ready }
    }
}

func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

/// poll(2)'s POLLRDHUP (Linux; glibc declares it only under _GNU_SOURCE).
let pollReadHangup: Int16 = 0x2000

/// A NUL-terminated C buffer as text.
func cText(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
