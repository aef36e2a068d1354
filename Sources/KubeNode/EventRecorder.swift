import Foundation
import KubeClient
import Logging
import Synchronization

/// The kubelet's events (`kubectl describe` shows them): Created, Started, Killing, Unhealthy,
/// BackOff, Failed, FailedMount, … with source `kubelet`/<node>. Recording never blocks the
/// caller; a queue is posted in order. Repeats of the same event (object, reason, message)
/// within 10 minutes increment its count and last timestamp instead of making a new one, as
/// client-go's event correlator does.
final class EventRecorder: Sendable {
    struct Pending: Sendable {
        var object: ObjectReference
        var type: String
        var reason: String
        var message: String
        var time: Date
    }

    let client: KubeClient?
    let nodeName: String
    let logger: Logger
    private let queue: AsyncStream<Pending>
    private let sink: AsyncStream<Pending>.Continuation
    private let seen = Mutex<[String: (name: String, namespace: String, count: Int32, first: String, at: Date)]>([:])

    init(client: KubeClient?, nodeName: String, logger: Logger) {
        self.client = client
        self.nodeName = nodeName
        self.logger = logger
        (queue, sink) = AsyncStream.makeStream(of: Pending.self, bufferingPolicy: .bufferingNewest(1000))
    }

    /// Records an event about a pod (or one of its containers: `container` names it).
    func pod(_ pod: Pod, container: String? = nil, isInit: Bool = false, _ type: String = "Normal", reason: String, _ message: String) {
        guard client != nil else { return }
        let fieldPath = container.map { isInit ? "spec.initContainers{\($0)}" : "spec.containers{\($0)}" }
        let reference = ObjectReference(kind: "Pod", namespace: pod.metadata.namespace ?? "default", name: pod.metadata.name, uid: pod.uid,
                                        apiVersion: "v1", fieldPath: fieldPath)
        sink.yield(Pending(object: reference, type: type, reason: reason, message: message, time: Date()))
    }

    /// Records an event about the node.
    func node(_ type: String = "Normal", reason: String, _ message: String) {
        guard client != nil else { return }
        // The kubelet's node reference: the node's name as its UID.
        let reference = ObjectReference(kind: "Node", name: nodeName, uid: nodeName)
        sink.yield(Pending(object: reference, type: type, reason: reason, message: message, time: Date()))
    }

    func shutdown() { sink.finish() }

    /// Posts until cancelled (or shut down).
    func run() async {
        guard let client else { return }
        for await event in queue {
            await post(event, client: client)
        }
    }

    private func post(_ event: Pending, client: KubeClient) async {
        let namespace = event.object.namespace ?? "default"
        let key = "\(event.object.uid ?? "")|\(event.object.fieldPath ?? "")|\(event.reason)|\(event.message)"
        let now = KubeTime.time(event.time)
        let previous = seen.withLock { seen -> (name: String, namespace: String, count: Int32, first: String, at: Date)? in
            if seen.count > 4096 { seen.removeAll() }
            guard let entry = seen[key], event.time.timeIntervalSince(entry.at) < 600 else { return nil }
            return entry
        }
        if let previous {
            let patch: JSONValue = ["count": .int(Int64(previous.count + 1)), "lastTimestamp": .string(now)]
            if (try? await client.patch("/api/v1/namespaces/\(previous.namespace)/events/\(previous.name)", patch, type: .strategicMerge)) != nil {
                seen.withLock { $0[key] = (previous.name, previous.namespace, previous.count + 1, previous.first, event.time) }
                return
            }
        }
        let name = "\(event.object.name ?? nodeName).\(String(UInt64(event.time.timeIntervalSince1970 * 1e9), radix: 16))"
        let record = Event(metadata: ObjectMeta(name: name, namespace: namespace), involvedObject: event.object, reason: event.reason,
                           message: event.message, source: EventSource(component: "kubelet", host: nodeName), firstTimestamp: now,
                           lastTimestamp: now, count: 1, type: event.type, reportingComponent: "kubelet", reportingInstance: nodeName)
        do {
            _ = try await client.create("/api/v1/namespaces/\(namespace)/events", record)
            seen.withLock { $0[key] = (name, namespace, 1, now, event.time) }
        } catch {
            logger.debug("event not recorded", metadata: ["reason": "\(event.reason)", "error": "\(error)"])
        }
    }
}
