import Synchronization

/// Single-use tokens for pending streaming requests, as the kubelet's request cache keeps
/// them: random (16 bytes from the system RNG, base64url without padding), consumed by the
/// first lookup, gone after the TTL. The oldest entries are evicted past `capacity`.
final class TokenCache: Sendable {
    private struct Entry {
        var request: StreamRequest
        var expiry: ContinuousClock.Instant
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Insertion order, for eviction.
        var order: [String] = []
    }

    private let state = Mutex(State())
    private let ttl: Duration
    private let capacity: Int

    init(ttl: Duration, capacity: Int = 1000) {
        self.ttl = ttl
        self.capacity = capacity
    }

    /// Stores `request` under a new token and returns the token.
    func insert(_ request: StreamRequest) -> String {
        let token = Self.newToken()
        let now = ContinuousClock.now
        state.withLock { state in
            state.entries[token] = Entry(request: request, expiry: now + ttl)
            state.order.append(token)
            // Expired entries go first, then the oldest beyond capacity.
            var dropped = 0
            while dropped < state.order.count {
                let candidate = state.order[dropped]
                guard let entry = state.entries[candidate] else { dropped += 1; continue }
                if entry.expiry <= now || state.entries.count > capacity {
                    state.entries[candidate] = nil
                    dropped += 1
                } else {
                    break
                }
            }
            if dropped > 0 { state.order.removeFirst(dropped) }
        }
        return token
    }

    /// The request behind `token`, removed from the cache; nil when unknown, used or expired.
    func consume(_ token: String) -> StreamRequest? {
        let now = ContinuousClock.now
        return state.withLock { state in
            guard let entry = state.entries.removeValue(forKey: token) else { return nil }
            return entry.expiry > now ? entry.request : nil
        }
    }

    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        for _ in 0..<2 {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
        }
        return Base64.encode(bytes, urlSafe: true, padded: false)
    }
}
