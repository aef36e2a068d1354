import ArgumentParser
import CRIServer
import Dispatch
import GRPCServer
import Containerizer
import ImageStore
import RegistryClient
import Logging
import SwiftletConfig
import SwiftletLogging
import StreamingServer
import SwiftletRuntime
import KubeNode
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `swiftlet run`: the agent. Serves the CRI until SIGTERM or SIGINT.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the node agent.",
        discussion: """
            Settings come from the built-in defaults, then the config file (\(SwiftletConfiguration.defaultConfigPath) \
            if it exists, or --config), then these flags. `swiftlet config default` prints the defaults.
            """
    )

    @OptionGroup var flags: ConfigFlags

    func run() async throws {
        let configuration = try flags.resolve()
        let logger = AgentLog.bootstrap(configuration)
        do {
            try await serve(configuration, logger: logger)
        } catch {
            logger.error("swiftlet run failed", metadata: ["error": "\(error)"])
            throw ExitCode.failure
        }
    }

    private func serve(_ configuration: SwiftletConfiguration, logger: Logger) async throws {
        try Directories.make(configuration.root, mode: 0o711)
        try Directories.make(configuration.state, mode: 0o711)
        let grpcLogger = Logger(label: "grpc")
        GRPCServer.setCoreLogHandler { severity, message in
            switch severity {
            case .debug: grpcLogger.debug("\(message)")
            case .info: grpcLogger.info("\(message)")
            case .error: grpcLogger.error("\(message)")
            }
        }
        let images = try ImageStore(root: configuration.root + "/images")
        let events = ContainerEventBus()
        let exits = ExitForwarder()
        let containerizer = try Containerizer(
            stateRoot: configuration.state + "/containerizer", cgroupsRoot: configuration.cgroupsRoot,
            isolation: configuration.isolation, onExit: { info in exits.forward(info.id) })
        let recovered = try containerizer.recover()
        let readiness = ReadinessProbe(configuration: configuration, podSandboxesSupported: true)
        let podCIDRs = PodCIDRs()
        let pods = PodRuntime(configuration: configuration, containerizer: containerizer, images: images, events: events,
                              podCIDRs: { podCIDRs.value }, logger: logger)
        pods.recover()
        exits.target = pods
        logger.info("containers recovered", metadata: [
            "running": "\(recovered.running.count)", "exited": "\(recovered.exited.count)", "removed": "\(recovered.removed.count)",
        ])
        let streaming = StreamingServer(runtime: PodStreaming(pods: pods), address: configuration.streamServerAddress,
                                        port: configuration.streamServerPort, logger: Logger(label: "streaming"))
        try streaming.start()
        let runtime = RuntimeServiceHandler(configuration: configuration, readiness: readiness, pods: pods, streaming: streaming,
                                            events: events, logger: logger)
        podCIDRs.handler = runtime
        let imageService = ImageServiceHandler(store: images, registryHosts: RegistryHosts(configPath: configuration.registryConfigPath),
                                               logger: logger)
        let server = try CRIServer(
            socketPath: configuration.criSocket, runtime: runtime, images: imageService,
            shutdownGrace: configuration.shutdownGracePeriod.duration, logger: logger)
        // The node: a cluster member with a kubeconfig; static pods with a manifest path. A
        // bootstrap kubeconfig first gets the node its client certificate (as the kubelet, before
        // anything else talks to the API server).
        if configuration.bootstrapKubeconfig != nil {
            try await KubeNodeAgent.bootstrapClientCertificate(configuration, logger: Logger(label: "node"))
        }
        let node: KubeNodeAgent? = configuration.kubeconfig != nil || configuration.staticPodPath != nil
            ? try KubeNodeAgent(configuration: configuration, runtime: runtime, images: imageService, events: events,
                                logger: Logger(label: "node"))
            : nil
        logger.info("starting swiftlet", metadata: [
            "version": "\(BuildInfo.version)", "root": "\(configuration.root)", "state": "\(configuration.state)",
            "cgroupDriver": "\(configuration.cgroupDriver.rawValue)",
        ])
        logger.debug("effective configuration", metadata: [
            "criSocket": "\(configuration.criSocket)", "cniConfDir": "\(configuration.cniConfDir)",
            "cniBinDirs": "\(configuration.cniBinDirs.joined(separator: ":"))", "logLevel": "\(configuration.logLevel.rawValue)",
            "shutdownGracePeriod": "\(configuration.shutdownGracePeriod)",
        ])
        logger.info("streaming server listening", metadata: ["address": "\(streaming.baseURL)"])
        let signals = ShutdownSignals(logger: logger, watchdog: configuration.shutdownGracePeriod.duration + .seconds(10)) {
            server.shutdown()
        }
        defer { signals.cancel() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await streaming.run() }
            let nodeTask = node.map { node in Task { await node.run() } }
            try await server.run()
            // The CRI server stopped: the node stops syncing pods (they keep running, to be
            // adopted at the next start), and the streaming sessions end.
            nodeTask?.cancel()
            await nodeTask?.value
            streaming.shutdown()
            try await group.waitForAll()
        }
    }
}

