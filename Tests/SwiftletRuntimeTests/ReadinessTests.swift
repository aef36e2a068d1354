import Containerizer
import Foundation
import SwiftletConfig
import SwiftletTestSupport
import Testing
@testable import SwiftletRuntime

@Suite("CNI config discovery")
struct CNIConfigProbeTests {
    static let conflist = """
        {"cniVersion": "1.0.0", "name": "swiftlet-pods", "plugins": [
          {"type": "bridge", "bridge": "swl0", "ipam": {"type": "host-local"}}, {"type": "portmap"}]}
        """

    @Test("an empty or missing directory has no pod network")
    func none() throws {
        let tree = try TemporaryTree()
        let probe = CNIConfigProbe(confDir: try tree.directory("net.d"), binDirs: [tree.path])
        #expect(probe.scan().podNetwork == nil)
        #expect(CNIConfigProbe(confDir: tree.path + "/absent", binDirs: []).scan().errors.count == 1)
    }

    @Test("the first valid file in lexical order is the pod network, if its plugins exist")
    func firstValid() throws {
        let tree = try TemporaryTree()
        try tree.write("net.d/10-broken.conf", "{not json")
        try tree.write("net.d/20-pods.conflist", Self.conflist)
        try tree.write("net.d/30-other.conf", #"{"cniVersion": "0.4.0", "name": "other", "type": "loopback"}"#)
        try tree.write("net.d/README", "ignored")
        for plugin in ["bridge", "portmap", "loopback"] {
            try tree.write("bin/\(plugin)", "#!/bin/sh\n", mode: 0o755)
        }
        let result = CNIConfigProbe(confDir: tree.path + "/net.d", binDirs: [tree.path + "/bin"]).scan()
        #expect(result.networks.map(\.name) == ["swiftlet-pods", "other"])
        #expect(result.networks[0].plugins == ["bridge", "portmap"])
        #expect(result.podNetwork?.name == "swiftlet-pods")
        #expect(result.errors.count == 1 && result.errors[0].contains("10-broken.conf"))
    }

    @Test("a network whose plugin binary is missing is not the pod network")
    func missingPlugin() throws {
        let tree = try TemporaryTree()
        try tree.write("net.d/20-pods.conflist", Self.conflist)
        try tree.write("bin/bridge", "#!/bin/sh\n", mode: 0o755)
        let result = CNIConfigProbe(confDir: tree.path + "/net.d", binDirs: [tree.path + "/bin"]).scan()
        #expect(result.networks.first?.missingPlugins == ["portmap"])
        #expect(result.podNetwork == nil)
    }
}

@Suite("readiness conditions")
struct ReadinessTests {
    @Test("RuntimeReady names an unusable state directory")
    func stateDirectory() throws {
        let tree = try TemporaryTree()
        var configuration = SwiftletConfiguration()
        configuration.root = try tree.directory("root")
        configuration.state = tree.path + "/absent-state"
        let report = ReadinessProbe(configuration: configuration).check()
        #expect(!report.runtime.ready)
        #expect(report.runtime.reason == "DirectoryNotWritable")
        #expect(report.runtime.message.contains("absent-state"))
    }

    @Test("RuntimeReady says why when cgroup controllers are missing")
    func cgroups() throws {
        let tree = try TemporaryTree()
        var configuration = SwiftletConfiguration()
        configuration.root = try tree.directory("root")
        configuration.state = try tree.directory("state")
        let mountinfo = try tree.write("mountinfo", "29 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
        let report = ReadinessProbe(configuration: configuration, podSandboxesSupported: true, mountinfoPath: mountinfo).check()
        #expect(report.runtime.reason == "CgroupControllersMissing")
        #expect(report.runtime.message.contains("cpu, pids"))
    }

    @Test("with usable directories and cgroups, RuntimeReady is false only for want of pod sandboxes")
    func sandboxes() throws {
        let tree = try TemporaryTree()
        var configuration = SwiftletConfiguration()
        configuration.root = try tree.directory("root")
        configuration.state = try tree.directory("state")
        let mountinfo = try tree.write("mountinfo", hybridMountinfo)
        let notYet = ReadinessProbe(configuration: configuration, mountinfoPath: mountinfo).check()
        #expect(notYet.runtime.reason == "PodSandboxNotSupported")
        let able = ReadinessProbe(configuration: configuration, podSandboxesSupported: true, mountinfoPath: mountinfo).check()
        #expect(able.runtime == .ready)
    }

    @Test("NetworkReady follows the CNI config directory")
    func network() throws {
        let tree = try TemporaryTree()
        var configuration = SwiftletConfiguration()
        configuration.cniConfDir = try tree.directory("net.d")
        configuration.cniBinDirs = [try tree.directory("bin")]
        // One probe throughout: its cached scan must follow every change.
        let probe = ReadinessProbe(configuration: configuration)
        let before = probe.check().network
        #expect(!before.ready && before.reason == "NetworkPluginNotReady" && before.message.contains("no network config found"))
        try tree.write("net.d/10-lo.conf", #"{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}"#)
        #expect(probe.check().network.message.contains("loopback"))
        try tree.write("bin/loopback", "#!/bin/sh\n", mode: 0o755)
        #expect(probe.check().network == .ready)
        try tree.write("net.d/10-lo.conf", #"{"cniVersion": "1.0.0", "name": "lo", "type": "no-such-plugin"}"#)
        #expect(!probe.check().network.ready)
        try FileManager.default.removeItem(atPath: tree.path + "/net.d/10-lo.conf")
        #expect(probe.check().network.message.contains("no network config found"))
    }

}

/// As on the test machines: v1 controllers, and cgroup2 with only hugetlb.
let hybridMountinfo = """
    25 31 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
    26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
    28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
    29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
    30 25 0:27 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
    """
