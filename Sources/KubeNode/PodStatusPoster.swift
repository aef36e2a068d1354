import Foundation
import KubeClient
import Logging
import Synchronization

/// Reports pod statuses to the API server, as the kubelet's status manager: a status is patched
/// to `pods/<name>/status` only when it changed (a JSON merge patch of the whole status, so
/// lists are replaced, not merged); a static pod's status goes to its mirror pod; a pod whose
/// deletion has finished on the node is deleted from the API (grace 0, UID precondition).
/// Standalone (no client), statuses are only kept for the kubelet API.
final class PodStatusPoster: Sendable {
    let client: KubeClient?
    let logger: Logger
    private let posted = Mutex<[String: PodStatus]>([:])

    init(client: KubeClient?, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    func path(_ pod: Pod) -> String { "/api/v1/namespaces/\(pod.metadata.namespace ?? "default")/pods/\(pod.metadata.name ?? "")" }

    /// Posts when the status differs from what was last posted (times of probes excluded).
    func post(_ pod: Pod, status: PodStatus, source: PodSource) async {
        guard let client else { return }
        let key = "\(pod.metadata.namespace ?? "")/\(pod.metadata.name ?? "")/\(pod.uid)"
        if posted.withLock({ $0[key] }) == status { return }
        struct StatusPatch: Encodable { var status: PodStatus }
        do {
            _ = try await client.patch(path(pod) + "/status", StatusPatch(status: status), type: .merge)
            posted.withLock { $0[key] = status }
        } catch let error where error.isNotFound {
            // A static pod whose mirror pod is not there yet, or a pod already gone.
            logger.debug("pod not found for a status update", metadata: ["pod": "\(pod.fullName)", "source": "\(source.rawValue)"])
        } catch {
            logger.warning("failed to update pod status", metadata: ["pod": "\(pod.fullName)", "error": "\(error)"])
        }
    }

    /// Deletes a pod whose containers are all stopped after its deletion was requested.
    func deleteFinished(_ pod: Pod) async {
        guard let client else { return }
        do {
            try await client.delete(path(pod), options: DeleteOptions(gracePeriodSeconds: 0, preconditions: .init(uid: pod.uid)))
            logger.info("pod deleted from the API server", metadata: ["pod": "\(pod.fullName)"])
        } catch let error where error.isNotFound || error.isConflict {
            // Gone already, or replaced by a new pod of the same name.
        } catch {
            logger.warning("failed to delete pod", metadata: ["pod": "\(pod.fullName)", "error": "\(error)"])
        }
    }

    func forget(_ pod: Pod) {
        let key = "\(pod.metadata.namespace ?? "")/\(pod.metadata.name ?? "")/\(pod.uid)"
        _ = posted.withLock { $0.removeValue(forKey: key) }
    }
}
