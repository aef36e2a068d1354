import CRI
import Foundation
import KubeClient
import SwiftletTestSupport
@testable import KubeNode

// Helpers shared by the KubeNode tests: pods, containers and a stand-in for the API objects.

/// A pod with `containers`, namespace `ns`, name `web`, UID `uid-1`.
func makePod(name: String = "web", namespace: String = "ns", uid: String = "uid-1", labels: [String: String]? = nil,
             annotations: [String: String]? = nil, containers: [ContainerSpec],
             initContainers: [ContainerSpec]? = nil, configure: (inout PodSpec) -> Void = { _ in }) -> Pod {
    var metadata = ObjectMeta(name: name, namespace: namespace, labels: labels, annotations: annotations)
    metadata.uid = uid
    var spec = PodSpec(initContainers: initContainers, containers: containers)
    configure(&spec)
    return Pod(metadata: metadata, spec: spec)
}

/// A container named `name` with the given requests and limits (nil: none).
func makeContainer(_ name: String = "app", image: String = "busybox:1.36", requests: [String: String]? = nil,
                   limits: [String: String]? = nil) -> ContainerSpec {
    let resources = requests == nil && limits == nil ? nil : ResourceRequirements(limits: limits, requests: requests)
    return ContainerSpec(name: name, image: image, resources: resources)
}

/// The API objects a test pod refers to, held in memory: a test double for the API server.
struct FakeObjects: ClusterObjects {
    var configMaps: [String: ConfigMap] = [:]
    var secrets: [String: Secret] = [:]
    var services: [(String, String)] = []
    var token = "token-1"

    func configMap(namespace: String, name: String) async throws(NodeError) -> ConfigMap? { configMaps["\(namespace)/\(name)"] }
    func secret(namespace: String, name: String) async throws(NodeError) -> Secret? { secrets["\(namespace)/\(name)"] }
    func serviceAccountToken(pod: Pod, audience: String?, expirationSeconds: Int64) async throws(NodeError) -> String { token }
    func serviceEnvironment(namespace: String, serviceLinks: Bool) async -> [(String, String)] { serviceLinks ? services : [] }

    mutating func add(configMap name: String, namespace: String = "ns", data: [String: String]) {
        configMaps["\(namespace)/\(name)"] = ConfigMap(metadata: ObjectMeta(name: name, namespace: namespace), data: data)
    }

    /// A secret whose `data` holds `values` base64-encoded, as the API returns it.
    mutating func add(secret name: String, namespace: String = "ns", values: [String: String]) {
        secrets["\(namespace)/\(name)"] = Secret(metadata: ObjectMeta(name: name, namespace: namespace),
                                                 data: values.mapValues { Data($0.utf8).base64EncodedString() })
    }
}

/// A CRI container status for container `name`'s attempt `attempt`.
func criStatus(_ name: String, attempt: UInt32 = 0, state: CRI.ContainerState, exitCode: Int32 = 0, reason: String = "",
               message: String = "", startedAt: Int64 = 1_700_000_000_000_000_000, finishedAt: Int64 = 0,
               id: String? = nil) -> CRI.ContainerStatus {
    CRI.ContainerStatus(id: id ?? "\(name)-\(attempt)", metadata: ContainerMetadata(name: name, attempt: attempt), state: state,
                        createdAt: startedAt, startedAt: state == .containerCreated ? 0 : startedAt,
                        finishedAt: state == .containerExited ? (finishedAt == 0 ? startedAt + 1_000_000_000 : finishedAt) : 0,
                        exitCode: exitCode, imageRef: "sha256:abc", reason: reason, message: message)
}

/// Runtime state with one ready sandbox (IP `10.88.0.5`) and `containers`.
func podState(_ containers: [CRI.ContainerStatus], ip: String = "10.88.0.5") -> RuntimeCalls.PodState {
    var state = RuntimeCalls.PodState()
    state.sandboxes = [PodSandbox(id: "sandbox-1", state: .sandboxReady, createdAt: 1)]
    state.sandboxStatus = PodSandboxStatus(id: "sandbox-1", state: .sandboxReady, network: PodSandboxNetworkStatus(ip: ip))
    state.containers = containers
    return state
}

/// Whether `path` is a mount point (its device differs from its parent's).
func isMountPoint(_ path: String) -> Bool {
    var own = stat(), parent = stat()
    guard stat(path, &own) == 0, stat(path + "/..", &parent) == 0 else { return false }
    return own.st_dev != parent.st_dev
}

/// The file at `path` as text (nil when it cannot be read).
func readText(_ path: String) -> String? {
    FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
}

/// The permission bits of `path` (following links).
func permissions(_ path: String) -> Int {
    var info = stat()
    guard stat(path, &info) == 0 else { return -1 }
    return Int(info.st_mode & 0o7777)
}

/// A /proc file read to its end (Foundation stops /proc files after their first page).
func readProcFile(_ path: String) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
