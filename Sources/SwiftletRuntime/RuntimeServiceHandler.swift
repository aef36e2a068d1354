import CRI
import Containerizer
import Foundation
import Logging
import StreamingServer
import Synchronization
import SwiftletConfig

/// Swiftlet's CRI RuntimeService.
///
/// Runtime-level methods here (`Version`, `Status`, `RuntimeConfig`, `UpdateRuntimeConfig`,
/// `GetContainerEvents`); pods, containers, exec and stats in `RuntimeServiceHandler+Pods`
/// over ``PodRuntime``. Methods not implemented answer UNIMPLEMENTED naming themselves (the
/// protocol's default); the README's support table lists them.
public final class RuntimeServiceHandler: RuntimeService {
    private let configuration: SwiftletConfiguration
    private let readiness: ReadinessProbe
    private let logger: Logger
    private let podCIDRs = Mutex<[String]>([])
    /// The container events streamed to `GetContainerEvents` clients.
    public let events: ContainerEventBus
    /// The pods and containers; nil serves the CRI without them (they answer UNAVAILABLE).
    public let pods: PodRuntime?
    /// Serves the URLs Exec, Attach and PortForward return.
    public let streaming: StreamingServer?

    /// Creates the service for `configuration`; `readiness` decides the Status conditions.
    public init(configuration: SwiftletConfiguration, readiness: ReadinessProbe, pods: PodRuntime? = nil,
                streaming: StreamingServer? = nil, events: ContainerEventBus = ContainerEventBus(), logger: Logger) {
        self.configuration = configuration
        self.readiness = readiness
        self.pods = pods
        self.streaming = streaming
        self.events = events
        self.logger = logger
    }

    public func getContainerEvents(
        _ request: GetEventsRequest, context: CallContext, responses: ResponseStream<ContainerEventResponse>
    ) async throws {
        let stream = events.subscribe()
        logger.debug("container event stream opened", metadata: ["streams": "\(events.subscriberCount)"])
        var sent = 0
        do {
            for await event in stream {
                try await responses.send(event)
                sent += 1
            }
        } catch {
            logger.debug("container event stream closed", metadata: ["reason": "client gone", "sent": "\(sent)"])
            throw error
        }
        // The stream ends only when this task is cancelled: the client cancelled, its
        // deadline passed, or the server is shutting down.
        let deadlinePassed = context.deadline.map { $0 <= .now } ?? false
        logger.debug("container event stream closed", metadata: [
            "reason": "\(deadlinePassed ? "deadline exceeded" : "cancelled")", "sent": "\(sent)",
        ])
        throw CancellationError()
    }

    public func version(_ request: VersionRequest, context: CallContext) async throws -> VersionResponse {
        VersionResponse(
            version: BuildInfo.kubeletAPIVersion,
            runtimeName: BuildInfo.runtimeName,
            runtimeVersion: BuildInfo.version,
            runtimeApiVersion: context.apiVersion.rawValue
        )
    }

    public func status(_ request: StatusRequest, context: CallContext) async throws -> StatusResponse {
        let report = readiness.check()
        var response = StatusResponse(
            status: RuntimeStatus(conditions: [
                RuntimeCondition(type: "RuntimeReady", status: report.runtime.ready,
                                 reason: report.runtime.reason, message: report.runtime.message),
                RuntimeCondition(type: "NetworkReady", status: report.network.ready,
                                 reason: report.network.reason, message: report.network.message),
            ])
        )
        if context.apiVersion == .v1 {
            // Fields runtime.v1alpha2 does not have: the default handler, and what it supports
            // (recursive read-only mounts are mount_setattr's, Linux 5.12; user namespaces need
            // idmapped overlay layers, Linux 6.8).
            response.runtimeHandlers = [
                RuntimeHandler(name: "", features: RuntimeHandlerFeatures(recursiveReadOnlyMounts: true, userNamespaces: PodUserNamespace.supported)),
            ]
            response.features = RuntimeFeatures(supplementalGroupsPolicy: true)
        }
        if request.verbose {
            response.info = verboseInfo(report)
        }
        return response
    }

