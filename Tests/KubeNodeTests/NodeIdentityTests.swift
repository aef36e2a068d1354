import Foundation
import KubeClient
import SwiftletTestSupport
import Testing
@testable import KubeNode

@Suite struct NodeIdentityTests {
    @Test(arguments: ["a", "node-1", "node-1.example.com", "1node", "10.0.0.1", String(repeating: "a", count: 63)])
    func validSubdomains(_ name: String) {
        #expect(NodeIdentity.isDNSSubdomain(name))
    }

    @Test(arguments: ["", "-node", "node-", "Node", "node..a", ".node", "node.", "node_1", "nöde", "node 1",
                      String(repeating: "a.", count: 127) + "a"])
    func invalidSubdomains(_ name: String) {
        #expect(!NodeIdentity.isDNSSubdomain(name))
    }

    @Test
    func aLongLabelIsAValidSubdomain() {
        #expect(NodeIdentity.isDNSSubdomain(String(repeating: "a", count: 64) + ".example"))
    }

    @Test func goArchitectures() {
        #expect(NodeIdentity.goArchitecture("x86_64") == "amd64")
        #expect(NodeIdentity.goArchitecture("aarch64") == "arm64")
        #expect(NodeIdentity.goArchitecture("armv7l") == "arm")
        #expect(NodeIdentity.goArchitecture("armv6l") == "arm")
        #expect(NodeIdentity.goArchitecture("ppc64le") == "ppc64le")
        #expect(NodeIdentity.goArchitecture("s390x") == "s390x")
        #expect(NodeIdentity.goArchitecture("riscv64") == "riscv64")
    }

    @Test
    func thirtyTwoBitX86IsGo386() {
        #expect(NodeIdentity.goArchitecture("i686") == "386")
        #expect(NodeIdentity.goArchitecture("i386") == "386")
    }

    @Test func osImageIsThePrettyName() throws {
        let tree = try TemporaryTree()
        let quoted = try tree.write("os-release", "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n")
        #expect(NodeIdentity.osImage(quoted) == "Debian GNU/Linux 12 (bookworm)")
        let single = try tree.write("single", "ID=alpine\nPRETTY_NAME='Alpine Linux v3.19'\n")
        #expect(NodeIdentity.osImage(single) == "Alpine Linux v3.19")
        let bare = try tree.write("bare", "PRETTY_NAME=Plain\n")
        #expect(NodeIdentity.osImage(bare) == "Plain")
        let without = try tree.write("without", "NAME=Thing\n")
        #expect(NodeIdentity.osImage(without) == "Linux")
        #expect(NodeIdentity.osImage(tree.path + "/missing") == "Linux")
    }

    @Test func ipAddresses() {
        #expect(NodeIdentity.isIPAddress("192.0.2.1"))
        #expect(NodeIdentity.isIPAddress("fd00::1"))
        #expect(!NodeIdentity.isIPAddress("192.0.2"))
        #expect(!NodeIdentity.isIPAddress("node-a"))
        #expect(!NodeIdentity.isIPAddress(""))
    }

    /// A root with the files `detect` reads, the default route on `lo`.
    func fakeRoot() throws -> TemporaryTree {
        let tree = try TemporaryTree()
        try tree.write("etc/machine-id", "0123456789abcdef0123456789abcdef\n")
        try tree.write("etc/os-release", "PRETTY_NAME=\"Test OS 1\"\n")
        try tree.write("sys/class/dmi/id/product_uuid", "ABCDEF01-2345-6789-ABCD-EF0123456789\n")
        try tree.write("proc/sys/kernel/random/boot_id", "11111111-2222-3333-4444-555555555555\n")
        try tree.write("proc/net/route", """
            Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
            lo\t00000000\t0100007F\t0003\t0\t0\t0\t00000000\t0\t0\t0

            """)
        return tree
    }