/// Hands the containerizer's exits to the pod runtime, which is made after it.
final class ExitForwarder: Sendable {
    private let box = Mutex<PodRuntime?>(nil)
    var target: PodRuntime? {
        get { box.withLock { $0 } }
        set { box.withLock { $0 = newValue } }
    }
    func forward(_ id: String) { target?.containerExited(id) }
}

/// The pod CIDRs UpdateRuntimeConfig set, for the pod runtime's CNI calls.
final class PodCIDRs: Sendable {
    private let box = Mutex<RuntimeServiceHandler?>(nil)
    var handler: RuntimeServiceHandler? {
        get { box.withLock { $0 } }
        set { box.withLock { $0 = newValue } }
    }
    var value: [String] { handler?.podCIDR ?? [] }
}

/// The flags of `swiftlet run`, named as the kubelet and containerd name them.
struct ConfigFlags: ParsableArguments {
    @Option(name: .long, help: "The config file (YAML). Default: \(SwiftletConfiguration.defaultConfigPath) if it exists.")
    var config: String?

    @Option(name: .customLong("cri-socket"), help: "The CRI unix socket. Default: /run/swiftlet/swiftlet.sock.")
    var criSocket: String?

    @Option(name: .long, help: "Persistent data (images, layers). Default: /var/lib/swiftlet.")
    var root: String?

    @Option(name: .long, help: "Runtime state, gone at reboot. Default: /run/swiftlet.")
    var state: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, warn or error. Default: info.")
    var logLevel: LogLevel?

    @Option(name: .customLong("log-format"), help: "text (logfmt, as containerd) or json. Default: text.")
    var logFormat: LogFormat?

    @Option(name: .customLong("cgroup-driver"), help: "cgroupfs or systemd. Default: cgroupfs.")
    var cgroupDriver: CgroupDriver?

    @Option(name: .customLong("cni-conf-dir"), help: "CNI network configs. Default: /etc/cni/net.d.")
    var cniConfDir: String?

    @Option(name: .customLong("cni-bin-dir"), help: "A CNI plugin directory; repeat for several. Default: /usr/lib/cni and /opt/cni/bin.")
    var cniBinDirs: [String] = []

    @Option(name: .customLong("registry-config-path"), help: "Registry hosts.toml directory (containerd's layout). Default: /etc/swiftlet/certs.d.")
    var registryConfigPath: String?

    @Option(name: .customLong("cgroups-root"), help: "The cgroup, under each hierarchy, for containers of pods without a cgroup parent. Default: swiftlet.")
    var cgroupsRoot: String?

    @Option(name: .customLong("stream-server-address"), help: "The streaming server's address (Exec, Attach, PortForward). Default: 127.0.0.1.")
    var streamServerAddress: String?

    @Option(name: .customLong("stream-server-port"), help: "The streaming server's TCP port; 0 picks a free one. Default: 0.")
    var streamServerPort: Int?

    @Option(name: .long, help: "Join the cluster this kubeconfig names. Without it the agent runs standalone (static pods only).")
    var kubeconfig: String?

    @Option(name: .customLong("bootstrap-kubeconfig"), help: "A kubeconfig with a bootstrap token: get a client certificate with a CSR when --kubeconfig is missing or expired.")
    var bootstrapKubeconfig: String?

    @Option(name: .customLong("cert-dir"), help: "The node's certificates. Default: <root>/pki.")
    var certDir: String?

    @Option(name: .customLong("rotate-certificates"), help: "Renew the client certificate before it expires (true/false). Default: false.")
    var rotateCertificates: Bool?

    @Option(name: .customLong("hostname-override"), help: "The node's name instead of the hostname.")
    var hostnameOverride: String?

    @Option(name: .customLong("node-ip"), help: "The node's InternalIP. Default: the default route's interface address.")
    var nodeIP: String?

    @Option(name: .long, help: "The kubelet API's address. Default: 0.0.0.0.")
    var address: String?

    @Option(name: .long, help: "The kubelet API's port; 0 turns it off. Default: 10250.")
    var port: Int?

