import CRI
import Foundation
import KubeClient
import SwiftletTestSupport
import Testing
@testable import KubeNode

/// `hostUsers: false` pods: the kubelet's ranges (65536 × n, 65536 long), kept in the pod's
/// directory, given to the sandbox, every container and every mount.
@Suite struct PodUserNamespacesTests {
    func pod(_ uid: String, hostUsers: Bool? = false) -> Pod {
        makePod(uid: uid, containers: [makeContainer()]) { $0.hostUsers = hostUsers }
    }

    @Test func rangesAreDistinctKeptAndFreedWithThePodsDirectory() throws {
        let tree = try TemporaryTree(prefix: "swiftlet-userns")
        let namespaces = PodUserNamespaces(podsRoot: tree.path + "/pods", maxPods: 3)
        let first = try #require(try namespaces.allocate(for: pod("a")))
        let second = try #require(try namespaces.allocate(for: pod("b")))
        #expect(first == IDMapping(hostId: 65536, containerId: 0, length: 65536))
        #expect(second.hostId == 131072)
        // The same pod keeps its range, also for a fresh allocator (an agent restart).
        #expect(try namespaces.allocate(for: pod("a")) == first)
        #expect(PodUserNamespaces(podsRoot: tree.path + "/pods", maxPods: 3).mapping(for: pod("a")) == first)
        let record = try String(contentsOfFile: tree.path + "/pods/a/userns", encoding: .utf8)
        #expect(record.contains("\"uidMappings\"") && record.contains("\"gidMappings\"") && record.contains("\"hostId\":65536"))
        // Pods using the host's user namespace get nothing.
        #expect(try namespaces.allocate(for: pod("c", hostUsers: nil)) == nil)
        #expect(try namespaces.allocate(for: pod("d", hostUsers: true)) == nil)
        // The third range, then none left; a removed pod directory frees its range.
        #expect(try namespaces.allocate(for: pod("e"))?.hostId == 3 * 65536)
        #expect(throws: PodUserNamespaces.Failure.self) { try namespaces.allocate(for: pod("f")) }
        try FileManager.default.removeItem(atPath: tree.path + "/pods/b")
        #expect(try namespaces.allocate(for: pod("f"))?.hostId == 131072)
    }

    @Test func theSandboxEveryContainerAndEveryMountGetTheMapping() {
        let mapping = IDMapping(hostId: 65536, containerId: 0, length: 65536)
        let pod = pod("a")
        var config = PodRuntimeConfig(pod: pod, podLogsDir: "/var/log/pods", memoryCapacity: 1 << 30, podCgroupRoot: "/kubepods")
        config.userNamespace = mapping
        let options = config.sandboxConfig(attempt: 0).linux?.securityContext?.namespaceOptions?.usernsOptions
        #expect(options == UserNamespace(mode: .pod, uids: [mapping], gids: [mapping]))
        let spec = pod.spec!.containers[0]
        let container = config.containerConfig(spec, restartCount: 0, imageRef: "sha256:1", env: [],
                                               mounts: [CRI.Mount(containerPath: "/data", hostPath: "/var/lib/x")],
                                               hash: PodRuntimeConfig.hash(spec))
        #expect(container.linux?.securityContext?.namespaceOptions?.usernsOptions == options)
        #expect(container.mounts.first?.uidMappings == [mapping] && container.mounts.first?.gidMappings == [mapping])
        // Without one: no options, plain mounts.
        config.userNamespace = nil
        #expect(config.sandboxConfig(attempt: 0).linux?.securityContext?.namespaceOptions?.usernsOptions == nil)
    }
}
