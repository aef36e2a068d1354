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
    /// The subscribers, in a box the streams' termination handlers hold strongly (each handler
    /// runs once, when its stream ends, and drops the box).
    private final class Registry: Sendable {
        let state = Mutex(State())
    }
    private let registry = Registry()

    public init() {}

    /// A new stream of the events published from now on; it ends when the consuming task
    /// is cancelled.
    public func subscribe() -> AsyncStream<ContainerEventResponse> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: ContainerEventResponse.self, bufferingPolicy: .bufferingNewest(Self.bufferSize))
        let id = registry.state.withLock { state in
            defer { state.nextID += 1 }
            state.subscribers[state.nextID] = continuation
            return state.nextID
        }
        let registry = self.registry
        continuation.onTermination = { _ in
            _ = registry.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Sends `event` to every subscriber.
    public func publish(_ event: ContainerEventResponse) {
        let continuations = registry.state.withLock { Array($0.subscribers.values) }
        for continuation in continuations {
            continuation.yield(event)
        }
    }

    /// How many streams are open.
    public var subscriberCount: Int { registry.state.withLock { $0.subscribers.count } }
}
