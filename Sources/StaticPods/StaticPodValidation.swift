import Foundation
import KubeClient

/// The essentials of the kubelet's pod validation (`ValidatePod`) for manifests: what would make
/// the pod unnameable or unrunnable. The API server still validates the mirror pod in full.
enum StaticPodValidation {
    static func problems(in pod: Pod) -> [String] {
        var problems: [String] = []
        if (pod.metadata.name ?? "").isEmpty { problems.append("metadata.name: required") }
        if let namespace = pod.metadata.namespace, !namespace.isEmpty, !isDNS1123Label(namespace) {
            problems.append("metadata.namespace: \"\(namespace)\" is not a DNS-1123 label")
        }
        guard let spec = pod.spec else { return problems + ["spec: required"] }
        if spec.containers.isEmpty { problems.append("spec.containers: at least one container is required") }
        if let policy = spec.restartPolicy, !["Always", "OnFailure", "Never"].contains(policy) {
            problems.append("spec.restartPolicy: \"\(policy)\" is not Always, OnFailure or Never")
        }

        var volumeNames = Set<String>()
        for (index, volume) in (spec.volumes ?? []).enumerated() {
            let field = "spec.volumes[\(index)]"
            if !isDNS1123Label(volume.name) {
                problems.append("\(field).name: \"\(volume.name)\" is not a DNS-1123 label")
            } else if !volumeNames.insert(volume.name).inserted {
                problems.append("\(field).name: duplicate volume \"\(volume.name)\"")
            }
            if let hostPath = volume.hostPath, hostPath.path.isEmpty { problems.append("\(field).hostPath.path: required") }
        }

        var containerNames = Set<String>()
        let groups: [(String, [Container])] = [("spec.initContainers", spec.initContainers ?? []), ("spec.containers", spec.containers)]
        for (list, containers) in groups {
            for (index, container) in containers.enumerated() {
                let field = "\(list)[\(index)]"
                if !isDNS1123Label(container.name) {
                    problems.append("\(field).name: \"\(container.name)\" is not a DNS-1123 label")
                } else if !containerNames.insert(container.name).inserted {
                    problems.append("\(field).name: duplicate container name \"\(container.name)\"")
                }
                let image = container.image ?? ""
                if image.isEmpty {
                    problems.append("\(field).image: required")
                } else if image.trimmingCharacters(in: .whitespacesAndNewlines) != image {
                    problems.append("\(field).image: leading or trailing whitespace")
                }
                for (mountIndex, mount) in (container.volumeMounts ?? []).enumerated() {
                    if !volumeNames.contains(mount.name) {
                        problems.append("\(field).volumeMounts[\(mountIndex)].name: no volume named \"\(mount.name)\"")
                    }
                    if mount.mountPath.isEmpty { problems.append("\(field).volumeMounts[\(mountIndex)].mountPath: required") }
                }
                for (portIndex, port) in (container.ports ?? []).enumerated() where !(1...65535).contains(port.containerPort) {
                    problems.append("\(field).ports[\(portIndex)].containerPort: \(port.containerPort) is not between 1 and 65535")
                }
            }
        }
        return problems
    }

    /// The generated name (`<name>-<node>`) must still be a DNS-1123 subdomain, as the kubelet checks.
    static func nameProblems(_ name: String, namespace: String) -> [String] {
        isDNS1123Subdomain(name) ? [] : ["metadata.name: \"\(name)\" is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', at most 253)"]
    }

    /// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters (container, volume and namespace names).
    static func isDNS1123Label(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        func alphanumeric(_ byte: UInt8) -> Bool { (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x30 && byte <= 0x39) }
        guard alphanumeric(bytes[0]), alphanumeric(bytes[bytes.count - 1]) else { return false }
        return bytes.allSatisfy { alphanumeric($0) || $0 == 0x2d }
    }

    /// Dot-separated DNS-1123 labels, at most 253 characters (pod names).
    static func isDNS1123Subdomain(_ text: String) -> Bool {
        guard (1...253).contains(text.utf8.count) else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNS1123Label(String($0)) }
    }
}
