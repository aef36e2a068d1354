import Foundation
import KubeClient
import Logging

/// The pods bound to this node in the API server: a list with `spec.nodeName=<node>`, then a
/// watch from its resourceVersion (bookmarks on), relisting after 410 Gone or an error with
/// backoff (the kubelet's reflector). Mirror pods are left out: they describe static pods.
struct APIPodSource: Sendable {
    let client: KubeClient
    let nodeName: String
    let logger: Logger

    /// Calls `deliver` with the complete set of the node's pods after each change, until cancelled.
    func run(deliver: @Sendable ([Pod]) -> Void) async {
        var backoff = Duration.milliseconds(500)
        while !Task.isCancelled {
            do {
                let list = try await client.list("/api/v1/pods", fieldSelector: "spec.nodeName=\(nodeName)")
                var pods: [String: Pod] = [:]
                for item in list["items"]?.arrayValue ?? [] {
                    if let pod = try? item.decode(as: Pod.self), !Self.isMirror(pod) { pods[pod.uid] = pod }
                }
                deliver(Array(pods.values))
                var resourceVersion = list["metadata"]?["resourceVersion"]?.stringValue
                backoff = .milliseconds(500)
                for try await event in client.watch("/api/v1/pods", resourceVersion: resourceVersion,
                                                    fieldSelector: "spec.nodeName=\(nodeName)", allowWatchBookmarks: true,
                                                    timeoutSeconds: 300 + Int.random(in: 0..<300)) {
                    if let version = event.resourceVersion { resourceVersion = version }
                    switch event.type {
                    case .added, .modified:
                        if let pod = try? event.decode(as: Pod.self), !Self.isMirror(pod) {
                            pods[pod.uid] = pod
                            deliver(Array(pods.values))
                        }
                    case .deleted:
                        if let pod = try? event.decode(as: Pod.self), pods.removeValue(forKey: pod.uid) != nil {
                            deliver(Array(pods.values))
                        }
                    case .error:
                        throw KubeAPIError(.status, httpStatus: Int(event.object["code"]?.intValue ?? 500), detail: "watch error event")
                    default:
                        break
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("pod watch ended; relisting", metadata: ["error": "\(error)", "retryIn": "\(backoff)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(30))
            }
        }
    }

    static func isMirror(_ pod: Pod) -> Bool { pod.metadata.annotations?["kubernetes.io/config.mirror"] != nil }
}
