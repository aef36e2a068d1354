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
        let server = try CRIServer(
            socketPath: configuration.criSocket, runtime: runtime,
            images: ImageServiceHandler(store: images, registryHosts: RegistryHosts(configPath: configuration.registryConfigPath), logger: logger),
            shutdownGrace: configuration.shutdownGracePeriod.duration, logger: logger)
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
            try await server.run()
            // The CRI server stopped: end the streaming sessions too.
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
