import Foundation
import KubeClient

/// The API objects pods refer to (config maps, secrets, service account tokens). Standalone,
/// there are none: a pod that needs one waits with the kubelet's reason.
protocol ClusterObjects: Sendable {
    func configMap(namespace: String, name: String) async throws(NodeError) -> ConfigMap?
    func secret(namespace: String, name: String) async throws(NodeError) -> Secret?
    /// A token for the pod's service account, bound to the pod (TokenRequest).
    func serviceAccountToken(pod: Pod, audience: String?, expirationSeconds: Int64) async throws(NodeError) -> String
}

/// No API server: nothing to look up.
struct NoClusterObjects: ClusterObjects {
    func configMap(namespace: String, name: String) async throws(NodeError) -> ConfigMap? { nil }
    func secret(namespace: String, name: String) async throws(NodeError) -> Secret? { nil }
    func serviceAccountToken(pod: Pod, audience: String?, expirationSeconds: Int64) async throws(NodeError) -> String {
        throw NodeError(.podSpec, detail: "service account tokens need an API server (the node runs standalone)")
    }
}

/// Reads them from the API server (the node's credentials; NodeRestriction lets a node read
/// what its pods refer to).
struct APIClusterObjects: ClusterObjects {
    let client: KubeClient

    func configMap(namespace: String, name: String) async throws(NodeError) -> ConfigMap? {
        do {
            return try await client.get("/api/v1/namespaces/\(namespace)/configmaps/\(name)", as: ConfigMap.self)
        } catch let error where error.isNotFound {
            return nil
        } catch {
            throw NodeError(.api, detail: "reading configmap \(namespace)/\(name)", apiError: error)
        }
    }

    func secret(namespace: String, name: String) async throws(NodeError) -> Secret? {
        do {
            return try await client.get("/api/v1/namespaces/\(namespace)/secrets/\(name)", as: Secret.self)
        } catch let error where error.isNotFound {
            return nil
        } catch {
            throw NodeError(.api, detail: "reading secret \(namespace)/\(name)", apiError: error)
        }
    }

    func serviceAccountToken(pod: Pod, audience: String?, expirationSeconds: Int64) async throws(NodeError) -> String {
        let namespace = pod.metadata.namespace ?? "default"
        let account = pod.spec?.serviceAccountName ?? pod.spec?.serviceAccount ?? "default"
        let request = TokenRequest(spec: TokenRequestSpec(
            audiences: audience.map { [$0] } ?? [], expirationSeconds: expirationSeconds,
            boundObjectRef: BoundObjectReference(kind: "Pod", apiVersion: "v1", name: pod.metadata.name, uid: pod.metadata.uid)))
        do {
            let answer = try await client.create("/api/v1/namespaces/\(namespace)/serviceaccounts/\(account)/token", request,
                                                 as: TokenRequest.self)
            guard let token = answer.status?.token else { throw NodeError(.api, detail: "TokenRequest answered without a token") }
            return token
        } catch let error as NodeError {
            throw error
        } catch {
            throw NodeError(.api, detail: "requesting a token for serviceaccount \(namespace)/\(account)", apiError: error as? KubeAPIError)
        }
    }
}
