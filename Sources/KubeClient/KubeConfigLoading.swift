import Foundation

extension KubeConfig {
    /// Loads the kubeconfig as kubectl and the kubelet find it:
    /// 1. `explicitPath` (a `--kubeconfig` flag) when given — it must exist;
    /// 2. otherwise `KUBECONFIG`, a colon-separated list merged with client-go's rules (the first
    ///    file to define a cluster, user or context name wins, as does the first
    ///    `current-context`; files that do not exist are skipped, but at least one must);
    /// 3. otherwise `$HOME/.kube/config`.
    public static func load(explicitPath: String? = nil,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(KubeConfigError) -> KubeConfig {
        if let explicitPath, !explicitPath.isEmpty { return try load(path: explicitPath) }
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            let paths = list.split(separator: ":").map(String.init).filter { !$0.isEmpty }
            var seen = Set<String>()
            var configs: [KubeConfig] = []
            for path in paths where seen.insert(path).inserted {
                guard FileManager.default.fileExists(atPath: path) else { continue }
                configs.append(try load(path: path))
            }
            guard !configs.isEmpty else {
                throw KubeConfigError(file: list, key: "KUBECONFIG", reason: .fileNotFound)
            }
            return merged(configs)
        }
        if let home = environment["HOME"], !home.isEmpty {
            let path = home + "/.kube/config"
            if FileManager.default.fileExists(atPath: path) { return try load(path: path) }
        }
        throw KubeConfigError(file: "", reason: .noConfiguration)
    }

    /// Merges configurations in precedence order: the first to define a name or a current
    /// context wins (client-go's rules for a `KUBECONFIG` list).
    public static func merged(_ configs: [KubeConfig]) -> KubeConfig {
        var result = KubeConfig()
        for config in configs {
            result.clusters.merge(config.clusters) { first, _ in first }
            result.users.merge(config.users) { first, _ in first }
            result.contexts.merge(config.contexts) { first, _ in first }
            if result.currentContext == nil, let current = config.currentContext {
                result.currentContext = current
                result.currentContextSource = config.currentContextSource
            }
            result.files += config.files
        }
        return result
    }
}
