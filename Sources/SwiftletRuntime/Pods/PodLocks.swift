import CRI
import Synchronization

/// Serializes the operations that change one pod: its sandbox's stop and removal and its
/// containers' create, start, resource updates and removal. A kubelet retry racing the call
/// it retries, or a removal racing a start, then sees the other's result instead of half of
/// it. Stopping a container is not serialized: the kubelet stops a pod's containers in
/// parallel, each with its own grace period.
final class PodLocks: Sendable {
    private struct State {
        var held: Set<String> = []
        var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    }
    private let state = Mutex(State())

    /// Runs `body` holding pod `id`'s lock (waiting, in order, for earlier holders).
    func withLock<T>(_ id: String, _ body: () async throws(CRIError) -> T) async throws(CRIError) -> T {
        await acquire(id)
        defer { release(id) }
        return try await body()
    }

    private func acquire(_ id: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.held.insert(id).inserted { return true }
                state.waiters[id, default: []].append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    private func release(_ id: String) {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard var waiting = state.waiters[id], !waiting.isEmpty else {
                state.held.remove(id)
                return nil
            }
            let next = waiting.removeFirst()
            state.waiters[id] = waiting.isEmpty ? nil : waiting
            return next  // the lock passes to it, still held
        }
        next?.resume()
    }
}
