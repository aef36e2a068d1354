import CRI
import KubeClient

/// A container's environment as the kubelet's `makeEnvironmentVariables` builds it: `envFrom`
/// (config maps and secrets, with prefixes; keys that are not valid names skipped), then `env`
/// in order — values with `$(VAR)` expanded against what came before, or from the downward API
/// (`fieldRef`, `resourceFieldRef`), a config map key or a secret key — after the service
/// variables of the cluster's `kubernetes` service (`KUBERNETES_SERVICE_HOST`, …).
struct PodEnvironment: Sendable {
    let objects: any ClusterObjects
    let serviceEnv: [(String, String)]
    let allocatable: [String: String]

    func variables(for container: ContainerSpec, pod: Pod, podIPs: [String], hostIP: String) async throws(NodeError) -> [KeyValue] {
        let namespace = pod.metadata.namespace ?? "default"
        var order: [String] = []
        var values: [String: String] = [:]
        func set(_ name: String, _ value: String) {
            if values[name] == nil { order.append(name) }
            values[name] = value
        }
        let services = await objects.serviceEnvironment(namespace: namespace, serviceLinks: pod.spec?.enableServiceLinks ?? true)
        for (name, value) in serviceEnv + services { set(name, value) }
        for source in container.envFrom ?? [] {
            let prefix = source.prefix ?? ""
            if let ref = source.configMapRef {
                guard let map = try await objects.configMap(namespace: namespace, name: ref.name ?? "") else {
                    if ref.optional == true { continue }
                    throw NodeError(.podSpec, detail: "configmap \"\(ref.name ?? "")\" not found")
                }
                for (key, value) in (map.data ?? [:]).sorted(by: { $0.key < $1.key }) where Self.isValidName(prefix + key) {
                    set(prefix + key, value)
                }
            }
            if let ref = source.secretRef {
                guard let secret = try await objects.secret(namespace: namespace, name: ref.name ?? "") else {
                    if ref.optional == true { continue }
                    throw NodeError(.podSpec, detail: "secret \"\(ref.name ?? "")\" not found")
                }
                for (key, bytes) in (secret.contents ?? [:]).sorted(by: { $0.key < $1.key }) where Self.isValidName(prefix + key) {
                    set(prefix + key, String(decoding: bytes, as: UTF8.self))
                }
            }
        }
        for variable in container.env ?? [] {
            if let source = variable.valueFrom {
                if let field = source.fieldRef {
                    set(variable.name, try DownwardAPI.fieldValue(field.fieldPath, pod: pod, podIPs: podIPs, hostIP: hostIP))
                } else if let resource = source.resourceFieldRef {
                    set(variable.name, try DownwardAPI.resourceValue(resource, pod: pod,
                                                                      container: resource.containerName == nil ? container : nil,
                                                                      allocatable: allocatable))
                } else if let ref = source.configMapKeyRef {
                    let map = try await objects.configMap(namespace: namespace, name: ref.name ?? "")
                    guard let value = map?.data?[ref.key] else {
                        if ref.optional == true { continue }
                        throw NodeError(.podSpec, detail: map == nil ? "configmap \"\(ref.name ?? "")\" not found"
                                        : "couldn't find key \(ref.key) in ConfigMap \(namespace)/\(ref.name ?? "")")
                    }
                    set(variable.name, value)
                } else if let ref = source.secretKeyRef {
                    let secret = try await objects.secret(namespace: namespace, name: ref.name ?? "")
                    guard let bytes = secret?.contents?[ref.key] else {
                        if ref.optional == true { continue }
                        throw NodeError(.podSpec, detail: secret == nil ? "secret \"\(ref.name ?? "")\" not found"
                                        : "couldn't find key \(ref.key) in Secret \(namespace)/\(ref.name ?? "")")
                    }
                    set(variable.name, String(decoding: bytes, as: UTF8.self))
                }
            } else {
                set(variable.name, Self.expand(variable.value ?? "", with: values))
            }
        }
        return order.map { KeyValue(key: $0, value: values[$0]!) }
    }

    /// `$(VAR)` expanded from `values` (unknown references stay as written; `$$` escapes), as
    /// `third_party/forked/golang/expansion`.
    static func expand(_ input: String, with values: [String: String]) -> String {
        var output = ""
        var index = input.startIndex
        while index < input.endIndex {
            let character = input[index]
            let next = input.index(after: index)
            guard character == "$", next < input.endIndex else { output.append(character); index = next; continue }
            if input[next] == "$" { output.append("$"); index = input.index(after: next); continue }
            if input[next] == "(", let close = input[next...].firstIndex(of: ")") {
                let name = String(input[input.index(after: next)..<close])
                if let value = values[name] { output += value } else { output += "$(\(name))" }
                index = input.index(after: close)
                continue
            }
            output.append(character)
            index = next
        }
        return output
    }

    /// An environment variable name the kubelet accepts from `envFrom` (`IsEnvVarName`: letters,
    /// digits, `_`, `-`, `.`, not starting with a digit, and not `.`, `..` or `..`-prefixed).
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.first, !first.isNumber, name != ".", !name.hasPrefix("..") else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }
    }
}
