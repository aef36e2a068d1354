/// core/v1 Volume: a name and one source. The sources the node implements are typed; any other
/// source (`nfs`, `csi`, `ephemeral`, …) is kept in ``otherSources`` so the node can refuse the pod
/// by naming it, and so that it survives a round trip.
public struct Volume: Codable, Sendable, Hashable {
    public var name: String
    public var emptyDir: EmptyDirVolumeSource?
    public var hostPath: HostPathVolumeSource?
    public var configMap: ConfigMapVolumeSource?
    public var secret: SecretVolumeSource?
    public var downwardAPI: DownwardAPIVolumeSource?
    public var projected: ProjectedVolumeSource?
    /// Decoded so the node can say it does not support claims.
    public var persistentVolumeClaim: PersistentVolumeClaimVolumeSource?
    /// Sources without a typed field here, by their JSON key.
    public var otherSources: [String: JSONValue]?

    public init(name: String, emptyDir: EmptyDirVolumeSource? = nil, hostPath: HostPathVolumeSource? = nil,
                configMap: ConfigMapVolumeSource? = nil, secret: SecretVolumeSource? = nil, downwardAPI: DownwardAPIVolumeSource? = nil,
                projected: ProjectedVolumeSource? = nil, persistentVolumeClaim: PersistentVolumeClaimVolumeSource? = nil,
                otherSources: [String: JSONValue]? = nil) {
        self.name = name
        self.emptyDir = emptyDir
        self.hostPath = hostPath
        self.configMap = configMap
        self.secret = secret
        self.downwardAPI = downwardAPI
        self.projected = projected
        self.persistentVolumeClaim = persistentVolumeClaim
        self.otherSources = otherSources
    }

    /// The JSON key of the volume's source (`emptyDir`, `nfs`, …), nil if it names none.
    public var sourceKind: String? {
        if emptyDir != nil { return "emptyDir" }
        if hostPath != nil { return "hostPath" }
        if configMap != nil { return "configMap" }
        if secret != nil { return "secret" }
        if downwardAPI != nil { return "downwardAPI" }
        if projected != nil { return "projected" }
        if persistentVolumeClaim != nil { return "persistentVolumeClaim" }
        return otherSources?.keys.sorted().first
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case name, emptyDir, hostPath, configMap, secret, downwardAPI, projected, persistentVolumeClaim
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        emptyDir = try container.decodeIfPresent(EmptyDirVolumeSource.self, forKey: .emptyDir)
        hostPath = try container.decodeIfPresent(HostPathVolumeSource.self, forKey: .hostPath)
        configMap = try container.decodeIfPresent(ConfigMapVolumeSource.self, forKey: .configMap)
        secret = try container.decodeIfPresent(SecretVolumeSource.self, forKey: .secret)
        downwardAPI = try container.decodeIfPresent(DownwardAPIVolumeSource.self, forKey: .downwardAPI)
        projected = try container.decodeIfPresent(ProjectedVolumeSource.self, forKey: .projected)
        persistentVolumeClaim = try container.decodeIfPresent(PersistentVolumeClaimVolumeSource.self, forKey: .persistentVolumeClaim)
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        let any = try decoder.container(keyedBy: AnyKey.self)
        var others: [String: JSONValue] = [:]
        for key in any.allKeys where !known.contains(key.stringValue) {
            let value = try any.decode(JSONValue.self, forKey: key)
            if value != .null { others[key.stringValue] = value }
        }
        otherSources = others.isEmpty ? nil : others
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encodeIfPresent(emptyDir, forKey: .emptyDir)
        try container.encodeIfPresent(hostPath, forKey: .hostPath)
        try container.encodeIfPresent(configMap, forKey: .configMap)
        try container.encodeIfPresent(secret, forKey: .secret)
        try container.encodeIfPresent(downwardAPI, forKey: .downwardAPI)
        try container.encodeIfPresent(projected, forKey: .projected)
        try container.encodeIfPresent(persistentVolumeClaim, forKey: .persistentVolumeClaim)
        if let otherSources {
            var any = encoder.container(keyedBy: AnyKey.self)
            for (key, value) in otherSources { try any.encode(value, forKey: AnyKey(stringValue: key)) }
        }
    }
}

/// core/v1 EmptyDirVolumeSource.
public struct EmptyDirVolumeSource: Codable, Sendable, Hashable {
    /// Empty (the node's disk) or `Memory` (tmpfs).
    public var medium: String?
    /// A quantity (`"1Gi"`).
    public var sizeLimit: String?
    public init(medium: String? = nil, sizeLimit: String? = nil) {
        self.medium = medium
        self.sizeLimit = sizeLimit
    }

    private enum CodingKeys: String, CodingKey { case medium, sizeLimit }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        medium = try container.decodeIfPresent(String.self, forKey: .medium)
        sizeLimit = try container.decodeIfPresent(QuantityText.self, forKey: .sizeLimit)?.text
    }
}

/// core/v1 HostPathVolumeSource.
public struct HostPathVolumeSource: Codable, Sendable, Hashable {
    public var path: String
    /// Empty (no check), `DirectoryOrCreate`, `Directory`, `FileOrCreate`, `File`, `Socket`,
    /// `CharDevice` or `BlockDevice`.
    public var type: String?
    public init(path: String, type: String? = nil) {
        self.path = path
        self.type = type
    }
}

