import CRI
import Containerizer
import Testing
@testable import SwiftletRuntime

/// What a pod's user namespace options mean (the kubelet's `hostUsers: false`), and what is
/// refused, as critest's UserNamespaces specs expect.
@Suite("pod user namespaces")
struct UserNamespaceTests {
    static let mapping = [IDMapping(hostId: 65536, containerId: 0, length: 65536)]

    static func config(_ userns: UserNamespace?, network: NamespaceMode = .pod, privileged: Bool = false) -> PodSandboxConfig {
        var options = NamespaceOption(network: network, pid: .container, ipc: .pod)
        options.usernsOptions = userns
        var security = LinuxSandboxSecurityContext()
        security.namespaceOptions = options
        security.privileged = privileged
        var linux = LinuxPodSandboxConfig()
        linux.securityContext = security
        var config = PodSandboxConfig()
        config.linux = linux
        return config
    }

    @Test("no options and NODE mode are the host's user namespace")
    func host() throws {
        #expect(try PodUserNamespace.of(Self.config(nil)) == nil)
        #expect(try PodUserNamespace.of(Self.config(UserNamespace(mode: .node))) == nil)
    }

    @Test("POD mode with one mapping per kind is the pod's own", .enabled(if: PodUserNamespace.supported))
    func pod() throws {
        let gids = [IDMapping(hostId: 131072, containerId: 0, length: 65536)]
        let userns = try #require(try PodUserNamespace.of(Self.config(UserNamespace(mode: .pod, uids: Self.mapping, gids: gids))))
        #expect(userns.uid == NamespacePins.IDMap(containerID: 0, hostID: 65536, length: 65536))
        #expect(userns.gid.hostID == 131072)
        #expect(userns.matches(uids: Self.mapping, gids: gids))
        #expect(!userns.matches(uids: Self.mapping, gids: Self.mapping))
    }

    @Test("what cannot be done is INVALID_ARGUMENT, saying why", .enabled(if: PodUserNamespace.supported),
          arguments: [
              ("two mappings", UserNamespace(mode: .pod, uids: mapping + [IDMapping(hostId: 200_000, containerId: 0, length: 10)], gids: mapping), "exactly one"),
              ("0 unmapped", UserNamespace(mode: .pod, uids: [IDMapping(hostId: 65536, containerId: 1, length: 65536)], gids: mapping), "container id 0"),
              ("no gids", UserNamespace(mode: .pod, uids: mapping), "exactly one gid"),
              ("empty", UserNamespace(mode: .pod, uids: [IDMapping(hostId: 65536, containerId: 0, length: 0)], gids: mapping), "empty"),
              ("overflow", UserNamespace(mode: .pod, uids: [IDMapping(hostId: UInt32.max - 5, containerId: 0, length: 10)], gids: mapping), "past the last id"),
              ("host root", UserNamespace(mode: .pod, uids: [IDMapping(hostId: 0, containerId: 0, length: 65536)], gids: mapping), "host's root"),
              ("CONTAINER", UserNamespace(mode: .container), "not supported"),
              ("TARGET", UserNamespace(mode: .target), "not supported"),
              ("NODE with mappings", UserNamespace(mode: .node, uids: mapping, gids: mapping), "takes no"),
          ])
    func refused(_ name: String, _ userns: UserNamespace, _ words: String) {
        do {
            _ = try PodUserNamespace.of(Self.config(userns))
            Issue.record("\(name) was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains(words), "\(error.message)")
        }
    }

    @Test("the host's network or a privileged sandbox cannot have one", .enabled(if: PodUserNamespace.supported))
    func hostNamespaces() {
        let userns = UserNamespace(mode: .pod, uids: Self.mapping, gids: Self.mapping)
        #expect(throws: CRIError.self) { try PodUserNamespace.of(Self.config(userns, network: .node)) }
        #expect(throws: CRIError.self) { try PodUserNamespace.of(Self.config(userns, privileged: true)) }
    }
}
