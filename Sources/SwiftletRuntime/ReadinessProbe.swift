import Containerizer
import Foundation
import Synchronization
import SwiftletConfig

/// One readiness condition's value.
public struct Readiness: Sendable, Equatable {
    public var ready: Bool
    /// CamelCase, empty when ready (as containerd reports).
    public var reason: String
    public var message: String

    public static let ready = Readiness(ready: true, reason: "", message: "")

    public init(ready: Bool, reason: String, message: String) {
        self.ready = ready
        self.reason = reason
        self.message = message
    }
}

/// The Status conditions and what they were computed from.
public struct ReadinessReport: Sendable {
    public var runtime: Readiness
    public var network: Readiness
    public var cgroups: CgroupLayout
    public var cni: CNIConfigProbe.Result
}

/// Decides RuntimeReady and NetworkReady from real signals.
///
/// RuntimeReady needs: the root and state directories writable, the cgroup controllers a
/// container needs (cpu, memory, pids, on v1 or v2), and the ability to run pod sandboxes
/// — which this build does not have yet, so RuntimeReady is false with reason
/// `PodSandboxNotSupported` until the runtime issue lands. NetworkReady needs a valid CNI
/// network config whose plugins exist.
///
/// Status is polled (the kubelet every few seconds, crictl, monitoring), so the expensive
/// parts are cached: the cgroup layout for ``cgroupLayoutTTL``, and the CNI scan until the
/// config directory, a config file or a plugin directory changes (by mtime and size).
public final class ReadinessProbe: Sendable {
    public let configuration: SwiftletConfiguration
    /// Whether this build can create pod sandboxes.
    public let podSandboxesSupported: Bool
    /// Where mountinfo is read (a file tree in tests).
    public let mountinfoPath: String
    /// How long a parsed cgroup layout is reused: hierarchies are mounted at boot.
    public static let cgroupLayoutTTL: Duration = .seconds(30)

    private struct Cache {
        var cgroups: (layout: CgroupLayout, at: ContinuousClock.Instant)?
        var cni: (fingerprint: [String], result: CNIConfigProbe.Result)?
    }
    private let cache = Mutex(Cache())
    private let cniProbe: CNIConfigProbe

    public init(configuration: SwiftletConfiguration, podSandboxesSupported: Bool = false,
                mountinfoPath: String = "/proc/self/mountinfo") {
        self.configuration = configuration
        self.podSandboxesSupported = podSandboxesSupported
        self.mountinfoPath = mountinfoPath
        self.cniProbe = CNIConfigProbe(confDir: configuration.cniConfDir, binDirs: configuration.cniBinDirs)
    }

    public func check() -> ReadinessReport {
        let cgroups = cgroupLayout()
        let cni = cniResult()
        return ReadinessReport(runtime: runtimeReadiness(cgroups), network: networkReadiness(cni), cgroups: cgroups, cni: cni)
    }

    private func cgroupLayout() -> CgroupLayout {
        let now = ContinuousClock.now
        if let cached = cache.withLock({ $0.cgroups }), now - cached.at < Self.cgroupLayoutTTL {
            return cached.layout
        }
        let layout = CgroupLayout.parse(mountinfo: CgroupLayout.readFile(mountinfoPath) ?? "", readFile: CgroupLayout.readFile)
        cache.withLock { $0.cgroups = (layout, now) }
        return layout
    }

    private func cniResult() -> CNIConfigProbe.Result {
        let fingerprint = cniProbe.fingerprint()
        if let cached = cache.withLock({ $0.cni }), cached.fingerprint == fingerprint {
            return cached.result
        }
        let result = cniProbe.scan()
        cache.withLock { $0.cni = (fingerprint, result) }
        return result
    }

    private func runtimeReadiness(_ cgroups: CgroupLayout) -> Readiness {
        for (name, path) in [("root", configuration.root), ("state", configuration.state)] {
            if access(path, W_OK | X_OK) != 0 {
                let reason = String(cString: strerror(errno))
                return Readiness(ready: false, reason: "DirectoryNotWritable",
                                 message: "\(name) directory \(path) is not usable: \(reason)")
            }
        }
        let missing = cgroups.missingControllers
        if !missing.isEmpty {
            return Readiness(ready: false, reason: "CgroupControllersMissing",
                             message: "no cgroup v1 or v2 hierarchy offers \(missing.joined(separator: ", "))")
        }
        if !podSandboxesSupported {
            return Readiness(ready: false, reason: "PodSandboxNotSupported",
                             message: "this swiftlet build serves the CRI but cannot run pod sandboxes yet (RunPodSandbox answers UNIMPLEMENTED)")
        }
        return .ready
    }

    private func networkReadiness(_ cni: CNIConfigProbe.Result) -> Readiness {
        if cni.podNetwork != nil { return .ready }
        let confDir = configuration.cniConfDir
        if let network = cni.networks.first {
            return Readiness(ready: false, reason: "NetworkPluginNotReady",
                             message: "cni plugin not initialized: network \(network.name) (\(network.file)) needs plugins \(network.missingPlugins.joined(separator: ", ")) not found in \(configuration.cniBinDirs.joined(separator: ":"))")
        }
        let detail = cni.errors.isEmpty ? "no network config found in \(confDir)" : cni.errors.joined(separator: "; ")
        return Readiness(ready: false, reason: "NetworkPluginNotReady", message: "cni plugin not initialized: \(detail)")
    }


}
