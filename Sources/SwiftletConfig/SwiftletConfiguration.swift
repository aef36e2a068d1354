/// Everything `swiftlet run` is configured with: built-in defaults, then the config file,
/// then command-line flags (each later source overrides the earlier one).
///
/// Keys in the YAML config file are the camelCase names of the properties, as in a
/// KubeletConfiguration (`criSocket`, `root`, `state`, `logLevel`, …).
public struct SwiftletConfiguration: Sendable, Equatable, Codable {
    /// The CRI socket (`--cri-socket`).
    public var criSocket: String = "/run/swiftlet/swiftlet.sock"
    /// Persistent data: images, container rootfs layers (`--root`).
    public var root: String = "/var/lib/swiftlet"
    /// Runtime state that does not survive a reboot: checkpoints, sockets (`--state`).
    public var state: String = "/run/swiftlet"
    /// The least severe level logged (`--log-level`).
    public var logLevel: LogLevel = .info
    /// How log lines are written (`--log-format`).
    public var logFormat: LogFormat = .text
    /// How container cgroups are named and managed (`--cgroup-driver`).
    public var cgroupDriver: CgroupDriver = .cgroupfs
    /// Where CNI network configs are read from (`--cni-conf-dir`).
    public var cniConfDir: String = "/etc/cni/net.d"
    /// Where CNI plugin binaries are looked up, in order (`--cni-bin-dir`, repeatable).
    public var cniBinDirs: [String] = ["/usr/lib/cni", "/opt/cni/bin"]
    /// How long in-flight CRI calls may run after SIGTERM before they are cancelled.
    public var shutdownGracePeriod: GoDuration = GoDuration(seconds: 10)
    /// The containerizer's isolators, as the Mesos agent's `--isolation` (comma-separated).
    public var isolation: [String] = ["cgroups/cpu", "cgroups/mem", "cgroups/pids", "namespaces/pid", "filesystem/linux"]
    /// The cgroup, under each hierarchy, that holds the containers (`--cgroups-root`).
    public var cgroupsRoot: String = "swiftlet"
    /// Per-registry settings in containerd's layout, `<dir>/<host>/hosts.toml`
    /// (`--registry-config-path`; point it at /etc/containerd/certs.d to share containerd's).
    public var registryConfigPath: String = "/etc/swiftlet/certs.d"
    /// Where the streaming server (Exec, Attach, PortForward URLs) listens, as containerd's
    /// `stream_server_address` (`--stream-server-address`).
    public var streamServerAddress: String = "127.0.0.1"
    /// Its TCP port; 0 picks a free one (`--stream-server-port`).
    public var streamServerPort: Int = 0

    /// The built-in defaults.
    public init() {}

    /// The default config file, read if it exists (`--config` names another).
    public static let defaultConfigPath = "/etc/swiftlet/config.yaml"

    /// Checks the values that a type alone cannot: absolute paths, at least one CNI bin dir.
    public func validate() throws(ConfigError) {
        for (key, path) in [("criSocket", criSocket), ("root", root), ("state", state), ("cniConfDir", cniConfDir)] {
            guard path.hasPrefix("/") else {
                throw ConfigError(.invalidValue, key: key, detail: "\"\(path)\" is not an absolute path")
            }
        }
        guard !cniBinDirs.isEmpty else {
            throw ConfigError(.invalidValue, key: "cniBinDirs", detail: "at least one directory is needed")
        }
        for path in cniBinDirs where !path.hasPrefix("/") {
            throw ConfigError(.invalidValue, key: "cniBinDirs", detail: "\"\(path)\" is not an absolute path")
        }
        if cgroupsRoot.isEmpty || cgroupsRoot.hasPrefix("/") || cgroupsRoot.split(separator: "/").contains("..") {
            throw ConfigError(.invalidValue, key: "cgroupsRoot", detail: "\"\(cgroupsRoot)\" must be a relative cgroup path without ..")
        }
        if !(0...65535).contains(streamServerPort) {
            throw ConfigError(.invalidValue, key: "streamServerPort", detail: "\(streamServerPort) is not a TCP port (0 picks a free one)")
        }
        if criSocket.utf8.count >= 108 {
            throw ConfigError(.invalidValue, key: "criSocket", detail: "a unix socket path must be shorter than 108 bytes")
        }
    }

