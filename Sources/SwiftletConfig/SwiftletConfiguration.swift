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
    /// The CRIU binary CheckpointContainer dumps containers with (`--criu-path`); unset:
    /// /usr/local/sbin/criu (where hack/install-criu.sh puts it), else `criu` on PATH.
    public var criuPath: String?

    // MARK: The node (kubelet names)

    /// The kubeconfig to join a cluster with (`--kubeconfig`); absent, the agent runs
    /// standalone: static pods only, no API server.
    public var kubeconfig: String?
    /// A kubeconfig with a bootstrap token (`--bootstrap-kubeconfig`): when `kubeconfig` is
    /// missing or its client certificate expired, a CSR is made with it and the issued
    /// certificate written under `certDir`, with `kubeconfig` pointing at it.
    public var bootstrapKubeconfig: String?
    /// Where the node's client certificates (and the self-signed serving pair) go (`--cert-dir`);
    /// default `<root>/pki`.
    public var certDir: String?
    /// Renew the client certificate before it expires (`--rotate-certificates`).
    public var rotateCertificates: Bool = false
    /// The node's name instead of the hostname (`--hostname-override`).
    public var hostnameOverride: String?
    /// The node's InternalIP (`--node-ip`); default: the address of the default route's
    /// interface. Unlike kubelet 1.20, a loopback address is accepted.
    public var nodeIP: String?
    /// Where the kubelet API listens (`--address`).
    public var address: String = "0.0.0.0"
    /// The kubelet API's port (`--port`); 0 turns the API off.
    public var port: Int = 10250
    /// The healthz endpoint's address and port (`--healthz-bind-address`, `--healthz-port`; 0 off).
    public var healthzBindAddress: String = "127.0.0.1"
    public var healthzPort: Int = 10248
    /// The serving certificate and key of the kubelet API (`--tls-cert-file`,
    /// `--tls-private-key-file`); absent, a self-signed pair is made under `<root>/pki`, as the kubelet does.
    public var tlsCertFile: String?
    public var tlsPrivateKeyFile: String?
    /// Client certificates signed by this CA authenticate to the kubelet API (`--client-ca-file`).
    public var clientCAFile: String?
    /// Bearer tokens are checked with the API server's TokenReview (`--authentication-token-webhook`).
    public var authenticationTokenWebhook: Bool = false
    /// Requests without credentials are served as `system:anonymous` (`--anonymous-auth`).
    public var anonymousAuth: Bool = false
    /// `AlwaysAllow` or `Webhook` (SubjectAccessReview) (`--authorization-mode`).
    public var authorizationMode: String = "AlwaysAllow"
    /// The static pod directory (`--pod-manifest-path`, KubeletConfiguration `staticPodPath`).
    public var staticPodPath: String?
    /// How often the static pod directory is rescanned besides inotify (`fileCheckFrequency`).
    public var fileCheckFrequency: GoDuration = GoDuration(seconds: 20)
    /// Labels the Node registers with (`--node-labels`, `key=value,…`).
    public var nodeLabels: [String: String] = [:]
    /// Taints the Node registers with (`--register-with-taints`, `key=value:Effect,…`).
    public var registerWithTaints: [String] = []
    /// Pods this node takes at most (`--max-pods`).
    public var maxPods: Int = 110
    /// Resources kept for Kubernetes daemons and for the system (`--kube-reserved`,
    /// `--system-reserved`: `cpu=100m,memory=1Gi,ephemeral-storage=1Gi,pid=1000`).
    public var kubeReserved: [String: String] = [:]
    public var systemReserved: [String: String] = [:]
    /// Hard eviction thresholds (`--eviction-hard`: `memory.available<100Mi,nodefs.available<10%`);
    /// empty means the kubelet's defaults.
    public var evictionHard: [String: String] = [:]
    /// How often node status is computed, and the longest a status goes unreported.
    public var nodeStatusUpdateFrequency: GoDuration = GoDuration(seconds: 10)
    public var nodeStatusReportFrequency: GoDuration = GoDuration(seconds: 300)
    /// The node Lease's duration; it is renewed every quarter of it.
    public var nodeLeaseDurationSeconds: Int = 40
    /// Where pod and container log directories go (the kubelet's /var/log/pods).
    public var podLogsDir: String = "/var/log/pods"

    /// The directory of the node's certificates: `certDir`, else `<root>/pki`.
    public var certificateDirectory: String { certDir ?? root + "/pki" }

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
        for (key, port) in [("port", port), ("healthzPort", healthzPort)] where !(0...65535).contains(port) {
            throw ConfigError(.invalidValue, key: key, detail: "\(port) is not a TCP port (0 turns it off)")
        }
        if maxPods < 1 { throw ConfigError(.invalidValue, key: "maxPods", detail: "\(maxPods): a node takes at least one pod") }
        if !["AlwaysAllow", "Webhook"].contains(authorizationMode) {
            throw ConfigError(.invalidValue, key: "authorizationMode", detail: "\"\(authorizationMode)\": AlwaysAllow or Webhook")
        }
        if nodeLeaseDurationSeconds < 1 {
            throw ConfigError(.invalidValue, key: "nodeLeaseDurationSeconds", detail: "must be positive")
        }
        if bootstrapKubeconfig != nil && kubeconfig == nil {
            throw ConfigError(.invalidValue, key: "bootstrapKubeconfig", detail: "needs kubeconfig: the path the bootstrapped kubeconfig is written to")
        }
        for (key, path) in [("staticPodPath", staticPodPath), ("kubeconfig", kubeconfig), ("podLogsDir", podLogsDir),
                            ("bootstrapKubeconfig", bootstrapKubeconfig), ("certDir", certDir), ("criuPath", criuPath)] {
            if let path, !path.hasPrefix("/") {
                throw ConfigError(.invalidValue, key: key, detail: "\"\(path)\" is not an absolute path")
            }
        }
        if criSocket.utf8.count >= 108 {
            throw ConfigError(.invalidValue, key: "criSocket", detail: "a unix socket path must be shorter than 108 bytes")
        }
    }

    /// The keys the config file accepts.
    public static let keys: Set<String> = [
        "criSocket", "root", "state", "logLevel", "logFormat", "cgroupDriver", "cniConfDir",
        "cniBinDirs", "shutdownGracePeriod", "isolation", "cgroupsRoot", "registryConfigPath",
        "streamServerAddress", "streamServerPort", "criuPath",
        "kubeconfig", "bootstrapKubeconfig", "certDir", "rotateCertificates", "hostnameOverride", "nodeIP", "address", "port", "healthzBindAddress", "healthzPort", "tlsCertFile",
        "tlsPrivateKeyFile", "clientCAFile", "authenticationTokenWebhook", "anonymousAuth", "authorizationMode", "staticPodPath",
        "fileCheckFrequency", "nodeLabels", "registerWithTaints", "maxPods", "kubeReserved", "systemReserved", "evictionHard",
        "nodeStatusUpdateFrequency", "nodeStatusReportFrequency", "nodeLeaseDurationSeconds", "podLogsDir",
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
        criuPath = try container.decodeIfPresent(String.self, forKey: .criuPath)
        kubeconfig = try container.decodeIfPresent(String.self, forKey: .kubeconfig)
        bootstrapKubeconfig = try container.decodeIfPresent(String.self, forKey: .bootstrapKubeconfig)
        certDir = try container.decodeIfPresent(String.self, forKey: .certDir)
        rotateCertificates = try container.decodeIfPresent(Bool.self, forKey: .rotateCertificates) ?? defaults.rotateCertificates
        hostnameOverride = try container.decodeIfPresent(String.self, forKey: .hostnameOverride)
        nodeIP = try container.decodeIfPresent(String.self, forKey: .nodeIP)
        address = try container.decodeIfPresent(String.self, forKey: .address) ?? defaults.address
        port = try container.decodeIfPresent(Int.self, forKey: .port) ?? defaults.port
        healthzBindAddress = try container.decodeIfPresent(String.self, forKey: .healthzBindAddress) ?? defaults.healthzBindAddress
        healthzPort = try container.decodeIfPresent(Int.self, forKey: .healthzPort) ?? defaults.healthzPort
        tlsCertFile = try container.decodeIfPresent(String.self, forKey: .tlsCertFile)
        tlsPrivateKeyFile = try container.decodeIfPresent(String.self, forKey: .tlsPrivateKeyFile)
        clientCAFile = try container.decodeIfPresent(String.self, forKey: .clientCAFile)
        authenticationTokenWebhook = try container.decodeIfPresent(Bool.self, forKey: .authenticationTokenWebhook)
            ?? defaults.authenticationTokenWebhook
        anonymousAuth = try container.decodeIfPresent(Bool.self, forKey: .anonymousAuth) ?? defaults.anonymousAuth
        authorizationMode = try container.decodeIfPresent(String.self, forKey: .authorizationMode) ?? defaults.authorizationMode
        staticPodPath = try container.decodeIfPresent(String.self, forKey: .staticPodPath)
        fileCheckFrequency = try container.decodeIfPresent(GoDuration.self, forKey: .fileCheckFrequency) ?? defaults.fileCheckFrequency
        nodeLabels = try container.decodeIfPresent([String: String].self, forKey: .nodeLabels) ?? defaults.nodeLabels
        registerWithTaints = try container.decodeIfPresent([String].self, forKey: .registerWithTaints) ?? defaults.registerWithTaints
        maxPods = try container.decodeIfPresent(Int.self, forKey: .maxPods) ?? defaults.maxPods
        kubeReserved = try container.decodeIfPresent([String: String].self, forKey: .kubeReserved) ?? defaults.kubeReserved
        systemReserved = try container.decodeIfPresent([String: String].self, forKey: .systemReserved) ?? defaults.systemReserved
        evictionHard = try container.decodeIfPresent([String: String].self, forKey: .evictionHard) ?? defaults.evictionHard
        nodeStatusUpdateFrequency = try container.decodeIfPresent(GoDuration.self, forKey: .nodeStatusUpdateFrequency)
            ?? defaults.nodeStatusUpdateFrequency
        nodeStatusReportFrequency = try container.decodeIfPresent(GoDuration.self, forKey: .nodeStatusReportFrequency)
            ?? defaults.nodeStatusReportFrequency
        nodeLeaseDurationSeconds = try container.decodeIfPresent(Int.self, forKey: .nodeLeaseDurationSeconds)
            ?? defaults.nodeLeaseDurationSeconds
        podLogsDir = try container.decodeIfPresent(String.self, forKey: .podLogsDir) ?? defaults.podLogsDir
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

/// The list forms of kubelet flags (`--node-labels a=b,c=d`, `--eviction-hard memory.available<100Mi`).
public enum FlagLists {
    /// Splits `key<separator>value,…` into a map; an entry without the separator, or a key
    /// given twice, is an error naming the flag.
    public static func keyValues(_ text: String, flag: String, separator: Character) throws(ConfigError) -> [String: String] {
        var result: [String: String] = [:]
        for entry in text.split(separator: ",", omittingEmptySubsequences: true) {
            let trimmed = String(entry).trimmingWhitespace()
            guard let index = trimmed.firstIndex(of: separator), index != trimmed.startIndex else {
                throw ConfigError(.invalidValue, key: flag, detail: "\"\(trimmed)\" is not key\(separator)value")
            }
            let key = String(trimmed[..<index])
            guard result[key] == nil else { throw ConfigError(.invalidValue, key: flag, detail: "\"\(key)\" is given twice") }
            result[key] = String(trimmed[trimmed.index(after: index)...])
        }
        return result
    }
}
