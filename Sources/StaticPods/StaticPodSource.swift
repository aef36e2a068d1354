import Foundation
import KubeClient
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The kubelet's file source (`pkg/kubelet/config/file*.go`): the static pods of a manifest
/// directory, watched with inotify (create, write, delete, rename; the directory may appear,
/// vanish or be replaced later) and rescanned in full every `rescanInterval` (the kubelet's
/// `fileCheckFrequency`, 20 s), delivered as complete sets.
///
/// ```swift
/// for await manifests in StaticPodSource(path: "/etc/kubernetes/manifests", nodeName: node).updates() {
///     reconcile(manifests.pods)      // the complete set: diff by UID
///     manifests.errors.forEach(log)  // the files that gave no pod
/// }
/// ```
public struct StaticPodSource: Sendable {
    /// The manifest directory (or a single manifest file).
    public var path: String
    public var nodeName: String
    public var rescanInterval: Duration

    public init(path: String, nodeName: String, rescanInterval: Duration = .seconds(20)) {
        self.path = path
        self.nodeName = nodeName
        self.rescanInterval = rescanInterval
    }

    /// The current set at once (empty if the directory does not exist yet), then the set again
    /// each time it changes (pods or errors). The watch lives in the iterating task: it starts with
    /// the first `next()` and ends, its thread joined and its descriptors closed, when the task is
    /// cancelled or the iterator is dropped.
    public func updates() -> StaticPodUpdates { StaticPodUpdates(source: self) }
}

/// The sequence of complete static pod sets from a ``StaticPodSource``.
public struct StaticPodUpdates: AsyncSequence, Sendable {
    public typealias Element = StaticPodManifests
    public typealias Failure = Never

    let source: StaticPodSource

    public func makeAsyncIterator() -> Iterator { Iterator(source: source) }

    public final class Iterator: AsyncIteratorProtocol {
        public typealias Element = StaticPodManifests
        public typealias Failure = Never

        private let source: StaticPodSource
        private var watch: DirectoryWatch?
        private var wakes: AsyncStream<DirectoryWatch.Wake>.Iterator?
        private var last: StaticPodManifests?
        private var firstSeen: [String: String] = [:]
        private var finished = false

        init(source: StaticPodSource) { self.source = source }

        deinit { watch?.stop() }

        public func next() async -> StaticPodManifests? {
            if finished { return nil }
            if Task.isCancelled { return finish() }
            guard last != nil else {
                // Watch first, then read: a change in between is not lost.
                let (stream, continuation) = AsyncStream.makeStream(of: DirectoryWatch.Wake.self, bufferingPolicy: .bufferingNewest(1))
                watch = DirectoryWatch(path: source.path, rescanInterval: source.rescanInterval, continuation: continuation)
                wakes = stream.makeAsyncIterator()
                let snapshot = scan()
                last = snapshot
                return snapshot
            }
            while true {
                guard var iterator = wakes else { return finish() }
                let wake = await iterator.next()
                wakes = iterator
                guard let wake, !Task.isCancelled else { return finish() }
                if wake == .changed {
                    // Let a burst of writes (an editor, a copy) settle before reading.
                    try? await Task.sleep(for: .milliseconds(50))
                    if Task.isCancelled { return finish() }
                }
                let snapshot = scan()
                if snapshot != last {
                    last = snapshot
                    return snapshot
                }
            }
        }

        private func finish() -> StaticPodManifests? {
            finished = true
            watch?.stop()
            watch = nil
            wakes = nil
            return nil
        }