    public func runtimeConfig(_ request: RuntimeConfigRequest, context: CallContext) async throws -> RuntimeConfigResponse {
        let driver: CRI.CgroupDriver = configuration.cgroupDriver == .systemd ? .systemd : .cgroupfs
        return RuntimeConfigResponse(linux: LinuxRuntimeConfiguration(cgroupDriver: driver))
    }

    public func updateRuntimeConfig(_ request: UpdateRuntimeConfigRequest, context: CallContext) async throws -> UpdateRuntimeConfigResponse {
        let text = request.runtimeConfig?.networkConfig?.podCidr ?? ""
        // The kubelet sends an empty CIDR until the node has one; that changes nothing.
        guard !text.isEmpty else { return UpdateRuntimeConfigResponse() }
        let cidrs = text.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) }
        for cidr in cidrs where !CIDR.isValid(cidr) {
            let shown = cidr.count > 64 ? cidr.prefix(64) + "… (\(cidr.utf8.count) bytes)" : cidr
            throw CRIError.invalidArgument("invalid pod CIDR \"\(shown)\": want IPv4 or IPv6 CIDRs such as 10.244.0.0/24, comma-separated")
        }
        let previous = podCIDRs.withLock { stored in
            defer { stored = cidrs }
            return stored
        }
        if previous != cidrs {
            logger.info("pod CIDR updated", metadata: ["podCIDR": "\(cidrs.joined(separator: ","))"])
        }
        return UpdateRuntimeConfigResponse()
    }

    /// The pod CIDRs last set by UpdateRuntimeConfig.
    public var podCIDR: [String] { podCIDRs.withLock { $0 } }

    private struct VerboseRuntimeConfig: Encodable {
        var podCIDRs: [String]
        var cgroupDriver: String
    }

    private struct VerboseCNIConfig: Encodable {
        var confDir: String
        var binDirs: [String]
        var networks: [CNIConfigProbe.Network]
        var errors: [String]
        var podCIDRs: [String]
    }

    /// The `info` map of a verbose Status, each value JSON, in containerd's keys.
    private func verboseInfo(_ report: ReadinessReport) -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func json(_ value: some Encodable) -> String {
            (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
        }
        let cidrs = podCIDR
        return [
            "config": configJSON(json(configuration)),
            "runtimeConfig": json(VerboseRuntimeConfig(podCIDRs: cidrs, cgroupDriver: configuration.cgroupDriver.rawValue)),
            "cniconfig": json(VerboseCNIConfig(confDir: configuration.cniConfDir, binDirs: configuration.cniBinDirs,
                                               networks: report.cni.networks, errors: report.cni.errors, podCIDRs: cidrs)),
            "lastCNILoadStatus": json(report.network.ready ? "OK" : report.network.message),
            "cgroups": json(report.cgroups),
            "version": json(["runtimeName": BuildInfo.runtimeName, "runtimeVersion": BuildInfo.version]),
        ]
    }
}

extension RuntimeServiceHandler {
    /// The configuration's JSON with containerd's `rootDir` and `stateDir` added: critest (and
    /// other tools written against containerd) find the runtime's directories by those names.
    func configJSON(_ encoded: String) -> String {
        guard var object = (try? JSONSerialization.jsonObject(with: Data(encoded.utf8))) as? [String: Any] else { return encoded }
        object["rootDir"] = configuration.root
        object["stateDir"] = configuration.state
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return encoded }
        return String(decoding: data, as: UTF8.self)
    }
}

/// CIDR syntax checks.
enum CIDR {
    static func isValid(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let bits = Int(parts[1]) else { return false }
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, String(parts[0]), &v4) == 1 { return (0...32).contains(bits) }
        if inet_pton(AF_INET6, String(parts[0]), &v6) == 1 { return (0...128).contains(bits) }
        return false
    }
}
