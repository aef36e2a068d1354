import CRI
import Synchronization

/// Fans container lifecycle events out to every `GetContainerEvents` stream.
///
/// Each subscriber gets its own buffer of the newest ``bufferSize`` events, so a slow
/// client loses the oldest events rather than holding the publisher (the kubelet's evented
/// PLEG relists when it sees a gap).
public final class ContainerEventBus: Sendable {
    /// Events kept per subscriber that has not read them yet.
    public static let bufferSize = 1024

    private struct State {
        var nextID: UInt64 = 0
        var subscribers: [UInt64: AsyncStream<ContainerEventResponse>.Continuation] = [:]
    }
    private let state = Mutex(State())

    public init() {}

    /// A new stream of the events published from now on; it ends when the consuming task
    /// is cancelled.
    public func subscribe() -> AsyncStream<ContainerEventResponse> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: ContainerEventResponse.self, bufferingPolicy: .bufferingNewest(Self.bufferSize))
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            state.subscribers[state.nextID] = continuation
            return state.nextID
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Sends `event` to every subscriber.
    public func publish(_ event: ContainerEventResponse) {
        let continuations = state.withLock { Array($0.subscribers.values) }
        for continuation in continuations {
            continuation.yield(event)
        }
    }

    /// How many streams are open.
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }
}
