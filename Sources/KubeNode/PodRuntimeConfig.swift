import CRI
import Foundation
import KubeClient
import ResourceLedger

/// Turns a Pod's spec into the CRI configs the runtime is called with, as the kubelet's
/// `kuberuntime` does: sandbox config (metadata, hostname, DNS, ports, namespaces, security,
/// sysctls, log directory) and per-container config (image, command, env, mounts, resources,
/// security context, log path).
struct PodRuntimeConfig: Sendable {
    let pod: Pod
    let podLogsDir: String
    /// The node's memory capacity in bytes (the Burstable OOM score is relative to it).
    let memoryCapacity: Int64
    /// Where pod cgroups go (`<cgroupsRoot>/kubepods`).
    let podCgroupRoot: String
    /// Where `Localhost` seccomp profiles are looked up (the kubelet's `<root-dir>/seccomp`).
    var seccompProfileRoot: String = "/var/lib/swiftlet/seccomp"
    /// The pod's user namespace mapping (`hostUsers: false`, allocated by PodUserNamespaces):
    /// the sandbox and every container get it, and every mount is idmapped with it.
    var userNamespace: IDMapping? = nil

    /// `<root>/[burstable|besteffort]/pod<uid>`, the kubelet's pod cgroup.
    var cgroupParent: String { "\(podCgroupRoot)/\(qosClass.cgroupName)pod\(pod.uid)" }

    /// The CRI's user namespace options: the pod's own (POD) with its mapping, or nil (the host's).
    var usernsOptions: UserNamespace? {
        userNamespace.map { UserNamespace(mode: .pod, uids: [$0], gids: [$0]) }
    }

    /// `/var/log/pods/<namespace>_<name>_<uid>`.
    var logDirectory: String {
        "\(podLogsDir)/\(pod.metadata.namespace ?? "default")_\(pod.metadata.name ?? "")_\(pod.uid)"
    }

    func sandboxConfig(attempt: UInt32) -> PodSandboxConfig {
        let spec = pod.spec
        var config = PodSandboxConfig()
        config.metadata = PodSandboxMetadata(name: pod.metadata.name ?? "", uid: pod.uid, namespace: pod.metadata.namespace ?? "default",
                                             attempt: attempt)
        let hostNetwork = spec?.hostNetwork ?? false
        config.hostname = hostNetwork ? "" : Self.truncatedHostname(spec?.hostname ?? pod.metadata.name ?? "")
        config.logDirectory = logDirectory
        config.dnsConfig = dnsConfig()
        config.portMappings = (spec?.containers ?? []).flatMap { $0.ports ?? [] }.compactMap { port in
            guard let hostPort = port.hostPort, hostPort > 0 else { return nil }
            let proto: CRI.`Protocol` = switch port.protocol?.uppercased() {
            case "UDP": .udp
            case "SCTP": .sctp
            default: .tcp
            }
            return PortMapping(protocol: proto, containerPort: port.containerPort, hostPort: hostPort, hostIp: port.hostIP ?? "")
        }
        config.labels = PodLabels.sandboxLabels(pod)
        config.annotations = pod.metadata.annotations ?? [:]
        var linux = LinuxPodSandboxConfig()
        linux.cgroupParent = cgroupParent
        var security = LinuxSandboxSecurityContext()
        security.namespaceOptions = NamespaceOption(
            network: hostNetwork ? .node : .pod,
            pid: (spec?.hostPID ?? false) ? .node : ((spec?.shareProcessNamespace ?? false) ? .pod : .container),
            ipc: (spec?.hostIPC ?? false) ? .node : .pod)
        security.namespaceOptions?.usernsOptions = usernsOptions
        if let user = spec?.securityContext?.runAsUser { security.runAsUser = Int64Value(value: user) }
        if let group = spec?.securityContext?.runAsGroup { security.runAsGroup = Int64Value(value: group) }
        security.supplementalGroups = (spec?.securityContext?.supplementalGroups ?? []) + (spec?.securityContext?.fsGroup.map { [$0] } ?? [])
        security.seccomp = seccomp(spec?.securityContext?.seccompProfile)
        // Privileged when any container is (the runtime refuses privileged containers otherwise).
        let containers = (spec?.containers ?? []) + (spec?.initContainers ?? [])
        security.privileged = containers.contains { $0.securityContext?.privileged == true }
        linux.securityContext = security
        for sysctl in spec?.securityContext?.sysctls ?? [] { linux.sysctls[sysctl.name] = sysctl.value }
        config.linux = linux
        return config
    }

