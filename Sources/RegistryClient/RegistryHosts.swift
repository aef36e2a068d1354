import Foundation

/// Where to reach a registry, read from containerd's layout: `<configPath>/<host>/hosts.toml`
/// (`docker.io` → a mirror, `skip_verify`, plain HTTP), so operators can point Swiftlet at
/// the directory they already have (`/etc/containerd/certs.d`).
public struct RegistryHosts: Sendable {
    /// One endpoint to try, in order.
    public struct Endpoint: Sendable, Equatable {
        /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`
        public var url: String
        public var skipVerify: Bool
        /// `pull`, `resolve`
        public var capabilities: Set<String>
    }

    public let configPath: String?

    public init(configPath: String?) {
        self.configPath = configPath
    }

    /// The endpoints for `registry`: the mirrors of its hosts.toml, then its server.
    public func endpoints(for registry: String) -> [Endpoint] {
        let defaultServer = registry == "docker.io" ? "https://registry-1.docker.io" : "https://\(registry)"
        guard let configPath,
              let text = (FileManager.default.contents(atPath: "\(configPath)/\(registry)/hosts.toml")
                          ?? FileManager.default.contents(atPath: "\(configPath)/_default/hosts.toml"))
                .map({ String(decoding: $0, as: UTF8.self) }) else {
            return [Endpoint(url: defaultServer, skipVerify: false, capabilities: ["pull", "resolve"])]
        }
        var server = defaultServer
        var serverSkipVerify = false
        var hosts: [Endpoint] = []
        var current: Int?
        for rawLine in text.split(separator: "\n") {
            let line = rawLine.split(separator: "#", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                // [host."https://mirror"]  (sub-tables such as .header are not endpoints)
                let name = line.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
                if name.hasPrefix("host."), let open = name.firstIndex(of: "\""), let close = name.lastIndex(of: "\""), open < close,
                   name[name.index(after: close)...].isEmpty {
                    hosts.append(Endpoint(url: String(name[name.index(after: open)..<close]), skipVerify: false, capabilities: ["pull", "resolve"]))
                    current = hosts.count - 1
                } else {
                    current = nil
                }
                continue
            }
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            let value = parts[1]
            func unquoted(_ text: String) -> String { text.trimmingCharacters(in: CharacterSet(charactersIn: "\"'")) }
            switch parts[0] {
            case "server" where current == nil: server = unquoted(value)
            case "skip_verify":
                if let current { hosts[current].skipVerify = value == "true" } else { serverSkipVerify = value == "true" }
            case "capabilities":
                let items = value.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",").map { unquoted($0.trimmingCharacters(in: .whitespaces)) }
                if let current { hosts[current].capabilities = Set(items) }
            default:
                continue
            }
        }
        return hosts + [Endpoint(url: server, skipVerify: serverSkipVerify, capabilities: ["pull", "resolve"])]
    }
}
