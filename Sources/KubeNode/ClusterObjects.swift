import Foundation
import KubeClient

/// The API objects pods refer to (config maps, secrets, service account tokens). Standalone,
/// there are none: a pod that needs one waits with the kubelet's reason.
protocol ClusterObjects: Sendable {
    func configMap(namespace: String, name: String) async throws(NodeError) -> ConfigMap?
    func secret(namespace: String, name: String) async throws(NodeError) -> Secret?
    /// A token for the pod's service account, bound to the pod (TokenRequest).
    func serviceAccountToken(pod: Pod, audience: String?, expirationSeconds: Int64) async throws(NodeError) -> String
    /// The services a container's environment names (docker-links style): the namespace's
    /// when `serviceLinks`, and always the master service `kubernetes` of `default`.
    func serviceEnvironment(namespace: String, serviceLinks: Bool) async -> [(String, String)]
}

extension ClusterObjects {
    func serviceEnvironment(namespace: String, serviceLinks: Bool) async -> [(String, String)] { [] }
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

    func serviceEnvironment(namespace: String, serviceLinks: Bool) async -> [(String, String)] {
        var services: [JSONValue] = []
        if serviceLinks, let list = try? await client.list("/api/v1/namespaces/\(namespace)/services") {
            services = list["items"]?.arrayValue ?? []
        }
        if namespace != "default" || !serviceLinks, let master = try? await client.get("/api/v1/namespaces/default/services/kubernetes") {
            services.removeAll { $0["metadata"]?["name"]?.stringValue == "kubernetes" }
            services.append(master)
        }
        return ServiceEnvironment.variables(services)
    }

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

/// Docker-links style variables for services, as the kubelet's `envvars.FromServices`.
enum ServiceEnvironment {
    static func variables(_ services: [JSONValue]) -> [(String, String)] {
        var result: [(String, String)] = []
        let sorted = services.sorted { ($0["metadata"]?["name"]?.stringValue ?? "") < ($1["metadata"]?["name"]?.stringValue ?? "") }
        for service in sorted {
            guard let ip = service["spec"]?["clusterIP"]?.stringValue, !ip.isEmpty, ip != "None",
                  let name = service["metadata"]?["name"]?.stringValue else { continue }
            let ports = service["spec"]?["ports"]?.arrayValue ?? []
            guard let first = ports.first else { continue }
            let prefix = name.uppercased().replacingOccurrences(of: "-", with: "_")
            result.append(("\(prefix)_SERVICE_HOST", ip))
            result.append(("\(prefix)_SERVICE_PORT", String(first["port"]?.intValue ?? 0)))
            for port in ports {
                if let portName = port["name"]?.stringValue, !portName.isEmpty {
                    result.append(("\(prefix)_SERVICE_PORT_\(portName.uppercased().replacingOccurrences(of: "-", with: "_"))",
                                   String(port["port"]?.intValue ?? 0)))
                }
            }
            func url(_ port: JSONValue) -> (proto: String, number: String, text: String) {
                let proto = (port["protocol"]?.stringValue ?? "TCP").lowercased()
                let number = String(port["port"]?.intValue ?? 0)
                let host = ip.contains(":") ? "[\(ip)]" : ip
                return (proto, number, "\(proto)://\(host):\(number)")
            }
            result.append(("\(prefix)_PORT", url(first).text))
            for port in ports {
                let (proto, number, text) = url(port)
                let base = "\(prefix)_PORT_\(number)_\(proto.uppercased())"
                result.append((base, text))
                result.append(("\(base)_PROTO", proto))
                result.append(("\(base)_PORT", number))
                result.append(("\(base)_ADDR", ip))
            }
        }
        return result
    }
}
