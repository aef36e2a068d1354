import CRI
import Foundation
import KubeClient
import SwiftletTestSupport
import Testing
@testable import KubeNode

@Suite struct PodRuntimeConfigTests {
    static let gibibyte: Int64 = 1 << 30

    func config(_ pod: Pod, memoryCapacity: Int64 = 4 * gibibyte) -> PodRuntimeConfig {
        PodRuntimeConfig(pod: pod, podLogsDir: "/var/log/pods", memoryCapacity: memoryCapacity, podCgroupRoot: "/kubepods")
    }

    func containerConfig(_ pod: Pod, _ container: ContainerSpec? = nil, restartCount: Int = 0, env: [KeyValue] = [],
                         memoryCapacity: Int64 = 4 * gibibyte) -> ContainerConfig {
        let spec = container ?? pod.spec!.containers[0]
        return config(pod, memoryCapacity: memoryCapacity).containerConfig(spec, restartCount: restartCount, imageRef: "sha256:1234",
                                                                           env: env, mounts: [], hash: PodRuntimeConfig.hash(spec))
    }

    // MARK: Sandbox

    @Test func sandboxMetadataHostnameAndLogDirectory() {
        let pod = makePod(labels: ["app": "web"], annotations: ["note": "x"], containers: [makeContainer()])
        let sandbox = config(pod).sandboxConfig(attempt: 2)
        #expect(sandbox.metadata == PodSandboxMetadata(name: "web", uid: "uid-1", namespace: "ns", attempt: 2))
        #expect(sandbox.hostname == "web")
        #expect(sandbox.logDirectory == "/var/log/pods/ns_web_uid-1")
        #expect(sandbox.labels["app"] == "web" && sandbox.labels[PodLabels.podUID] == "uid-1" && sandbox.labels[PodLabels.podName] == "web"
            && sandbox.labels[PodLabels.podNamespace] == "ns")
        #expect(sandbox.annotations == ["note": "x"])
        #expect(sandbox.portMappings.isEmpty)