    /// The keys the config file accepts.
    public static let keys: Set<String> = [
        "criSocket", "root", "state", "logLevel", "logFormat", "cgroupDriver", "cniConfDir",
        "cniBinDirs", "shutdownGracePeriod", "isolation", "cgroupsRoot", "registryConfigPath",
        "streamServerAddress", "streamServerPort",
    ]

    public init(from decoder: any Decoder) throws {
        let defaults = SwiftletConfiguration()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        criSocket = try container.decodeIfPresent(String.self, forKey: .criSocket) ?? defaults.criSocket
        root = try container.decodeIfPresent(String.self, forKey: .root) ?? defaults.root
        state = try container.decodeIfPresent(String.self, forKey: .state) ?? defaults.state
        logLevel = try container.decodeIfPresent(LogLevel.self, forKey: .logLevel) ?? defaults.logLevel
        logFormat = try container.decodeIfPresent(LogFormat.self, forKey: .logFormat) ?? defaults.logFormat
        cgroupDriver = try container.decodeIfPresent(CgroupDriver.self, forKey: .cgroupDriver) ?? defaults.cgroupDriver
        cniConfDir = try container.decodeIfPresent(String.self, forKey: .cniConfDir) ?? defaults.cniConfDir
        cniBinDirs = try container.decodeIfPresent([String].self, forKey: .cniBinDirs) ?? defaults.cniBinDirs
        shutdownGracePeriod = try container.decodeIfPresent(GoDuration.self, forKey: .shutdownGracePeriod)
            ?? defaults.shutdownGracePeriod
        isolation = try container.decodeIfPresent([String].self, forKey: .isolation) ?? defaults.isolation
        cgroupsRoot = try container.decodeIfPresent(String.self, forKey: .cgroupsRoot) ?? defaults.cgroupsRoot
        registryConfigPath = try container.decodeIfPresent(String.self, forKey: .registryConfigPath) ?? defaults.registryConfigPath
        streamServerAddress = try container.decodeIfPresent(String.self, forKey: .streamServerAddress) ?? defaults.streamServerAddress
        streamServerPort = try container.decodeIfPresent(Int.self, forKey: .streamServerPort) ?? defaults.streamServerPort
    }
}

/// Log severities, as klog and containerd name them.
public enum LogLevel: String, Sendable, Codable, CaseIterable {
    case trace, debug, info, warn, error
}

/// Log line formats.
public enum LogFormat: String, Sendable, Codable, CaseIterable {
    /// logfmt, as containerd writes: `time="…" level=info msg="…" key=value`.
    case text
    /// One JSON object per line.
    case json
}

/// The cgroup driver, as the kubelet's `cgroupDriver`.
public enum CgroupDriver: String, Sendable, Codable, CaseIterable {
    case cgroupfs, systemd
}

/// A duration written as Go writes them (`10s`, `1m30s`, `500ms`), as in kubelet configs.
public struct GoDuration: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The length in nanoseconds.
    public var nanoseconds: Int64

    public init(seconds: Int64) { nanoseconds = seconds * 1_000_000_000 }
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// Parses `300ms`, `1.5s`, `2m`, `1h30m` (units ns, us, µs, ms, s, m, h).
    public init?(parsing text: String) {
        var rest = Substring(text.trimmingWhitespace())
        guard !rest.isEmpty else { return nil }
        if rest == "0" { nanoseconds = 0; return }
        var total = 0.0
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix { !$0.isNumber && $0 != "." }
            guard let unit = units.first(where: { $0.0 == unitText }) else { return nil }
            rest = rest.dropFirst(unitText.count)
            total += value * unit.1
        }
        guard total < Double(Int64.max) else { return nil }
        nanoseconds = Int64(total)
    }

    /// As a Swift `Duration`.
    public var duration: Duration { .nanoseconds(nanoseconds) }

    public var description: String {
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
        if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
        return "\(nanoseconds)ns"
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = GoDuration(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "\"\(text)\" is not a duration such as 10s, 1m30s or 500ms"))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension String {
    func trimmingWhitespace() -> Substring {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return self[first...last]
    }
}
