/// core/v1 PodSecurityContext: what applies to every container unless the container overrides it.
public struct PodSecurityContext: Codable, Sendable, Hashable {
    public var seLinuxOptions: SELinuxOptions?
    public var runAsUser: Int64?
    public var runAsGroup: Int64?
    public var runAsNonRoot: Bool?
    public var supplementalGroups: [Int64]?
    /// `Merge` (the default) or `Strict`.
    public var supplementalGroupsPolicy: String?
    /// The group that owns (and may write) the pod's volumes.
    public var fsGroup: Int64?
    /// `OnRootMismatch` or `Always` (the default).
    public var fsGroupChangePolicy: String?
    /// Namespaced sysctls set in the pod's sandbox.
    public var sysctls: [Sysctl]?
    public var seccompProfile: SeccompProfile?
    public var appArmorProfile: AppArmorProfile?

    public init(seLinuxOptions: SELinuxOptions? = nil, runAsUser: Int64? = nil, runAsGroup: Int64? = nil, runAsNonRoot: Bool? = nil,
                supplementalGroups: [Int64]? = nil, supplementalGroupsPolicy: String? = nil, fsGroup: Int64? = nil,
                fsGroupChangePolicy: String? = nil, sysctls: [Sysctl]? = nil, seccompProfile: SeccompProfile? = nil,
                appArmorProfile: AppArmorProfile? = nil) {
        self.seLinuxOptions = seLinuxOptions
        self.runAsUser = runAsUser
        self.runAsGroup = runAsGroup
        self.runAsNonRoot = runAsNonRoot
        self.supplementalGroups = supplementalGroups
        self.supplementalGroupsPolicy = supplementalGroupsPolicy
        self.fsGroup = fsGroup
        self.fsGroupChangePolicy = fsGroupChangePolicy
        self.sysctls = sysctls
        self.seccompProfile = seccompProfile
        self.appArmorProfile = appArmorProfile
    }
}

/// core/v1 SecurityContext: one container's.
public struct SecurityContext: Codable, Sendable, Hashable {
    public var capabilities: Capabilities?
    public var privileged: Bool?
    public var seLinuxOptions: SELinuxOptions?
    public var runAsUser: Int64?
    public var runAsGroup: Int64?
    public var runAsNonRoot: Bool?
    public var readOnlyRootFilesystem: Bool?
    public var allowPrivilegeEscalation: Bool?
    /// `Default` or `Unmasked`.
    public var procMount: String?
    public var seccompProfile: SeccompProfile?
    public var appArmorProfile: AppArmorProfile?

    public init(capabilities: Capabilities? = nil, privileged: Bool? = nil, seLinuxOptions: SELinuxOptions? = nil, runAsUser: Int64? = nil,
                runAsGroup: Int64? = nil, runAsNonRoot: Bool? = nil, readOnlyRootFilesystem: Bool? = nil,
                allowPrivilegeEscalation: Bool? = nil, procMount: String? = nil, seccompProfile: SeccompProfile? = nil,
                appArmorProfile: AppArmorProfile? = nil) {
        self.capabilities = capabilities
        self.privileged = privileged
        self.seLinuxOptions = seLinuxOptions
        self.runAsUser = runAsUser
        self.runAsGroup = runAsGroup
        self.runAsNonRoot = runAsNonRoot
        self.readOnlyRootFilesystem = readOnlyRootFilesystem
        self.allowPrivilegeEscalation = allowPrivilegeEscalation
        self.procMount = procMount
        self.seccompProfile = seccompProfile
        self.appArmorProfile = appArmorProfile
    }
}

/// core/v1 Capabilities: names without the `CAP_` prefix (`NET_ADMIN`), or `ALL`.
public struct Capabilities: Codable, Sendable, Hashable {
    public var add: [String]?
    public var drop: [String]?
    public init(add: [String]? = nil, drop: [String]? = nil) {
        self.add = add
        self.drop = drop
    }
}

/// core/v1 SELinuxOptions (carried, not applied).
public struct SELinuxOptions: Codable, Sendable, Hashable {
    public var user: String?
    public var role: String?
    public var type: String?
    public var level: String?
    public init(user: String? = nil, role: String? = nil, type: String? = nil, level: String? = nil) {
        self.user = user
        self.role = role
        self.type = type
        self.level = level
    }
}

/// core/v1 SeccompProfile.
public struct SeccompProfile: Codable, Sendable, Hashable {
    /// `RuntimeDefault`, `Unconfined` or `Localhost`.
    public var type: String
    /// With `Localhost`: the profile's path under the kubelet's seccomp directory.
    public var localhostProfile: String?
    public init(type: String, localhostProfile: String? = nil) {
        self.type = type
        self.localhostProfile = localhostProfile
    }
}

/// core/v1 AppArmorProfile.
public struct AppArmorProfile: Codable, Sendable, Hashable {
    /// `RuntimeDefault`, `Unconfined` or `Localhost`.
    public var type: String
    public var localhostProfile: String?
    public init(type: String, localhostProfile: String? = nil) {
        self.type = type
        self.localhostProfile = localhostProfile
    }
}

/// core/v1 Sysctl.
public struct Sysctl: Codable, Sendable, Hashable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