    /// The pod's DNS, as the kubelet's `GetPodDNS` without a cluster DNS server configured:
    /// policy `None` uses `dnsConfig` alone; otherwise the host's resolver (`ClusterFirst` falls
    /// back to `Default` when the node has no `--cluster-dns`) with `dnsConfig` merged in
    /// (nameservers and searches appended without duplicates, options by name). nil: the
    /// runtime's default (the host's resolv.conf).
    func dnsConfig(hostResolvConf: String = "/etc/resolv.conf") -> DNSConfig? {
        let policy = pod.spec?.dnsPolicy ?? "ClusterFirst"
        guard let custom = pod.spec?.dnsConfig else { return policy == "None" ? DNSConfig() : nil }
        func format(_ option: PodDNSConfigOption) -> String { option.value.map { "\(option.name ?? ""):\($0)" } ?? (option.name ?? "") }
        var config = DNSConfig()
        if policy != "None", let text = try? String(contentsOfFile: hostResolvConf, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                guard let key = fields.first else { continue }
                switch key {
                case "nameserver": config.servers += fields.dropFirst().prefix(1)
                case "search", "domain": config.searches = Array(fields.dropFirst())
                case "options": config.options += fields.dropFirst()
                default: break
                }
            }
        }
        for server in custom.nameservers ?? [] where !config.servers.contains(server) { config.servers.append(server) }
        for search in custom.searches ?? [] where !config.searches.contains(search) { config.searches.append(search) }
        for option in custom.options ?? [] {
            let name = option.name ?? ""
            config.options.removeAll { $0 == name || $0.hasPrefix(name + ":") }
            config.options.append(format(option))
        }
        config.servers = Array(config.servers.prefix(3))
        config.searches = Array(config.searches.prefix(6))
        return config
    }

    /// The kubelet's `truncatePodHostnameIfNeeded`: at most 63 characters, without trailing `-` or `.`.
    static func truncatedHostname(_ name: String) -> String {
        guard name.count > 63 else { return name }
        var truncated = String(name.prefix(63))
        while let last = truncated.last, last == "-" || last == "." { truncated.removeLast() }
        return truncated
    }

    func seccomp(_ profile: SeccompProfile?) -> SecurityProfile? {
        guard let profile else { return nil }
        switch profile.type {
        case "RuntimeDefault": return SecurityProfile(profileType: .runtimedefault)
        case "Localhost":
            let name = profile.localhostProfile ?? ""
            return SecurityProfile(profileType: .localhost, localhostRef: name.hasPrefix("/") ? name : "\(seccompProfileRoot)/\(name)")
        default: return SecurityProfile(profileType: .unconfined)
        }
    }

    /// The pod's QoS class, from its containers' requests and limits.
    var qosClass: QOSClass { QOSClass.of(pod) }

    /// The kubelet's `IsCriticalPod`: a static or mirror pod, or a priority of at least
    /// system-critical (2000000000).
    var isCritical: Bool {
        let annotations = pod.metadata.annotations ?? [:]
        if let source = annotations["kubernetes.io/config.source"], source != "api" { return true }
        if annotations["kubernetes.io/config.mirror"] != nil { return true }
        return (pod.spec?.priority ?? 0) >= 2_000_000_000
    }

    /// The container's config for attempt `restartCount`, with `env` and `mounts` already resolved.
    func containerConfig(_ container: ContainerSpec, restartCount: Int, imageRef: String, env: [KeyValue], mounts: [CRI.Mount],
                         hash: String) -> ContainerConfig {
        var config = ContainerConfig()
        config.metadata = ContainerMetadata(name: container.name, attempt: UInt32(restartCount))
        config.image = ImageSpec(image: imageRef, userSpecifiedImage: container.image ?? "")
        // $(VAR) in command and args from the container's environment (ExpandContainerCommandAndArgs).
        let values = Dictionary(env.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        config.command = (container.command ?? []).map { PodEnvironment.expand($0, with: values) }
        config.args = (container.args ?? []).map { PodEnvironment.expand($0, with: values) }
        config.workingDir = container.workingDir ?? ""
        config.envs = env
        config.mounts = mounts.map { mount in
            // As the kubelet: a pod in a user namespace sees its volumes through idmapped mounts.
            var mount = mount
            if let userNamespace { (mount.uidMappings, mount.gidMappings) = ([userNamespace], [userNamespace]) }
            return mount
        }
        config.labels = PodLabels.containerLabels(pod, container: container)
        config.annotations = [
            PodLabels.containerHash: hash, PodLabels.restartCount: String(restartCount),
            PodLabels.terminationMessagePath: container.terminationMessagePath ?? "/dev/termination-log",
            PodLabels.terminationGracePeriod: String(pod.spec?.terminationGracePeriodSeconds ?? 30),
        ]
        config.logPath = "\(container.name)/\(restartCount).log"
        config.stdin = container.stdin ?? false
        config.stdinOnce = container.stdinOnce ?? false
        config.tty = container.tty ?? false
        var linux = LinuxContainerConfig()
        linux.resources = resources(container)
        linux.securityContext = securityContext(container)
        config.linux = linux
        return config
    }

    /// cgroup settings from requests and limits, as the kubelet computes them.
    func resources(_ container: ContainerSpec) -> LinuxContainerResources {
        var resources = LinuxContainerResources()
        let requests = container.resources?.requests ?? [:]
        let limits = container.resources?.limits ?? [:]
        let cpuLimit = limits["cpu"].flatMap { try? Quantity(parsing: $0) }?.milliValue ?? 0
        var cpuRequest = requests["cpu"].flatMap { try? Quantity(parsing: $0) }?.milliValue ?? 0
        // A zero (or absent) request with a limit takes the limit's shares (the kubelet's rule).
        if cpuRequest == 0 && cpuLimit > 0 { cpuRequest = cpuLimit }
        resources.cpuShares = max(2, cpuRequest * 1024 / 1000)
        if cpuLimit > 0 {
            resources.cpuPeriod = 100_000
            resources.cpuQuota = max(1000, cpuLimit * 100_000 / 1000)
        }
        if let memory = limits["memory"].flatMap({ try? Quantity(parsing: $0) }) { resources.memoryLimitInBytes = memory.value }
        resources.oomScoreAdj = oomScoreAdj(container)
        return resources
    }

    /// The kubelet's OOM score: Guaranteed and critical pods -997, BestEffort 1000, Burstable by
    /// memory request between 3 and 999.
    func oomScoreAdj(_ container: ContainerSpec) -> Int64 {
        if isCritical { return -997 }
        switch qosClass {
        case .guaranteed: return -997
        case .bestEffort: return 1000
        case .burstable:
            let request = container.resources?.requests?["memory"].flatMap { try? Quantity(parsing: $0) }?.value ?? 0
            guard memoryCapacity > 0 else { return 999 }
            let score = 1000 - (1000 * request) / memoryCapacity
            return min(max(score, 3), 999)
        }
    }

    func securityContext(_ container: ContainerSpec) -> LinuxContainerSecurityContext {
        let podContext = pod.spec?.securityContext
        let context = container.securityContext
        var security = LinuxContainerSecurityContext()
        security.privileged = context?.privileged ?? false
        if let capabilities = context?.capabilities {
            security.capabilities = Capability(addCapabilities: capabilities.add ?? [], dropCapabilities: capabilities.drop ?? [])
        }
        let spec = pod.spec
        security.namespaceOptions = NamespaceOption(
            network: (spec?.hostNetwork ?? false) ? .node : .pod,
            pid: (spec?.hostPID ?? false) ? .node : ((spec?.shareProcessNamespace ?? false) ? .pod : .container),
            ipc: (spec?.hostIPC ?? false) ? .node : .pod)
        security.namespaceOptions?.usernsOptions = usernsOptions
        if let user = context?.runAsUser ?? podContext?.runAsUser { security.runAsUser = Int64Value(value: user) }
        if let group = context?.runAsGroup ?? podContext?.runAsGroup { security.runAsGroup = Int64Value(value: group) }
        security.readonlyRootfs = context?.readOnlyRootFilesystem ?? false
        security.supplementalGroups = (podContext?.supplementalGroups ?? []) + (podContext?.fsGroup.map { [$0] } ?? [])
        if podContext?.supplementalGroupsPolicy == "Strict" { security.supplementalGroupsPolicy = .strict }
        security.noNewPrivs = context?.allowPrivilegeEscalation == false && !(context?.privileged ?? false)
        if !security.privileged && context?.procMount != "Unmasked" {
            security.maskedPaths = Self.defaultMaskedPaths
            security.readonlyPaths = Self.defaultReadonlyPaths
        }
        security.seccomp = seccomp(context?.seccompProfile ?? podContext?.seccompProfile)
        return security
    }

    /// The kubelet's (containerd's) default masked and read-only paths.
    static let defaultMaskedPaths = ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                                     "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
    static let defaultReadonlyPaths = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    /// A stable hash of the container's spec: a changed spec restarts the container.
    static func hash(_ container: ContainerSpec) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let bytes = (try? encoder.encode(container)) ?? Array(container.name.utf8).withUnsafeBytes { Data($0) }
        var hash: UInt32 = 2_166_136_261
        for byte in bytes {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        return String(hash, radix: 16)
    }
}

