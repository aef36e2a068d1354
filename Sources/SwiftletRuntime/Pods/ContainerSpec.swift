import CRI
import Containerizer
import Foundation
import ImageStore

#if canImport(Glibc)
import Glibc
#endif

/// Turns a CRI container config, its pod and its image into what the containerizer
/// launches, with the rules the kubelet expects of a runtime (containerd's): command and
/// args over the image's entrypoint and cmd, image env then the config's, the image's user
/// resolved in its own /etc/passwd, the pod's namespaces and files.
struct ContainerSpec {
    var config: CRI.ContainerConfig
    var sandbox: SandboxRecord
    /// The image's config (entrypoint, cmd, env, user, working dir).
    var imageConfig: ImageConfiguration.Config?
    /// The container's root filesystem, mounted.
    var rootfs: String
    var pins: NamespacePins
    var podDirectory: String
    /// The cgroup the container goes under (the pod's, resolved for the cgroup driver).
    var cgroupParent: String? = nil
    /// The pid of the pod's pid-namespace holder, when it has one.
    var podPIDHolder: Int32?
    /// Looks up another container's pid (TARGET pid namespaces).
    var targetPID: (String) -> Int32?

    func build() throws(CRIError) -> LaunchConfig {
        var launch = LaunchConfig(rootfs: rootfs, args: try arguments(imageConfig))
        launch.env = environment(imageConfig)
        launch.workingDirectory = config.workingDir.isEmpty ? (imageConfig?.WorkingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/") : config.workingDir
        let security = config.linux?.securityContext ?? LinuxContainerSecurityContext()
        launch.user = try user(security, imageUser: imageConfig?.User ?? "")
        if !launch.env.contains(where: { $0.hasPrefix("HOME=") }) {
            // As runc: HOME from the user's entry in the image's /etc/passwd, else /.
            let entry = Self.database(rootfs, "/etc/passwd").first { $0.count > 5 && $0[2] == String(launch.user.uid) }
            launch.env.append("HOME=" + (entry.map { $0[5].isEmpty ? "/" : $0[5] } ?? "/"))
        }
        launch.tty = config.tty
        if config.stdin { launch.stdin = true }
        if config.stdinOnce { launch.stdinOnce = true }
        launch.labels = config.labels
        launch.labels[PodRuntime.sandboxLabel] = sandbox.id
        launch.cgroupParent = cgroupParent
        if !sandbox.config.logDirectory.isEmpty && !config.logPath.isEmpty {
            launch.logPath = (sandbox.config.logDirectory as NSString).appendingPathComponent(config.logPath)
        }

        // Security.
        if security.privileged {
            guard sandbox.config.linux?.securityContext?.privileged == true else {
                throw CRIError.invalidArgument("no privileged container allowed in a sandbox that is not privileged")
            }
            launch.privileged = true
        }
        launch.readonlyRootfs = security.readonlyRootfs
        launch.noNewPrivileges = security.noNewPrivs
        launch.capabilities = try capabilities(security.capabilities)
        // As containerd: lists the kubelet sends replace the defaults; absent ones keep them.
        launch.maskedPaths = security.maskedPaths.isEmpty ? LaunchConfig.defaultMaskedPaths : security.maskedPaths
        launch.readonlyPaths = security.readonlyPaths.isEmpty ? LaunchConfig.defaultReadonlyPaths : security.readonlyPaths
        launch.seccomp = try seccomp(security)

        // Resources.
        if let resources = config.linux?.resources {
            launch.resources = Self.limits(resources)
            if resources.oomScoreAdj != 0 { launch.oomScoreAdj = Int(resources.oomScoreAdj) }
        }

        // Namespaces: the pod's network, IPC and UTS; the PID namespace per its mode.
        launch.namespaces.network = sandbox.hostNetwork ? .host : .join(pins.path(.net))
        launch.namespaces.uts = sandbox.hostNetwork ? .host : .join(pins.path(.uts))
        launch.namespaces.ipc = sandbox.hostIPC ? .host : .join(pins.path(.ipc))
        let pidMode = security.namespaceOptions?.pid ?? .container
        switch pidMode {
        case .node: launch.namespaces.pid = .host
        case .pod:
            guard let holder = podPIDHolder else {
                throw CRIError.invalidArgument("the container asks for the pod's PID namespace, but the pod sandbox was not created with one")
            }
            launch.namespaces.pid = .join("/proc/\(holder)/ns/pid")
        case .target:
            let target = security.namespaceOptions?.targetId ?? ""
            guard let pid = targetPID(target) else {
                throw CRIError.notFound("target container \"\(target)\" of the PID namespace is not running")
            }
            launch.namespaces.pid = .join("/proc/\(pid)/ns/pid")
        default: launch.namespaces.pid = .new
        }
        // The user namespace is the pod's: the container's own options can only agree.
        if let userNamespace = sandbox.userNamespace {
            guard !launch.privileged else {
                throw CRIError.invalidArgument("a privileged container cannot run in a pod with a user namespace")
            }
            if let mode = security.namespaceOptions?.usernsOptions?.mode, mode != .pod {
                throw CRIError.invalidArgument("the container asks for user namespace mode \(mode), but its pod has its own user namespace (POD)")
            }
            launch.userNamespace = userNamespace.containerNamespace(pins)
        } else if let mode = security.namespaceOptions?.usernsOptions?.mode, mode != .node {
            throw CRIError.invalidArgument("the container asks for user namespace mode \(mode), but its pod sandbox was created without a user namespace")
        }

        launch.mounts = try mounts()
        if !config.devices.isEmpty {
            launch.devices = config.devices.map {
                LaunchConfig.Device(hostPath: $0.hostPath, containerPath: $0.containerPath.isEmpty ? $0.hostPath : $0.containerPath,
                                    permissions: $0.permissions)
            }
        }
        return launch
    }

    /// The process: `command` replaces the entrypoint (and drops the image's cmd), `args`
    /// replaces the cmd.
    func arguments(_ image: ImageConfiguration.Config?) throws(CRIError) -> [String] {
        let entrypoint = config.command.isEmpty ? (image?.Entrypoint ?? []) : config.command
        let cmd = !config.args.isEmpty ? config.args : (config.command.isEmpty ? (image?.Cmd ?? []) : [])
        let args = entrypoint + cmd
        guard !args.isEmpty else {
            throw CRIError.invalidArgument("no command specified: the container config and the image \(image == nil ? "" : "config ")have neither command nor args")
        }
        return args
    }

    /// The image's environment, then the config's (a later key replaces an earlier one).
    func environment(_ image: ImageConfiguration.Config?) -> [String] {
        var order: [String] = []
        var values: [String: String] = [:]
        func set(_ key: String, _ value: String) {
            if values[key] == nil { order.append(key) }
            values[key] = value
        }
        for entry in image?.Env ?? [] {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            set(String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
        if values["PATH"] == nil { set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") }
        for variable in config.envs { set(variable.key, variable.value) }
        if values["HOSTNAME"] == nil {
            // As containerd: the pod's hostname, the node's for host-network pods.
            set("HOSTNAME", sandbox.hostNetwork ? PodRuntime.hostHostname()
                : (sandbox.config.hostname.isEmpty ? sandbox.config.metadata?.name ?? "" : sandbox.config.hostname))
        }
        return order.map { "\($0)=\(values[$0]!)" }
    }

    // MARK: User

    /// run_as_user / run_as_username / run_as_group over the image's `User`; names resolved in
    /// the image's /etc/passwd and /etc/group; supplementary groups from /etc/group plus
    /// the config's.
    func user(_ security: LinuxContainerSecurityContext, imageUser: String) throws(CRIError) -> LaunchConfig.User {
        let passwd = Self.database(rootfs, "/etc/passwd")
        let groups = Self.database(rootfs, "/etc/group")
        var uid: UInt32 = 0
        var gid: UInt32?
        var userName: String?
        let imageParts = imageUser.split(separator: ":", maxSplits: 1).map(String.init)
        let userSpec = security.runAsUser.map { String($0.value) } ?? (security.runAsUsername.isEmpty ? imageParts.first ?? "" : security.runAsUsername)
        if !userSpec.isEmpty {
            if let number = UInt32(userSpec) {
                uid = number
                if let entry = passwd.first(where: { $0.count > 3 && $0[2] == userSpec }) {
                    userName = entry[0]
                    gid = UInt32(entry[3])
                }
            } else {
                guard let entry = passwd.first(where: { $0.count > 3 && $0[0] == userSpec }), let number = UInt32(entry[2]) else {
                    throw CRIError.invalidArgument("user \"\(userSpec)\" is not in the image's /etc/passwd")
                }
                uid = number
                userName = userSpec
                gid = UInt32(entry[3])
            }
        }
        if security.runAsUser == nil, security.runAsUsername.isEmpty, imageParts.count == 2 {
            let groupSpec = imageParts[1]
            if let number = UInt32(groupSpec) {
                gid = number
            } else if let entry = groups.first(where: { $0.count > 2 && $0[0] == groupSpec }), let number = UInt32(entry[2]) {
                gid = number
            } else {
                throw CRIError.invalidArgument("group \"\(groupSpec)\" is not in the image's /etc/group")
            }
        }
        if let group = security.runAsGroup {
            // As containerd (and critest expects): a group alone would pair with the image's user.
            guard security.runAsUser != nil || !security.runAsUsername.isEmpty else {
                throw CRIError.invalidArgument("run_as_group is specified without run_as_user or run_as_username")
            }
            guard group.value >= 0, group.value <= Int64(UInt32.max) else { throw CRIError.invalidArgument("run_as_group \(group.value) is out of range") }
            gid = UInt32(group.value)
        }
        // As containerd: the primary group is a supplementary group too (what the status
        // reports as the process's groups, and what `Groups:` shows).
        var additional: [UInt32] = [gid ?? 0]
        // Merge (the default) adds the groups the image's /etc/group gives the user; Strict
        // keeps only the ones the config names.
        if let userName, security.supplementalGroupsPolicy != .strict {
            for entry in groups where entry.count > 3 && entry[3].split(separator: ",").contains(Substring(userName)) {
                if let number = UInt32(entry[2]) { additional.append(number) }
            }
        }
        for group in security.supplementalGroups where group >= 0 && group <= Int64(UInt32.max) {
            additional.append(UInt32(group))
        }
        var seen = Set<UInt32>()
        additional = additional.filter { seen.insert($0).inserted }
        return LaunchConfig.User(uid: uid, gid: gid ?? 0, additionalGids: additional)
    }

    /// The colon-separated lines of a file in the image, read only if neither it nor /etc is
    /// a symbolic link (which could point out of the root filesystem).
    static func database(_ rootfs: String, _ path: String) -> [[String]] {
        var info = stat()
        for component in ["/etc", path] {
            guard lstat(rootfs + component, &info) == 0, (info.st_mode & S_IFMT) != S_IFLNK else { return [] }
        }
        guard let data = FileManager.default.contents(atPath: rootfs + path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n")
            .filter { !$0.hasPrefix("#") }
            .map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }
    }

    // MARK: Security

    /// The CRI's add/drop lists over the default set ("ALL" in either, names with or
    /// without CAP_).
    func capabilities(_ capability: Capability?) throws(CRIError) -> Capabilities {
        guard let capability else { return .criDefault }
        func normalized(_ names: [String]) -> [String] {
            names.map { $0.uppercased() }.map { $0 == "ALL" || $0.hasPrefix("CAP_") ? $0 : "CAP_" + $0 }
        }
        let add = normalized(capability.addCapabilities), drop = normalized(capability.dropCapabilities)
        do {
            var set: Capabilities = add.contains("ALL") ? .all : .criDefault
            if drop.contains("ALL") { set = try Capabilities(names: []) }
            return try set.adding(add.filter { $0 != "ALL" }, dropping: drop.filter { $0 != "ALL" })
        } catch {
            throw CRIError.invalidArgument("capabilities: \(error)")
        }
    }

    /// The seccomp profile: the `seccomp` field, or the older `seccomp_profile_path`
    /// ("runtime/default", "docker/default", "unconfined", "localhost/<path>"); unconfined
    /// when neither is set.
    func seccomp(_ security: LinuxContainerSecurityContext) throws(CRIError) -> SeccompProfile {
        if let profile = security.seccomp {
            switch profile.profileType {
            case .runtimedefault: return .runtimeDefault
            case .unconfined: return .unconfined
            case .localhost:
                guard profile.localhostRef.hasPrefix("/") else {
                    throw CRIError.invalidArgument("seccomp localhost profile \"\(profile.localhostRef)\" must be an absolute path")
                }
                return .localhost(profile.localhostRef)
            case .unrecognized(let value): throw CRIError.invalidArgument("unknown seccomp profile type \(value)")
            }
        }
        let path = security.seccompProfilePath
        switch path {
        case "", "unconfined": return .unconfined
        case "runtime/default", "docker/default": return .runtimeDefault
        default:
            guard path.hasPrefix("localhost/") else { throw CRIError.invalidArgument("unknown seccomp profile \"\(path)\"") }
            return .localhost(String(path.dropFirst("localhost/".count)))
        }
    }

    static func limits(_ resources: LinuxContainerResources) -> ResourceLimits {
        var limits = ResourceLimits(cpuShares: resources.cpuShares, cpuQuota: resources.cpuQuota, cpuPeriod: resources.cpuPeriod,
                                    memoryLimitBytes: resources.memoryLimitInBytes, cpusetCpus: resources.cpusetCpus,
                                    cpusetMems: resources.cpusetMems)
        for page in resources.hugepageLimits { limits.hugepageLimits[page.pageSize] = Int64(clamping: page.limit) }
        return limits
    }

    // MARK: Mounts

    /// The config's mounts, then the pod's files where the config does not mount its own.
    func mounts() throws(CRIError) -> [LaunchConfig.Mount] {
        var mounts: [LaunchConfig.Mount] = []
        for mount in config.mounts {
            if let image = mount.image, !image.image.isEmpty {
                throw CRIError.invalidArgument("mount \(mount.containerPath): image volumes (an image mounted as a volume, \(image.image)) are not supported by swiftlet")
            }
            guard mount.hostPath.hasPrefix("/"), mount.containerPath.hasPrefix("/") else {
                throw CRIError.invalidArgument("mount \(mount.hostPath) -> \(mount.containerPath): both paths must be absolute")
            }
            if access(mount.hostPath, F_OK) != 0 {
                // As containerd: a missing host path is created as a directory.
                do {
                    try FileManager.default.createDirectory(atPath: mount.hostPath, withIntermediateDirectories: true)
                } catch {
                    throw CRIError.invalidArgument("mount source \(mount.hostPath) does not exist and cannot be created: \(error)")
                }
            }
            if mount.recursiveReadOnly && !mount.readonly {
                throw CRIError.invalidArgument("mount \(mount.containerPath): recursive read-only needs readonly")
            }
            if mount.recursiveReadOnly && mount.propagation != .propagationPrivate {
                throw CRIError.invalidArgument("mount \(mount.containerPath): recursive read-only needs private propagation")
            }
            let propagation: LaunchConfig.Mount.Propagation = switch mount.propagation {
            case .propagationHostToContainer: .rslave
            case .propagationBidirectional: .rshared
            default: .rprivate
            }
            var idmapped: Bool? = nil
            if !mount.uidMappings.isEmpty || !mount.gidMappings.isEmpty {
                // As containerd: a mount's idmapping is the pod's user namespace's, nothing else.
                guard let userNamespace = sandbox.userNamespace else {
                    throw CRIError.invalidArgument("mount \(mount.containerPath) has uid/gid mappings, but its pod has no user namespace")
                }
                guard userNamespace.matches(uids: mount.uidMappings, gids: mount.gidMappings) else {
                    throw CRIError.invalidArgument("mount \(mount.containerPath): its uid/gid mappings must be the pod's user namespace's")
                }
                idmapped = true
            }
            mounts.append(LaunchConfig.Mount(source: mount.hostPath, target: mount.containerPath, readonly: mount.readonly,
                                             recursiveReadonly: mount.recursiveReadOnly, propagation: propagation, idmapped: idmapped))
        }
        let targets = Set(mounts.map(\.target))
        let readonly = config.linux?.securityContext?.readonlyRootfs ?? false
        for (file, target) in [("hostname", "/etc/hostname"), ("hosts", "/etc/hosts"), ("resolv.conf", "/etc/resolv.conf")] where !targets.contains(target) {
            mounts.append(LaunchConfig.Mount(source: podDirectory + "/" + file, target: target, readonly: readonly))
        }
        if !targets.contains("/dev/shm") {
            mounts.append(LaunchConfig.Mount(source: sandbox.hostIPC ? "/dev/shm" : podDirectory + "/shm", target: "/dev/shm"))
        }
        return mounts
    }
}