        private func scan() -> StaticPodManifests {
            var manifests: StaticPodManifests
            do {
                manifests = try StaticPodManifests.load(directory: source.path, nodeName: source.nodeName)
            } catch {
                // The directory could not be read: keep the pods (as the kubelet keeps its store), report why.
                manifests = StaticPodManifests(pods: last?.pods ?? [], errors: [error])
                return manifests
            }
            // `config.seen` is when this node first saw the pod (this UID), not when it last read the file.
            for index in manifests.pods.indices {
                let uid = manifests.pods[index].uid
                if let seen = firstSeen[uid] {
                    manifests.pods[index].pod.metadata.annotations?[StaticPodAnnotation.configSeen] = seen
                } else {
                    firstSeen[uid] = manifests.pods[index].pod.metadata.annotations?[StaticPodAnnotation.configSeen]
                }
            }
            let current = Set(manifests.pods.map(\.uid))
            firstSeen = firstSeen.filter { current.contains($0.key) }
            return manifests
        }
    }
}

/// inotify on a path and its parent, read by a thread of its own that blocks in poll(2) on the
/// inotify descriptor and a pipe (the stop signal), with the rescan interval as the timeout.
/// Without inotify (no instances left) it still ticks.
final class DirectoryWatch: Sendable {
    enum Wake: Sendable, Equatable {
        /// Something in or about the directory changed.
        case changed
        /// The rescan interval passed (or a retry while the directory is missing).
        case tick
    }

    private struct State {
        var stopping = false
        var closed = false
    }

    /// The stop signal: a pipe the thread polls (its read end) and `stop()` writes to.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let thread: pthread_t?
    private let state = Mutex(State())

    init(path: String, rescanInterval: Duration, continuation: AsyncStream<Wake>.Continuation) {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for end in ends {
                _ = fcntl(end, F_SETFD, FD_CLOEXEC)
                _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            }
        }
        wakeRead = ends[0]
        wakeWrite = ends[1]
        let loop = WatchLoop(path: path, rescanInterval: rescanInterval, wakeFD: wakeRead, continuation: continuation)
        let context = Unmanaged.passRetained(loop).toOpaque()
        var thread = pthread_t()
        let result = wakeRead < 0 ? EMFILE : pthread_create(&thread, nil, { context in
            let loop = Unmanaged<WatchLoop>.fromOpaque(context!).takeRetainedValue()
            loop.run()
            return nil
        }, context)
        if result == 0 {
            self.thread = thread
        } else {
            Unmanaged<WatchLoop>.fromOpaque(context).release()
            loop.closeInotify()
            continuation.finish()
            self.thread = nil
        }
        // A cancelled consumer terminates the stream: stop the thread now (the iterator joins it).
        continuation.onTermination = { [weak self] _ in self?.signal() }
    }

    deinit { stop() }

    /// Wakes the thread to end (idempotent, safe from any thread, a no-op once stopped).
    private func signal() {
        state.withLock { state in
            guard !state.closed, wakeWrite >= 0 else { return }
            var one: UInt8 = 1
            _ = write(wakeWrite, &one, 1)
        }
    }

    /// Ends the thread and waits for it: its inotify descriptor is closed when this returns.
    func stop() {
        let first = state.withLock { state in
            if state.stopping { return false }
            state.stopping = true
            return true
        }
        guard first else { return }
        signal()
        if let thread { pthread_join(thread, nil) }
        state.withLock { state in
            if wakeRead >= 0 { close(wakeRead) }
            if wakeWrite >= 0 { close(wakeWrite) }
            state.closed = true
        }
    }
}

/// The watching thread's loop; all of its mutable state is local to `run()`.
private final class WatchLoop: Sendable {
    let path: String
    let parent: String
    let base: String
    let rescanMilliseconds: Int32
    let wakeFD: Int32
    let inotifyFD: Int32
    /// The watches added in `init`, on the consumer's thread before its first scan (-1: none).
    let initialPathWatch: Int32
    let initialParentWatch: Int32
    let continuation: AsyncStream<DirectoryWatch.Wake>.Continuation