        let named = makePod(containers: [makeContainer()]) { $0.hostname = "custom" }
        #expect(config(named).sandboxConfig(attempt: 0).hostname == "custom")
        let hostNetwork = makePod(containers: [makeContainer()]) { $0.hostNetwork = true; $0.hostname = "custom" }
        #expect(config(hostNetwork).sandboxConfig(attempt: 0).hostname == "")
        let long = makePod(name: String(repeating: "x", count: 70), containers: [makeContainer()])
        #expect(config(long).sandboxConfig(attempt: 0).hostname == String(repeating: "x", count: 63))
    }

    @Test
    func truncatedHostnameLosesTrailingDashesAndDots() {
        let pod = makePod(name: String(repeating: "x", count: 61) + "-.-abc", containers: [makeContainer()])
        #expect(config(pod).sandboxConfig(attempt: 0).hostname == String(repeating: "x", count: 61))
    }

    @Test func portMappingsComeFromHostPorts() {
        var web = makeContainer("web")
        web.ports = [ContainerPort(name: "http", hostPort: 8080, containerPort: 80),
                     ContainerPort(name: "metrics", containerPort: 9090),
                     ContainerPort(hostPort: 5353, containerPort: 53, protocol: "UDP", hostIP: "127.0.0.1")]
        var sidecar = makeContainer("sidecar")
        sidecar.ports = [ContainerPort(hostPort: 3868, containerPort: 3868, protocol: "SCTP"), ContainerPort(hostPort: 0, containerPort: 1)]
        let pod = makePod(containers: [web, sidecar])
        #expect(config(pod).sandboxConfig(attempt: 0).portMappings == [
            PortMapping(protocol: .tcp, containerPort: 80, hostPort: 8080, hostIp: ""),
            PortMapping(protocol: .udp, containerPort: 53, hostPort: 5353, hostIp: "127.0.0.1"),
            PortMapping(protocol: .sctp, containerPort: 3868, hostPort: 3868, hostIp: ""),
        ])
    }

    @Test func namespaceModes() throws {
        func modes(_ configure: @escaping (inout PodSpec) -> Void) throws -> (NamespaceOption, NamespaceOption) {
            let pod = makePod(containers: [makeContainer()], configure: configure)
            let sandbox = try #require(config(pod).sandboxConfig(attempt: 0).linux?.securityContext?.namespaceOptions)
            let container = try #require(containerConfig(pod).linux?.securityContext?.namespaceOptions)
            return (sandbox, container)
        }
        let plain = try modes { _ in }
        #expect(plain.0.network == .pod && plain.0.pid == .container && plain.0.ipc == .pod)
        #expect(plain.1 == plain.0)
        let host = try modes { $0.hostNetwork = true; $0.hostPID = true; $0.hostIPC = true }
        #expect(host.0.network == .node && host.0.pid == .node && host.0.ipc == .node)
        #expect(host.1 == host.0)
        let shared = try modes { $0.shareProcessNamespace = true }
        #expect(shared.0.network == .pod && shared.0.pid == .pod && shared.0.ipc == .pod)
        #expect(shared.1.pid == .pod)
        let hostWins = try modes { $0.hostPID = true; $0.shareProcessNamespace = true }
        #expect(hostWins.0.pid == .node)
    }

    @Test func sysctlsUsersGroupsAndSeccompOfTheSandbox() throws {
        let pod = makePod(containers: [makeContainer()]) {
            $0.securityContext = PodSecurityContext(runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000, 5000], fsGroup: 2000,
                                                    sysctls: [Sysctl(name: "net.ipv4.ip_unprivileged_port_start", value: "0"),
                                                              Sysctl(name: "kernel.shm_rmid_forced", value: "1")],
                                                    seccompProfile: SeccompProfile(type: "RuntimeDefault"))
        }
        let linux = try #require(config(pod).sandboxConfig(attempt: 0).linux)
        #expect(linux.sysctls == ["net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"])
        let security = try #require(linux.securityContext)
        #expect(security.runAsUser?.value == 1000 && security.runAsGroup?.value == 3000)
        #expect(Set(security.supplementalGroups) == [2000, 4000, 5000])
        #expect(security.seccomp == SecurityProfile(profileType: .runtimedefault))
        #expect(!security.privileged)
    }

    @Test
    func sandboxOfAPodWithAPrivilegedContainerIsPrivileged() {
        var privileged = makeContainer("debug")
        privileged.securityContext = SecurityContext(privileged: true)
        var privilegedInit = makeContainer("setup")
        privilegedInit.securityContext = SecurityContext(privileged: true)
        let pod = makePod(containers: [makeContainer(), privileged])
        #expect(config(pod).sandboxConfig(attempt: 0).linux?.securityContext?.privileged == true)
        let initOnly = makePod(containers: [makeContainer()], initContainers: [privilegedInit])
        #expect(config(initOnly).sandboxConfig(attempt: 0).linux?.securityContext?.privileged == true)
    }

    @Test func cgroupParentFollowsTheQOSClass() {
        let guaranteed = makePod(containers: [makeContainer(limits: ["cpu": "1", "memory": "1Gi"])])
        let burstable = makePod(containers: [makeContainer(requests: ["cpu": "100m"])])
        let bestEffort = makePod(containers: [makeContainer()])
        #expect(config(guaranteed).sandboxConfig(attempt: 0).linux?.cgroupParent == "/kubepods/poduid-1")
        #expect(config(burstable).sandboxConfig(attempt: 0).linux?.cgroupParent == "/kubepods/burstable/poduid-1")
        #expect(config(bestEffort).sandboxConfig(attempt: 0).linux?.cgroupParent == "/kubepods/besteffort/poduid-1")
    }

    @Test func dnsConfigOfPolicyNone() {
        let none = makePod(containers: [makeContainer()]) { $0.dnsPolicy = "None" }
        #expect(config(none).sandboxConfig(attempt: 0).dnsConfig == DNSConfig())
        let custom = makePod(containers: [makeContainer()]) {
            $0.dnsPolicy = "None"
            $0.dnsConfig = PodDNSConfig(nameservers: ["192.0.2.53"], searches: ["svc.example"],
                                        options: [PodDNSConfigOption(name: "ndots", value: "2"), PodDNSConfigOption(name: "edns0")])
        }
        #expect(config(custom).sandboxConfig(attempt: 0).dnsConfig
            == DNSConfig(servers: ["192.0.2.53"], searches: ["svc.example"], options: ["ndots:2", "edns0"]))
        // No dnsConfig: the runtime's (the host's) resolver.
        #expect(config(makePod(containers: [makeContainer()])).sandboxConfig(attempt: 0).dnsConfig == nil)
    }

    @Test func dnsConfigIsMergedIntoTheHostsResolver() throws {
        let tree = try TemporaryTree()
        let resolv = try tree.write("resolv.conf", """
            # host resolver
            nameserver 10.0.0.53
            nameserver 10.0.0.54
            search example.com corp.example
            options ndots:1 timeout:2

            """)
        let pod = makePod(containers: [makeContainer()]) {
            $0.dnsPolicy = "ClusterFirst"
            $0.dnsConfig = PodDNSConfig(nameservers: ["10.0.0.54", "192.0.2.53"], searches: ["svc.example"],
                                        options: [PodDNSConfigOption(name: "ndots", value: "2"), PodDNSConfigOption(name: "edns0")])
        }
        let dns = try #require(config(pod).dnsConfig(hostResolvConf: resolv))
        #expect(dns.servers == ["10.0.0.53", "10.0.0.54", "192.0.2.53"])
        #expect(dns.searches == ["example.com", "corp.example", "svc.example"])
        #expect(Set(dns.options) == ["ndots:2", "timeout:2", "edns0"])
        // At most three nameservers, as the kubelet (formDNSConfigFitsLimits).
        let many = makePod(containers: [makeContainer()]) {
            $0.dnsPolicy = "Default"
            $0.dnsConfig = PodDNSConfig(nameservers: ["192.0.2.1", "192.0.2.2"])
        }
        #expect(try #require(config(many).dnsConfig(hostResolvConf: resolv)).servers == ["10.0.0.53", "10.0.0.54", "192.0.2.1"])
        // Policy None ignores the host.
        let none = makePod(containers: [makeContainer()]) {
            $0.dnsPolicy = "None"
            $0.dnsConfig = PodDNSConfig(nameservers: ["192.0.2.53"])
        }
        #expect(config(none).dnsConfig(hostResolvConf: resolv) == DNSConfig(servers: ["192.0.2.53"], searches: [], options: []))
    }

    // MARK: Containers

    @Test func containerConfigBasics() {
        var container = makeContainer("app", image: "nginx:1.25")
        container.command = ["nginx"]
        container.args = ["-g", "daemon off;"]
        container.workingDir = "/srv"
        container.stdin = true
        container.tty = true
        let pod = makePod(containers: [container]) { $0.terminationGracePeriodSeconds = 45 }
        let env = [KeyValue(key: "A", value: "1")]
        let config = containerConfig(pod, restartCount: 3, env: env)
        #expect(config.metadata == ContainerMetadata(name: "app", attempt: 3))
        #expect(config.image?.image == "sha256:1234" && config.image?.userSpecifiedImage == "nginx:1.25")
        #expect(config.command == ["nginx"] && config.args == ["-g", "daemon off;"] && config.workingDir == "/srv")
        #expect(config.envs == env)
        #expect(config.logPath == "app/3.log")
        #expect(config.stdin && config.tty && !config.stdinOnce)
        #expect(config.labels[PodLabels.containerName] == "app" && config.labels[PodLabels.podUID] == "uid-1")
        #expect(config.annotations[PodLabels.containerHash] == PodRuntimeConfig.hash(container))
        #expect(config.annotations[PodLabels.restartCount] == "3")
        #expect(config.annotations[PodLabels.terminationMessagePath] == "/dev/termination-log")
        #expect(config.annotations[PodLabels.terminationGracePeriod] == "45")
        #expect(containerConfig(pod, restartCount: 0).logPath == "app/0.log")
    }

    @Test
    func commandAndArgsExpandFromTheEnvironment() {
        var container = makeContainer()
        container.command = ["sh", "-c", "echo $(GREETING) $(MISSING) $$(GREETING)"]
        container.args = ["$(TARGET)"]
        let pod = makePod(containers: [container])
        let config = containerConfig(pod, env: [KeyValue(key: "GREETING", value: "hello"), KeyValue(key: "TARGET", value: "world")])
        #expect(config.command == ["sh", "-c", "echo hello $(MISSING) $(GREETING)"])
        #expect(config.args == ["world"])
    }

    @Test func cpuAndMemoryFromRequestsAndLimits() throws {
        func resources(requests: [String: String]? = nil, limits: [String: String]? = nil) throws -> LinuxContainerResources {
            let pod = makePod(containers: [makeContainer(requests: requests, limits: limits)])
            return try #require(containerConfig(pod).linux?.resources)
        }
        let both = try resources(requests: ["cpu": "250m", "memory": "64Mi"], limits: ["cpu": "500m", "memory": "128Mi"])
        #expect(both.cpuShares == 256 && both.cpuPeriod == 100_000 && both.cpuQuota == 50_000 && both.memoryLimitInBytes == 134_217_728)
        let none = try resources()
        #expect(none.cpuShares == 2 && none.cpuQuota == 0 && none.memoryLimitInBytes == 0)
        let limitOnly = try resources(limits: ["cpu": "2", "memory": "1Gi"])
        #expect(limitOnly.cpuShares == 2048 && limitOnly.cpuQuota == 200_000 && limitOnly.memoryLimitInBytes == Self.gibibyte)
        let tiny = try resources(requests: ["cpu": "1m"], limits: ["cpu": "5m"])
        #expect(tiny.cpuShares == 2 && tiny.cpuQuota == 1000)  // the kernel's minimums
        let whole = try resources(requests: ["cpu": "1.5"])
        #expect(whole.cpuShares == 1536 && whole.cpuQuota == 0)
    }

    @Test
    func zeroCPUIsNoQuota() throws {
        let pod = makePod(containers: [makeContainer(requests: ["cpu": "0"], limits: ["cpu": "0"])])
        let resources = try #require(containerConfig(pod).linux?.resources)
        #expect(resources.cpuQuota == 0 && resources.cpuShares == 2)
        let requestZero = makePod(containers: [makeContainer(requests: ["cpu": "0"], limits: ["cpu": "1"])])
        #expect(containerConfig(requestZero).linux?.resources?.cpuShares == 1024)
    }

    @Test func oomScoreAdjustPerQOSClass() {
        let capacity: Int64 = 1000 * (1 << 20)
        func score(_ requests: [String: String]?, _ limits: [String: String]?) -> Int64? {
            let pod = makePod(containers: [makeContainer(requests: requests, limits: limits)])
            return containerConfig(pod, memoryCapacity: capacity).linux?.resources?.oomScoreAdj
        }
        #expect(score(nil, ["cpu": "1", "memory": "100Mi"]) == -997)  // Guaranteed
        #expect(score(nil, nil) == 1000)  // BestEffort
        #expect(score(["memory": "100Mi"], nil) == 900)  // Burstable: 1000 - 1000 * request / capacity
        #expect(score(["memory": "250Mi"], ["memory": "500Mi"]) == 750)
        #expect(score(["cpu": "100m"], nil) == 999)  // no memory request: below BestEffort
    }

    @Test
    func burstableOOMScoreFloorIsThree() {
        let capacity: Int64 = 1000 * (1 << 20)
        let pod = makePod(containers: [makeContainer(requests: ["memory": "1000Mi"])])
        #expect(containerConfig(pod, memoryCapacity: capacity).linux?.resources?.oomScoreAdj == 3)
    }

    @Test
    func criticalPodsGetTheGuaranteedScore() {
        let pod = makePod(containers: [makeContainer(requests: ["memory": "100Mi"])]) { $0.priority = 2_000_001_000 }
        #expect(containerConfig(pod).linux?.resources?.oomScoreAdj == -997)
        let staticPod = makePod(annotations: ["kubernetes.io/config.source": "file"], containers: [makeContainer()])
        #expect(containerConfig(staticPod).linux?.resources?.oomScoreAdj == -997)
    }

    @Test func securityContextMapping() throws {
        var container = makeContainer()
        container.securityContext = SecurityContext(capabilities: Capabilities(add: ["NET_ADMIN"], drop: ["ALL"]), runAsUser: 1001,
                                                    readOnlyRootFilesystem: true, allowPrivilegeEscalation: false,
                                                    seccompProfile: SeccompProfile(type: "Unconfined"))
        let pod = makePod(containers: [container]) {
            $0.securityContext = PodSecurityContext(runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000], fsGroup: 2000,
                                                    seccompProfile: SeccompProfile(type: "RuntimeDefault"))
        }
        let security = try #require(containerConfig(pod).linux?.securityContext)
        #expect(!security.privileged)
        #expect(security.capabilities?.addCapabilities == ["NET_ADMIN"] && security.capabilities?.dropCapabilities == ["ALL"])
        #expect(security.runAsUser?.value == 1001)  // the container's over the pod's
        #expect(security.runAsGroup?.value == 3000)  // the pod's
        #expect(security.readonlyRootfs && security.noNewPrivs)
        #expect(Set(security.supplementalGroups) == [2000, 4000])
        #expect(security.supplementalGroupsPolicy == .merge)
        #expect(security.seccomp == SecurityProfile(profileType: .unconfined))
        #expect(security.maskedPaths == PodRuntimeConfig.defaultMaskedPaths)
        #expect(security.readonlyPaths == PodRuntimeConfig.defaultReadonlyPaths)
        #expect(security.maskedPaths.contains("/proc/kcore") && security.readonlyPaths.contains("/proc/sys"))

        // Nothing set: the pod's seccomp, privilege escalation allowed, default masks.
        let plain = try #require(containerConfig(makePod(containers: [makeContainer()]) {
            $0.securityContext = PodSecurityContext(seccompProfile: SeccompProfile(type: "RuntimeDefault"))
        }).linux?.securityContext)
        #expect(plain.seccomp == SecurityProfile(profileType: .runtimedefault))
        #expect(!plain.noNewPrivs && !plain.readonlyRootfs && plain.runAsUser == nil && plain.capabilities == nil)
        #expect(plain.maskedPaths == PodRuntimeConfig.defaultMaskedPaths)

        // supplementalGroupsPolicy Strict reaches the runtime.
        let strict = try #require(containerConfig(makePod(containers: [makeContainer()]) {
            $0.securityContext = PodSecurityContext(supplementalGroupsPolicy: "Strict")
        }).linux?.securityContext)
        #expect(strict.supplementalGroupsPolicy == .strict)

        // procMount Unmasked: no masked or read-only paths.
        var unmasked = makeContainer()
        unmasked.securityContext = SecurityContext(procMount: "Unmasked")
        let open = try #require(containerConfig(makePod(containers: [unmasked])).linux?.securityContext)
        #expect(open.maskedPaths.isEmpty && open.readonlyPaths.isEmpty)

        // Privileged.
        var privileged = makeContainer()
        privileged.securityContext = SecurityContext(privileged: true)
        #expect(containerConfig(makePod(containers: [privileged])).linux?.securityContext?.privileged == true)
    }

    @Test
    func localhostSeccompProfileIsAnAbsolutePath() throws {
        var container = makeContainer()
        container.securityContext = SecurityContext(seccompProfile: SeccompProfile(type: "Localhost", localhostProfile: "profiles/audit.json"))
        let seccomp = try #require(containerConfig(makePod(containers: [container])).linux?.securityContext?.seccomp)
        #expect(seccomp.profileType == .localhost)
        #expect(seccomp.localhostRef.hasPrefix("/") && seccomp.localhostRef.hasSuffix("/seccomp/profiles/audit.json"))
    }

    @Test func hashIsStableAndFollowsTheSpec() throws {
        var container = makeContainer("app", requests: ["cpu": "100m", "memory": "64Mi"], limits: ["memory": "128Mi"])
        container.env = [EnvVar(name: "A", value: "1")]
        let hash = PodRuntimeConfig.hash(container)
        #expect(!hash.isEmpty)
        for _ in 0..<5 { #expect(PodRuntimeConfig.hash(container) == hash) }
        // A JSON round trip (the spec as the API server sends it again) hashes the same.
        let decoded = try JSONDecoder().decode(ContainerSpec.self, from: JSONEncoder().encode(container))
        #expect(PodRuntimeConfig.hash(decoded) == hash)
        var image = container
        image.image = "busybox:1.37"
        var env = container
        env.env = [EnvVar(name: "A", value: "2")]
        var resources = container
        resources.resources?.limits?["memory"] = "256Mi"
        let hashes = [hash, PodRuntimeConfig.hash(image), PodRuntimeConfig.hash(env), PodRuntimeConfig.hash(resources)]
        #expect(Set(hashes).count == 4)
    }

    // MARK: QoS

    @Test func qosClasses() {
        #expect(QOSClass.of(makePod(containers: [makeContainer(), makeContainer("b")])) == .bestEffort)
        #expect(QOSClass.of(makePod(containers: [makeContainer(requests: ["cpu": "100m"])])) == .burstable)
        #expect(QOSClass.of(makePod(containers: [makeContainer(requests: ["cpu": "1", "memory": "1Gi"],
                                                                limits: ["cpu": "1000m", "memory": "1024Mi"])])) == .guaranteed)
        // Limits alone: requests default to them.
        #expect(QOSClass.of(makePod(containers: [makeContainer(limits: ["cpu": "1", "memory": "1Gi"])])) == .guaranteed)
        // Every container must be guaranteed, init containers too.
        #expect(QOSClass.of(makePod(containers: [makeContainer(limits: ["cpu": "1", "memory": "1Gi"]), makeContainer("b")])) == .burstable)
        #expect(QOSClass.of(makePod(containers: [makeContainer(limits: ["cpu": "1", "memory": "1Gi"])],
                                    initContainers: [makeContainer("init", requests: ["cpu": "1"])])) == .burstable)
        #expect(QOSClass.of(makePod(containers: [makeContainer()], initContainers: [makeContainer("init", requests: ["memory": "1Mi"])]))
            == .burstable)
        #expect(QOSClass.of(makePod(containers: [makeContainer(limits: ["cpu": "1"])])) == .burstable)  // no memory limit
        #expect(QOSClass.of(makePod(containers: [makeContainer(requests: ["cpu": "500m", "memory": "1Gi"],
                                                                limits: ["cpu": "1", "memory": "1Gi"])])) == .burstable)
        // Other resources do not count against Guaranteed.
        #expect(QOSClass.of(makePod(containers: [makeContainer(requests: ["cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"],
                                                                limits: ["cpu": "1", "memory": "1Gi"])])) == .guaranteed)
        #expect(QOSClass.guaranteed.rawValue == "Guaranteed" && QOSClass.burstable.rawValue == "Burstable"
            && QOSClass.bestEffort.rawValue == "BestEffort")
    }

    @Test
    func onlyNonZeroCPUAndMemoryCount() {
        #expect(QOSClass.of(makePod(containers: [makeContainer(requests: ["ephemeral-storage": "1Gi"])])) == .bestEffort)
        #expect(QOSClass.of(makePod(containers: [makeContainer(limits: ["example.com/gpu": "1"])])) == .bestEffort)
        #expect(QOSClass.of(makePod(containers: [makeContainer(requests: ["cpu": "0", "memory": "0"])])) == .bestEffort)
    }
}