    @Test func detectReadsTheMachine() throws {
        let root = try fakeRoot()
        let identity = try NodeIdentity.detect(hostnameOverride: "Test-Node.Example", nodeIP: nil, runtimeVersion: "0.9.1", root: root.path)
        #expect(identity.name == "test-node.example")
        #expect(identity.internalIP == "127.0.0.1")  // the default route's interface (lo here)
        let info = identity.systemInfo
        #expect(info.machineID == "0123456789abcdef0123456789abcdef")
        #expect(info.systemUUID == "abcdef01-2345-6789-abcd-ef0123456789")
        #expect(info.bootID == "11111111-2222-3333-4444-555555555555")
        #expect(info.osImage == "Test OS 1")
        #expect(info.containerRuntimeVersion == "swiftlet://0.9.1")
        #expect(info.kubeletVersion == NodeIdentity.kubeletVersion)
        #expect(info.operatingSystem == "linux")
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let machine = withUnsafeBytes(of: names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        #expect(info.kernelVersion == release)
        #expect(info.architecture == NodeIdentity.goArchitecture(machine))
        #expect(identity.addresses.first == NodeAddress(type: "InternalIP", address: "127.0.0.1"))
    }

    @Test func detectOnThisMachineWithANodeIP() throws {
        let identity = try NodeIdentity.detect(hostnameOverride: nil, nodeIP: "192.0.2.77", runtimeVersion: "1")
        #expect(identity.internalIP == "192.0.2.77")
        #expect(identity.addresses == [NodeAddress(type: "InternalIP", address: "192.0.2.77"),
                                       NodeAddress(type: "Hostname", address: identity.hostname)])
        #expect(identity.name == identity.hostname.lowercased())
        #expect(NodeIdentity.isDNSSubdomain(identity.name))
        let bootID = try String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)
        #expect(identity.systemInfo.bootID == bootID.trimmingCharacters(in: .whitespacesAndNewlines))
        let v6 = try NodeIdentity.detect(hostnameOverride: "n", nodeIP: "fd00::10", runtimeVersion: "1")
        #expect(v6.internalIP == "fd00::10")
    }

    @Test func detectRefusesBadNamesAndAddresses() throws {
        let root = try fakeRoot()
        #expect(throws: NodeError.self) { try NodeIdentity.detect(hostnameOverride: "bad_name", nodeIP: "192.0.2.1", runtimeVersion: "1") }
        #expect(throws: NodeError.self) { try NodeIdentity.detect(hostnameOverride: "node", nodeIP: "not-an-ip", runtimeVersion: "1") }
        // No default route and no --node-ip: another address of the machine (loopback at worst).
        let noRoute = try TemporaryTree()
        try noRoute.write("proc/net/route", "Iface\tDestination\tGateway\n")
        let fallback = try NodeIdentity.detect(hostnameOverride: "node", nodeIP: nil, runtimeVersion: "1", root: noRoute.path)
        #expect(NodeIdentity.isIPAddress(fallback.internalIP))
        // Missing files are empty fields, not errors.
        let bare = try TemporaryTree()
        try bare.write("proc/net/route", try String(contentsOfFile: root.path + "/proc/net/route", encoding: .utf8))
        let identity = try NodeIdentity.detect(hostnameOverride: "node", nodeIP: nil, runtimeVersion: "1", root: bare.path)
        #expect(identity.systemInfo.machineID == "" && identity.systemInfo.osImage == "Linux")
    }

    @Test
    func hostnameOverrideIsTheReportedHostname() throws {
        let identity = try NodeIdentity.detect(hostnameOverride: "Override-Name", nodeIP: "192.0.2.77", runtimeVersion: "1")
        #expect(identity.hostname == "override-name")
        #expect(identity.addresses.last == NodeAddress(type: "Hostname", address: "override-name"))
        #expect(NodeStatusBuilder.labels(identity: identity, extra: [:])["kubernetes.io/hostname"] == "override-name")
    }
}
