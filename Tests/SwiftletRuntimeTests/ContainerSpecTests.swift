import CRI
import Containerizer
import Foundation
import ImageStore
import SwiftletTestSupport
import Testing
@testable import SwiftletRuntime

/// CRI container configs over image configs: the rules the kubelet expects of a runtime.
@Suite("container spec")
struct ContainerSpecTests {
    let tree: TemporaryTree
    let rootfs: String

    init() throws {
        tree = try TemporaryTree(prefix: "swiftlet-spec")
        rootfs = try tree.directory("rootfs")
        _ = try tree.write("rootfs/etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n")
        _ = try tree.write("rootfs/etc/group", "root:x:0:\napp:x:1001:\nwheel:x:10:app,other\naudio:x:29:app\n")
    }

    func imageConfig(_ json: String) throws -> ImageConfiguration.Config {
        try JSONDecoder().decode(ImageConfiguration.Config.self, from: Data(json.utf8))
    }

    func spec(_ config: CRI.ContainerConfig, image: String = "{}", sandbox: PodSandboxConfig = PodSandboxConfig(
        metadata: PodSandboxMetadata(name: "pod", uid: "u", namespace: "ns"), hostname: "podhost", logDirectory: "/var/log/pods/x")) throws -> ContainerSpec {
        ContainerSpec(config: config, sandbox: SandboxRecord(id: "s1", name: "pod", createdAt: 0, state: .ready, config: sandbox),
                      imageConfig: try imageConfig(image), rootfs: rootfs, pins: NamespacePins(directory: "/pins"),
                      podDirectory: "/pod", cgroupParent: "/kubepods/pod1", podPIDHolder: 42, targetPID: { $0 == "other" ? 77 : nil })
    }

