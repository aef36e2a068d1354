/// Capped exponential backoff with jitter, as client-go's `wait.Backoff`.
public struct Backoff: Sendable, Hashable {
    /// The first delay.
    public var initial: Duration
    /// Each delay is the previous one times this.
    public var factor: Double
    /// Delays never exceed this.
    public var cap: Duration
    /// Each delay is stretched by up to this fraction, at random.
    public var jitter: Double
    /// How many attempts in all (the first included).
    public var attempts: Int

    public init(initial: Duration, factor: Double = 2, cap: Duration = .seconds(30), jitter: Double = 0.1, attempts: Int) {
        self.initial = initial
        self.factor = factor
        self.cap = cap
        self.jitter = jitter
        self.attempts = attempts
    }

    /// client-go's `retry.DefaultRetry` for conflicts: 5 attempts 10 ms apart.
    public static let conflict = Backoff(initial: .milliseconds(10), factor: 1, cap: .milliseconds(10), attempts: 5)
    /// For transport errors and transient server errors: 200 ms doubling to 10 s, 6 attempts.
    public static let transient = Backoff(initial: .milliseconds(200), factor: 2, cap: .seconds(10), attempts: 6)

    /// The delay after failed attempt `attempt` (0-based), jitter included.
    public func delay(afterAttempt attempt: Int) -> Duration {
        let base = Double(initial.components.seconds) + Double(initial.components.attoseconds) / 1e18
        let capSeconds = Double(cap.components.seconds) + Double(cap.components.attoseconds) / 1e18
        var seconds = min(base * pow(factor, Double(attempt)), capSeconds)
        if jitter > 0 { seconds *= 1 + Double.random(in: 0...jitter) }
        return .nanoseconds(Int64(seconds * 1e9))
    }

    private func pow(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        var remaining = Int(exponent)
        while remaining > 0 && result < 1e12 { result *= base; remaining -= 1 }
        return result
    }
}

/// Runs `body` again after a 409 Conflict (a stale resourceVersion), up to `backoff.attempts`
/// times: put the get-modify-update inside, so each attempt reads the current object. Other
/// errors, and the last conflict, are thrown.
public func retryOnConflict<T>(backoff: Backoff = .conflict,
                               _ body: () async throws(KubeAPIError) -> T) async throws(KubeAPIError) -> T {
    try await retrying(backoff: backoff, when: { $0.isConflict }, body)
}

/// Runs `body` again after transport failures and transient server answers (429, 500, 502,
/// 503, 504), honouring a Status's `retryAfterSeconds` (capped by `backoff.cap`).
public func retryOnTransientErrors<T>(backoff: Backoff = .transient,
                                      _ body: () async throws(KubeAPIError) -> T) async throws(KubeAPIError) -> T {
    try await retrying(backoff: backoff, when: { $0.isTransient }, body)
}

/// Runs `body` until it succeeds, throws an error `when` rejects, or uses up `backoff.attempts`;
/// sleeps between attempts (cancellation ends the wait with a `.cancelled` error).
public func retrying<T>(backoff: Backoff, when shouldRetry: (KubeAPIError) -> Bool,
                        _ body: () async throws(KubeAPIError) -> T) async throws(KubeAPIError) -> T {
    var attempt = 0
    while true {
        do {
            return try await body()
        } catch {
            attempt += 1
            guard attempt < max(backoff.attempts, 1), shouldRetry(error) else { throw error }
            var delay = backoff.delay(afterAttempt: attempt - 1)
            if let after = error.retryAfterSeconds, after > 0 { delay = min(max(delay, .seconds(after)), backoff.cap) }
            do {
                try await Task.sleep(for: delay)
            } catch {
                throw KubeAPIError(.cancelled, detail: "cancelled while backing off")
            }
        }
    }
}

extension KubeClient {
    /// Get-modify-update with optimistic concurrency: reads `path` as `T`, lets `modify` change
    /// it, PUTs it (with the resourceVersion read), and on 409 Conflict starts again from a fresh
    /// read. Returns the stored object. With a typed model, fields the model lacks are dropped:
    /// use ``JSONValue`` for objects the model does not cover completely.
    public func update<T: Codable & Sendable>(_ path: String, as type: T.Type, backoff: Backoff = .conflict,
                                              modify: (inout T) throws(KubeAPIError) -> Void) async throws(KubeAPIError) -> T {
        try await retryOnConflict(backoff: backoff) { () async throws(KubeAPIError) -> T in
            var object = try await get(path, as: T.self)
            try modify(&object)
            return try await update(path, object, as: T.self)
        }
    }
}