    @Option(name: .customLong("healthz-bind-address"), help: "The healthz endpoint's address. Default: 127.0.0.1.")
    var healthzBindAddress: String?

    @Option(name: .customLong("healthz-port"), help: "The healthz endpoint's port; 0 turns it off. Default: 10248.")
    var healthzPort: Int?

    @Option(name: .customLong("tls-cert-file"), help: "The kubelet API's serving certificate (PEM). Default: a self-signed one under <root>/pki.")
    var tlsCertFile: String?

    @Option(name: .customLong("tls-private-key-file"), help: "The serving certificate's key (PEM).")
    var tlsPrivateKeyFile: String?

    @Option(name: .customLong("client-ca-file"), help: "Client certificates signed by this CA authenticate to the kubelet API.")
    var clientCAFile: String?

    @Option(name: .customLong("authentication-token-webhook"), help: "Check bearer tokens with the API server's TokenReview (true/false).")
    var authenticationTokenWebhook: Bool?

    @Option(name: .customLong("anonymous-auth"), help: "Serve requests without credentials as system:anonymous (true/false). Default: false.")
    var anonymousAuth: Bool?

    @Option(name: .customLong("authorization-mode"), help: "AlwaysAllow or Webhook (SubjectAccessReview). Default: AlwaysAllow.")
    var authorizationMode: String?

    @Option(name: .customLong("pod-manifest-path"), help: "The static pod directory (YAML or JSON manifests).")
    var podManifestPath: String?

    @Option(name: .customLong("node-labels"), help: "Labels to register the Node with: key=value,…")
    var nodeLabels: String?

    @Option(name: .customLong("register-with-taints"), help: "Taints to register the Node with: key=value:Effect,…")
    var registerWithTaints: String?

    @Option(name: .customLong("max-pods"), help: "The most pods this node runs. Default: 110.")
    var maxPods: Int?

    @Option(name: .customLong("kube-reserved"), help: "Resources kept for Kubernetes daemons: cpu=100m,memory=1Gi,ephemeral-storage=1Gi,pid=1000")
    var kubeReserved: String?

    @Option(name: .customLong("system-reserved"), help: "Resources kept for the system (same form as --kube-reserved).")
    var systemReserved: String?

    @Option(name: .customLong("eviction-hard"), help: "Hard eviction thresholds: memory.available<100Mi,nodefs.available<10%,… Default: the kubelet's.")
    var evictionHard: String?

    @Option(name: .customLong("pod-logs-dir"), help: "Where pod log directories go. Default: /var/log/pods.")
    var podLogsDir: String?

    @Option(name: .customLong("criu-path"), help: "The criu binary CheckpointContainer uses. Default: /usr/local/sbin/criu, else criu on PATH.")
    var criuPath: String?

    @Option(name: .customLong("shutdown-grace-period"), help: "How long CRI calls in flight may run after SIGTERM (Go duration). Default: 10s.")
    var shutdownGracePeriod: String?

