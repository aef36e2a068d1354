import Foundation
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
public struct ReadinessProbe: Sendable {
    public var configuration: SwiftletConfiguration
    /// Whether this build can create pod sandboxes.
    public var podSandboxesSupported: Bool
    /// Where mountinfo is read (a file tree in tests).
    public var mountinfoPath: String

    public init(configuration: SwiftletConfiguration, podSandboxesSupported: Bool = false,
                mountinfoPath: String = "/proc/self/mountinfo") {
        self.configuration = configuration
        self.podSandboxesSupported = podSandboxesSupported
        self.mountinfoPath = mountinfoPath
    }

    public func check() -> ReadinessReport {
        let cgroups = CgroupLayout.parse(mountinfo: Self.read(mountinfoPath) ?? "", readFile: Self.read)
        let cni = CNIConfigProbe(confDir: configuration.cniConfDir, binDirs: configuration.cniBinDirs).scan()
        return ReadinessReport(runtime: runtimeReadiness(cgroups), network: networkReadiness(cni), cgroups: cgroups, cni: cni)
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

    static func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