/// core/v1 KeyToPath: one key of a config map or secret projected to a relative path.
public struct KeyToPath: Codable, Sendable, Hashable {
    public var key: String
    public var path: String
    /// File mode bits (decimal in JSON, `0644` octal in YAML).
    public var mode: Int32?
    public init(key: String, path: String, mode: Int32? = nil) {
        self.key = key
        self.path = path
        self.mode = mode
    }
}

/// core/v1 ConfigMapVolumeSource.
public struct ConfigMapVolumeSource: Codable, Sendable, Hashable {
    public var name: String?
    public var items: [KeyToPath]?
    /// Defaults to 0644.
    public var defaultMode: Int32?
    public var optional: Bool?
    public init(name: String? = nil, items: [KeyToPath]? = nil, defaultMode: Int32? = nil, optional: Bool? = nil) {
        self.name = name
        self.items = items
        self.defaultMode = defaultMode
        self.optional = optional
    }
}

/// core/v1 SecretVolumeSource.
public struct SecretVolumeSource: Codable, Sendable, Hashable {
    public var secretName: String?
    public var items: [KeyToPath]?
    /// Defaults to 0644.
    public var defaultMode: Int32?
    public var optional: Bool?
    public init(secretName: String? = nil, items: [KeyToPath]? = nil, defaultMode: Int32? = nil, optional: Bool? = nil) {
        self.secretName = secretName
        self.items = items
        self.defaultMode = defaultMode
        self.optional = optional
    }
}

/// core/v1 DownwardAPIVolumeSource.
public struct DownwardAPIVolumeSource: Codable, Sendable, Hashable {
    public var items: [DownwardAPIVolumeFile]?
    public var defaultMode: Int32?
    public init(items: [DownwardAPIVolumeFile]? = nil, defaultMode: Int32? = nil) {
        self.items = items
        self.defaultMode = defaultMode
    }
}

/// core/v1 DownwardAPIVolumeFile: a field of the pod or a container's resource in a file.
public struct DownwardAPIVolumeFile: Codable, Sendable, Hashable {
    public var path: String
    public var fieldRef: ObjectFieldSelector?
    public var resourceFieldRef: ResourceFieldSelector?
    public var mode: Int32?
    public init(path: String, fieldRef: ObjectFieldSelector? = nil, resourceFieldRef: ResourceFieldSelector? = nil, mode: Int32? = nil) {
        self.path = path
        self.fieldRef = fieldRef
        self.resourceFieldRef = resourceFieldRef
        self.mode = mode
    }
}

/// core/v1 ProjectedVolumeSource: several sources in one directory (the service account volume
/// `kube-api-access-*` is one: a token, `ca.crt` from a config map, the namespace).
public struct ProjectedVolumeSource: Codable, Sendable, Hashable {
    public var sources: [VolumeProjection]?
    public var defaultMode: Int32?
    public init(sources: [VolumeProjection]? = nil, defaultMode: Int32? = nil) {
        self.sources = sources
        self.defaultMode = defaultMode
    }
}

/// core/v1 VolumeProjection: exactly one source.
public struct VolumeProjection: Codable, Sendable, Hashable {
    public var secret: SecretProjection?
    public var downwardAPI: DownwardAPIProjection?
    public var configMap: ConfigMapProjection?
    public var serviceAccountToken: ServiceAccountTokenProjection?
    /// Carried, not implemented.
    public var clusterTrustBundle: JSONValue?
    public init(secret: SecretProjection? = nil, downwardAPI: DownwardAPIProjection? = nil, configMap: ConfigMapProjection? = nil,
                serviceAccountToken: ServiceAccountTokenProjection? = nil) {
        self.secret = secret
        self.downwardAPI = downwardAPI
        self.configMap = configMap
        self.serviceAccountToken = serviceAccountToken
    }
}

/// core/v1 SecretProjection.
public struct SecretProjection: Codable, Sendable, Hashable {
    public var name: String?
    public var items: [KeyToPath]?
    public var optional: Bool?
    public init(name: String? = nil, items: [KeyToPath]? = nil, optional: Bool? = nil) {
        self.name = name
        self.items = items
        self.optional = optional
    }
}

/// core/v1 ConfigMapProjection.
public struct ConfigMapProjection: Codable, Sendable, Hashable {
    public var name: String?
    public var items: [KeyToPath]?
    public var optional: Bool?
    public init(name: String? = nil, items: [KeyToPath]? = nil, optional: Bool? = nil) {
        self.name = name
        self.items = items
        self.optional = optional
    }
}

/// core/v1 DownwardAPIProjection.
public struct DownwardAPIProjection: Codable, Sendable, Hashable {
    public var items: [DownwardAPIVolumeFile]?
    public init(items: [DownwardAPIVolumeFile]? = nil) { self.items = items }
}

/// core/v1 ServiceAccountTokenProjection: a bound token (``TokenRequest``) refreshed by the node.
public struct ServiceAccountTokenProjection: Codable, Sendable, Hashable {
    /// Empty: the API server's audiences.
    public var audience: String?
    /// Defaults to 3600 (at least 600).
    public var expirationSeconds: Int64?
    public var path: String
    public init(audience: String? = nil, expirationSeconds: Int64? = nil, path: String) {
        self.audience = audience
        self.expirationSeconds = expirationSeconds
        self.path = path
    }
}

/// core/v1 PersistentVolumeClaimVolumeSource.
public struct PersistentVolumeClaimVolumeSource: Codable, Sendable, Hashable {
    public var claimName: String
    public var readOnly: Bool?
    public init(claimName: String, readOnly: Bool? = nil) {
        self.claimName = claimName
        self.readOnly = readOnly
    }
}