    /// Defaults, then the config file, then these flags; validated.
    func resolve() throws -> SwiftletConfiguration {
        var configuration: SwiftletConfiguration
        do {
            configuration = try ConfigFile.load(config ?? SwiftletConfiguration.defaultConfigPath, required: config != nil)
        } catch {
            throw ValidationError(error.description)
        }
        if let criSocket { configuration.criSocket = criSocket }
        if let root { configuration.root = root }
        if let state { configuration.state = state }
        if let logLevel { configuration.logLevel = logLevel }
        if let logFormat { configuration.logFormat = logFormat }
        if let cgroupDriver { configuration.cgroupDriver = cgroupDriver }
        if let cniConfDir { configuration.cniConfDir = cniConfDir }
        if !cniBinDirs.isEmpty { configuration.cniBinDirs = cniBinDirs }
        if let registryConfigPath { configuration.registryConfigPath = registryConfigPath }
        if let cgroupsRoot { configuration.cgroupsRoot = cgroupsRoot }
        if let streamServerAddress { configuration.streamServerAddress = streamServerAddress }
        if let streamServerPort { configuration.streamServerPort = streamServerPort }
        if let kubeconfig { configuration.kubeconfig = kubeconfig }
        if let hostnameOverride { configuration.hostnameOverride = hostnameOverride }
        if let bootstrapKubeconfig { configuration.bootstrapKubeconfig = bootstrapKubeconfig }
        if let certDir { configuration.certDir = certDir }
        if let rotateCertificates { configuration.rotateCertificates = rotateCertificates }
        if let nodeIP { configuration.nodeIP = nodeIP }
        if let address { configuration.address = address }
        if let port { configuration.port = port }
        if let healthzBindAddress { configuration.healthzBindAddress = healthzBindAddress }
        if let healthzPort { configuration.healthzPort = healthzPort }
        if let tlsCertFile { configuration.tlsCertFile = tlsCertFile }
        if let tlsPrivateKeyFile { configuration.tlsPrivateKeyFile = tlsPrivateKeyFile }
        if let clientCAFile { configuration.clientCAFile = clientCAFile }
        if let authenticationTokenWebhook { configuration.authenticationTokenWebhook = authenticationTokenWebhook }
        if let anonymousAuth { configuration.anonymousAuth = anonymousAuth }
        if let authorizationMode { configuration.authorizationMode = authorizationMode }
        if let podManifestPath { configuration.staticPodPath = podManifestPath }
        if let maxPods { configuration.maxPods = maxPods }
        if let podLogsDir { configuration.podLogsDir = podLogsDir }
        if let criuPath { configuration.criuPath = criuPath }
        do {
            if let nodeLabels { configuration.nodeLabels = try FlagLists.keyValues(nodeLabels, flag: "--node-labels", separator: "=") }
            if let kubeReserved { configuration.kubeReserved = try FlagLists.keyValues(kubeReserved, flag: "--kube-reserved", separator: "=") }
            if let systemReserved { configuration.systemReserved = try FlagLists.keyValues(systemReserved, flag: "--system-reserved", separator: "=") }
            if let evictionHard { configuration.evictionHard = try FlagLists.keyValues(evictionHard, flag: "--eviction-hard", separator: "<") }
        } catch {
            throw ValidationError(error.description)
        }
        if let registerWithTaints { configuration.registerWithTaints = registerWithTaints.split(separator: ",").map(String.init) }
        if let shutdownGracePeriod {
            guard let duration = GoDuration(parsing: shutdownGracePeriod) else {
                throw ValidationError("--shutdown-grace-period: \"\(shutdownGracePeriod)\" is not a duration such as 10s or 500ms")
            }
            configuration.shutdownGracePeriod = duration
        }
        do {
            try configuration.validate()
        } catch {
            throw ValidationError(error.description)
        }
        return configuration
    }
}

extension LogLevel: ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}
extension CgroupDriver: ExpressibleByArgument {}

/// The process-wide logging setup.
enum AgentLog {
    static func bootstrap(_ configuration: SwiftletConfiguration) -> Logger {
        let level: Logger.Level = switch configuration.logLevel {
        case .trace: .trace
        case .debug: .debug
        case .info: .info
        case .warn: .warning
        case .error: .error
        }
        let format: LogLineHandler.Format = configuration.logFormat == .json ? .json : .logfmt
        LoggingSystem.bootstrap { label in LogLineHandler(label: label, level: level, format: format) }
        return Logger(label: "swiftlet")
    }
}

/// Creating the agent's directories.
enum Directories {
    struct Failure: Error, CustomStringConvertible {
        var path: String
        var errno: Int32
        var description: String { "cannot create directory \(path): \(String(cString: strerror(errno)))" }
    }

    /// `mkdir -p` with `mode` for the directories it creates.
    static func make(_ path: String, mode: mode_t) throws {
        var current = ""
        for part in path.split(separator: "/") {
            current += "/\(part)"
            if mkdir(current, mode) != 0 && errno != EEXIST {
                throw Failure(path: current, errno: errno)
            }
        }
    }
}

/// SIGTERM and SIGINT: the first begins a graceful shutdown, a second exits at once. A handler
/// that ignores its cancellation cannot hold the process: `watchdog` after the first signal it
/// exits anyway.
final class ShutdownSignals {
    private let sources: [any DispatchSourceSignal]

    init(logger: Logger, watchdog: Duration, onShutdown: @escaping @Sendable () -> Void) {
        signal(SIGPIPE, SIG_IGN)
        let received = SignalCount()
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let name = number == SIGTERM ? "SIGTERM" : "SIGINT"
                if received.increment() == 1 {
                    logger.info("shutting down", metadata: ["signal": "\(name)"])
                    onShutdown()
                    let (seconds, attoseconds) = watchdog.components
                    DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))) {
                        logger.error("calls still running \(watchdog) after the signal; exiting without them")
                        _exit(1)
                    }
                } else {
                    logger.warning("second signal: exiting without waiting for calls in flight", metadata: ["signal": "\(name)"])
                    _exit(1)  // at once: no atexit work (and no leak report of live objects)
                }
            }
            source.resume()
            return source
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}

final class SignalCount: Sendable {
    private let count = Mutex(0)
    func increment() -> Int { count.withLock { $0 += 1; return $0 } }
}