    private static let pathMask = UInt32(IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO
                                         | IN_DELETE_SELF | IN_MOVE_SELF)
    private static let parentMask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR)

    init(path: String, rescanInterval: Duration, wakeFD: Int32, continuation: AsyncStream<DirectoryWatch.Wake>.Continuation) {
        var trimmed = path
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.path = trimmed
        let slash = trimmed.lastIndex(of: "/")
        if let slash {
            parent = slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
            base = String(trimmed[trimmed.index(after: slash)...])
        } else {
            parent = "."
            base = trimmed
        }
        let (seconds, attoseconds) = rescanInterval.components
        rescanMilliseconds = Int32(clamping: max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000))
        self.wakeFD = wakeFD
        inotifyFD = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        // Watched here, not on the thread: the consumer scans as soon as this returns, and a
        // change between that scan and a watch the thread had yet to add would be seen only
        // at the next rescan.
        initialParentWatch = inotifyFD >= 0 ? inotify_add_watch(inotifyFD, parent, Self.parentMask) : -1
        initialPathWatch = inotifyFD >= 0 ? inotify_add_watch(inotifyFD, trimmed, Self.pathMask) : -1
        self.continuation = continuation
    }

    func closeInotify() {
        if inotifyFD >= 0 { close(inotifyFD) }
    }

    /// "staticpod-watch" in ps, top and debuggers (and for the tests to count).
    private static func nameThisThread() {
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = "staticpod-watch".withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    func run() {
        defer {
            closeInotify()
            continuation.finish()
        }
        Self.nameThisThread()
        var pathWatch = initialPathWatch
        var parentWatch = initialParentWatch
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if inotifyFD >= 0 {
                if parentWatch < 0 { parentWatch = inotify_add_watch(inotifyFD, parent, Self.parentMask) }
                if pathWatch < 0 {
                    pathWatch = inotify_add_watch(inotifyFD, path, Self.pathMask)
                    // It appeared (or came back) since the last look: read it. (The first look is
                    // the consumer's own, after the watches `init` added.)
                    if pathWatch >= 0 { continuation.yield(.changed) }
                }
            }
            // While the path is not watched, look again every second (as the kubelet retries).
            let timeout = pathWatch >= 0 ? rescanMilliseconds : min(rescanMilliseconds, 1000)
            var descriptors = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&descriptors, inotifyFD >= 0 ? 2 : 1, timeout)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if descriptors[0].revents != 0 { return }
            if ready == 0 {
                continuation.yield(.tick)
                continue
            }
            var relevant = false
            while true {
                let count = buffer.withUnsafeMutableBytes { read(inotifyFD, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                var offset = 0
                while offset + 16 <= count {
                    let (watch, mask, length) = buffer.withUnsafeBytes { raw in
                        (raw.loadUnaligned(fromByteOffset: offset, as: Int32.self),
                         raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self),
                         Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)))
                    }
                    let nameBytes = buffer[(offset + 16)..<min(count, offset + 16 + length)].prefix { $0 != 0 }
                    offset += 16 + length
                    if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                        relevant = true
                        continue
                    }
                    if watch == pathWatch {
                        relevant = true
                        if mask & UInt32(IN_IGNORED) != 0 {
                            pathWatch = -1
                        } else if mask & UInt32(IN_MOVE_SELF) != 0 {
                            // The watch follows the moved directory; watch the path anew.
                            inotify_rm_watch(inotifyFD, pathWatch)
                            pathWatch = -1
                        }
                    } else if watch == parentWatch {
                        if mask & UInt32(IN_IGNORED) != 0 {
                            parentWatch = -1
                        } else if String(decoding: nameBytes, as: UTF8.self) == base {
                            relevant = true
                            // Replaced (a rename over it): the old watch is on the old inode.
                            if mask & UInt32(IN_MOVED_TO | IN_CREATE) != 0, pathWatch >= 0 {
                                inotify_rm_watch(inotifyFD, pathWatch)
                                pathWatch = -1
                            }
                        }
                    }
                }
            }
            if relevant { continuation.yield(.changed) }
        }
    }
}