/// The pod QoS classes.
enum QOSClass: String, Sendable {
    case guaranteed = "Guaranteed"
    case burstable = "Burstable"
    case bestEffort = "BestEffort"

    /// The cgroup level under `kubepods` (Guaranteed pods sit right under it).
    var cgroupName: String {
        switch self {
        case .guaranteed: ""
        case .burstable: "burstable/"
        case .bestEffort: "besteffort/"
        }
    }

    /// The kubelet's `GetPodQOS`: Guaranteed when every container has cpu and memory limits equal
    /// to its requests; BestEffort when no container requests or limits anything; else Burstable.
    /// Only cpu and memory count, and only amounts above zero; a missing request is its limit
    /// (as the API server defaults it).
    static func of(_ pod: Pod) -> QOSClass {
        let containers = (pod.spec?.containers ?? []) + (pod.spec?.initContainers ?? [])
        var anySet = false
        var guaranteed = true
        for container in containers {
            func amount(_ map: [String: String]?, _ name: String) -> Quantity? {
                map?[name].flatMap { try? Quantity(parsing: $0) }.flatMap { $0.isZero ? nil : $0 }
            }
            for name in ["cpu", "memory"] {
                let limit = amount(container.resources?.limits, name)
                let request = amount(container.resources?.requests, name) ?? limit
                if limit != nil || request != nil { anySet = true }
                guard let limit, request == limit else { guaranteed = false; continue }
            }
        }
        if !anySet { return .bestEffort }
        return guaranteed ? .guaranteed : .burstable
    }
}