    @Test("command replaces the entrypoint and drops the image's cmd; args replace the cmd", arguments: [
        ([], [], ["/ep", "e1", "c1"]),
        (["/bin/sh"], [], ["/bin/sh"]),
        ([], ["a1"], ["/ep", "e1", "a1"]),
        (["/bin/sh", "-c"], ["echo"], ["/bin/sh", "-c", "echo"]),
    ])
    func arguments(command: [String], args: [String], expected: [String]) throws {
        let launch = try spec(CRI.ContainerConfig(command: command, args: args),
                              image: #"{"Entrypoint":["/ep","e1"],"Cmd":["c1"]}"#).build()
        #expect(launch.args == expected)
    }

    @Test("no command anywhere is INVALID_ARGUMENT")
    func noCommand() throws {
        #expect(throws: CRIError.self) { try spec(CRI.ContainerConfig()).build() }
    }

    @Test("env: the image's, then the config's replacing the same keys; HOME and HOSTNAME added")
    func environment() throws {
        let launch = try spec(CRI.ContainerConfig(command: ["x"], envs: [KeyValue(key: "B", value: "config"), KeyValue(key: "C", value: "3")]),
                              image: #"{"Env":["PATH=/bin","A=1","B=image"],"User":"app"}"#).build()
        #expect(launch.env == ["PATH=/bin", "A=1", "B=config", "C=3", "HOSTNAME=podhost", "HOME=/home/app"])
    }

    @Test("users: names from the image's passwd, groups from its group file plus supplemental groups (the primary group first, as containerd)")
    func users() throws {
        var launch = try spec(CRI.ContainerConfig(command: ["x"]), image: #"{"User":"app"}"#).build()
        #expect(launch.user == .init(uid: 1000, gid: 1001, additionalGids: [1001, 10, 29]))
        var security = LinuxContainerSecurityContext(runAsUser: Int64Value(value: 1234), runAsGroup: Int64Value(value: 5), supplementalGroups: [7])
        launch = try spec(CRI.ContainerConfig(command: ["x"], linux: LinuxContainerConfig(securityContext: security)), image: #"{"User":"app"}"#).build()
        #expect(launch.user == .init(uid: 1234, gid: 5, additionalGids: [5, 7]))
        security = LinuxContainerSecurityContext(supplementalGroups: [7], supplementalGroupsPolicy: .strict)
        launch = try spec(CRI.ContainerConfig(command: ["x"], linux: LinuxContainerConfig(securityContext: security)), image: #"{"User":"app"}"#).build()
        #expect(launch.user == .init(uid: 1000, gid: 1001, additionalGids: [1001, 7]))
        launch = try spec(CRI.ContainerConfig(command: ["x"]), image: #"{"User":"1000:audio"}"#).build()
        #expect(launch.user.uid == 1000 && launch.user.gid == 29)
        security = LinuxContainerSecurityContext(runAsUsername: "nobody")
        #expect(throws: CRIError.self) {
            try spec(CRI.ContainerConfig(command: ["x"], linux: LinuxContainerConfig(securityContext: security))).build()
        }
    }

    @Test("capabilities: add/drop with or without CAP_, ALL in either list")
    func capabilities() throws {
        func caps(add: [String], drop: [String]) throws -> Capabilities {
            try spec(CRI.ContainerConfig(command: ["x"], linux: LinuxContainerConfig(securityContext: LinuxContainerSecurityContext(
                capabilities: Capability(addCapabilities: add, dropCapabilities: drop))))).build().capabilities
        }
        #expect(try caps(add: ["NET_ADMIN"], drop: ["CAP_CHOWN"]).nameList.contains("CAP_NET_ADMIN"))
        #expect(try !caps(add: ["NET_ADMIN"], drop: ["CAP_CHOWN"]).nameList.contains("CAP_CHOWN"))
        #expect(try caps(add: [], drop: ["ALL"]).nameList == [])
        #expect(try caps(add: ["SYS_TIME"], drop: ["ALL"]).nameList == ["CAP_SYS_TIME"])
        #expect(try caps(add: ["ALL"], drop: []) == .all)
        #expect(throws: CRIError.self) { try caps(add: ["NOT_A_CAP"], drop: []) }
    }

    @Test("seccomp: the profile field, else the older path; unconfined when neither")
    func seccomp() throws {
        func profile(_ security: LinuxContainerSecurityContext) throws -> SeccompProfile {
            try spec(CRI.ContainerConfig(command: ["x"], linux: LinuxContainerConfig(securityContext: security))).build().seccomp
        }
        #expect(try profile(LinuxContainerSecurityContext()) == .unconfined)
        #expect(try profile(LinuxContainerSecurityContext(seccomp: SecurityProfile(profileType: .runtimedefault))) == .runtimeDefault)
        #expect(try profile(LinuxContainerSecurityContext(seccompProfilePath: "runtime/default")) == .runtimeDefault)
        #expect(try profile(LinuxContainerSecurityContext(seccompProfilePath: "localhost//etc/p.json")) == .localhost("/etc/p.json"))
        #expect(throws: CRIError.self) { try profile(LinuxContainerSecurityContext(seccompProfilePath: "weird")) }
    }

    @Test("namespaces: the pod's network, IPC and UTS; PID by mode; the pod's files mounted")
    func namespaces() throws {
        func pid(_ mode: NamespaceMode, target: String = "") throws -> LaunchConfig.Namespaces.Mode {
            try spec(CRI.ContainerConfig(command: ["x"], linux: LinuxContainerConfig(securityContext: LinuxContainerSecurityContext(
                namespaceOptions: NamespaceOption(pid: mode, targetId: target))))).build().namespaces.pid
        }
        #expect(try pid(.container) == .new)
        #expect(try pid(.pod) == .join("/proc/42/ns/pid"))
        #expect(try pid(.node) == .host)
        #expect(try pid(.target, target: "other") == .join("/proc/77/ns/pid"))
        #expect(throws: CRIError.self) { try pid(.target, target: "gone") }
        let launch = try spec(CRI.ContainerConfig(command: ["x"], logPath: "c/0.log")).build()
        #expect(launch.namespaces.network == .join("/pins/net") && launch.namespaces.ipc == .join("/pins/ipc"))
        #expect(launch.logPath == "/var/log/pods/x/c/0.log")
        #expect(launch.cgroupParent == "/kubepods/pod1")
        #expect(launch.mounts.map(\.target) == ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/dev/shm"])
        #expect(launch.mounts.last?.source == "/pod/shm")
    }

    @Test("privileged containers need a privileged pod; devices go to the launch")
    func refusals() throws {
        let privileged = CRI.ContainerConfig(command: ["x"], linux: LinuxContainerConfig(securityContext: LinuxContainerSecurityContext(privileged: true)))
        #expect(throws: CRIError.invalidArgument("no privileged container allowed in a sandbox that is not privileged")) {
            try spec(privileged).build()
        }
        let launch = try spec(CRI.ContainerConfig(command: ["x"], devices: [Device(containerPath: "/dev/mine", hostPath: "/dev/null", permissions: "rw")])).build()
        #expect(launch.devices == [.init(hostPath: "/dev/null", containerPath: "/dev/mine", permissions: "rw")])
    }

    @Test("systemd slice names expand as systemd nests them", arguments: [
        ("kubepods-burstable-pod1.slice", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice"),
        ("kubepods.slice", "/kubepods.slice"),
        ("-.slice", "/"),
    ])
    func slices(slice: String, path: String) {
        #expect(PodRuntime.expandSlice(slice) == path)
    }
}
