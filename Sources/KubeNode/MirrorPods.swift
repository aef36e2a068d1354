import Foundation
import KubeClient
import Logging
import StaticPods
import Synchronization

/// Mirror pods: each static pod shows in the API server as a pod of the same name carrying
/// `kubernetes.io/config.mirror`, as the kubelet's mirror client makes them. A mirror whose hash
/// is stale (the manifest changed) or that was deleted is made again; mirrors of static pods that
/// are gone are deleted. Checked on every change and every 10 s.
final class MirrorPods: Sendable {
    let client: KubeClient
    let nodeName: String
    let logger: Logger
    /// Called with the static pod whose mirror was just made (its status must be posted again).
    let onCreated: @Sendable (Pod) -> Void
    private let desired = Mutex<[StaticPod]>([])
    private let wake = WakeSignal()

    init(client: KubeClient, nodeName: String, logger: Logger, onCreated: @escaping @Sendable (Pod) -> Void) {
        self.client = client
        self.nodeName = nodeName
        self.logger = logger
        self.onCreated = onCreated
    }

    func setStaticPods(_ pods: [StaticPod]) {
        desired.withLock { $0 = pods }
        wake.signal()
    }

    func run(nodeUID: @escaping @Sendable () -> String?) async {
        while !Task.isCancelled {
            await reconcile(nodeUID: nodeUID())
            await wake.wait(timeout: .seconds(10))
        }
    }

    func reconcile(nodeUID: String?) async {
        let pods = desired.withLock { $0 }
        var wanted = Set<String>()
        for staticPod in pods {
            let path = "/api/v1/namespaces/\(staticPod.namespace)/pods/\(staticPod.name)"
            wanted.insert("\(staticPod.namespace)/\(staticPod.name)")
            do {
                let existing = try await client.get(path, as: Pod.self)
                if isMirrorPod(existing, of: staticPod), existing.metadata.deletionTimestamp == nil { continue }
                logger.info("deleting outdated mirror pod", metadata: ["pod": "\(staticPod.namespace)/\(staticPod.name)"])
                try await client.delete(path, options: DeleteOptions(gracePeriodSeconds: 0, preconditions: .init(uid: existing.metadata.uid)))
            } catch let error where error.isNotFound {
            } catch {
                logger.warning("failed to check mirror pod", metadata: ["pod": "\(staticPod.fullName)", "error": "\(error)"])
                continue
            }
            do {
                _ = try await client.create("/api/v1/namespaces/\(staticPod.namespace)/pods", mirrorPod(of: staticPod, nodeUID: nodeUID))
                logger.info("created mirror pod", metadata: ["pod": "\(staticPod.namespace)/\(staticPod.name)"])
                onCreated(staticPod.pod)
            } catch let error where error.isAlreadyExists {
            } catch {
                logger.warning("failed to create mirror pod", metadata: ["pod": "\(staticPod.fullName)", "error": "\(error)"])
            }
        }
        // Mirrors of static pods that are gone.
        guard let list = try? await client.list("/api/v1/pods", fieldSelector: "spec.nodeName=\(nodeName)") else { return }
        for item in list["items"]?.arrayValue ?? [] {
            guard let pod = try? item.decode(as: Pod.self), isMirrorPod(pod) else { continue }
            let key = "\(pod.metadata.namespace ?? "default")/\(pod.metadata.name ?? "")"
            guard !wanted.contains(key) else { continue }
            logger.info("deleting mirror pod of a removed static pod", metadata: ["pod": "\(key)"])
            _ = try? await client.delete("/api/v1/namespaces/\(pod.metadata.namespace ?? "default")/pods/\(pod.metadata.name ?? "")",
                                     options: DeleteOptions(gracePeriodSeconds: 0, preconditions: .init(uid: pod.metadata.uid)))
        }
    }
}
