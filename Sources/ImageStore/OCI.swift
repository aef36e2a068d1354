/// The OCI image-spec and Docker schema 2 documents the store reads.
public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    public static let dockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json"
    public static let dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"

    public static let manifests: Set<String> = [ociManifest, dockerManifest]
    public static let indexes: Set<String> = [ociIndex, dockerManifestList]
    public static let layers: Set<String> = [ociLayer, ociLayerGzip, dockerLayerGzip, dockerForeignLayerGzip,
                                             "application/vnd.docker.image.rootfs.diff.tar"]
}

public struct Platform: Sendable, Codable, Equatable {
    public var architecture: String
    public var os: String
    public var variant: String?

    enum CodingKeys: String, CodingKey { case architecture, os, variant }

    public init(architecture: String, os: String, variant: String? = nil) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
    }

    /// This machine: linux/amd64 here (arm64 with variant v8 where built for it).
    public static var current: Platform {
        #if arch(x86_64)
        Platform(architecture: "amd64", os: "linux")
        #elseif arch(arm64)
        Platform(architecture: "arm64", os: "linux", variant: "v8")
        #else
        Platform(architecture: "unknown", os: "linux")
        #endif
    }
}

public struct Descriptor: Sendable, Codable, Equatable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var platform: Platform?
    public var annotations: [String: String]?
    public var urls: [String]?

    public init(mediaType: String, digest: Digest, size: Int64, platform: Platform? = nil, annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
        self.annotations = annotations
    }
}

/// An OCI image manifest or a Docker schema 2 manifest (the same shape).
public struct Manifest: Sendable, Codable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var annotations: [String: String]?
}

/// An OCI index or a Docker manifest list.
public struct Index: Sendable, Codable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [Descriptor]
    public var annotations: [String: String]?

    /// The manifest for `platform`: os and architecture must match, a variant when both say one.
    public func manifest(for platform: Platform) -> Descriptor? {
        let candidates = manifests.filter { MediaType.manifests.contains($0.mediaType) || $0.mediaType.isEmpty }
        return candidates.first { descriptor in
            guard let p = descriptor.platform else { return false }
            return p.os == platform.os && p.architecture == platform.architecture
                && (platform.variant == nil || p.variant == nil || p.variant == platform.variant)
        }
    }
}

/// The image configuration: what the runtime needs to run it.
public struct ImageConfiguration: Sendable, Codable, Equatable {
    public struct Config: Sendable, Codable, Equatable {
        public var User: String?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var WorkingDir: String?
        public var ExposedPorts: [String: EmptyObject]?
        public var Volumes: [String: EmptyObject]?
        public var Labels: [String: String]?
        public var StopSignal: String?
    }
    public struct RootFS: Sendable, Codable, Equatable {
        public var type: String
        public var diff_ids: [Digest]
    }
    public struct EmptyObject: Sendable, Codable, Equatable {}

    public var architecture: String?
    public var os: String?
    public var created: String?
    public var config: Config?
    public var rootfs: RootFS
}

extension Digest {
    /// The OCI chain ID of layers with these diff IDs (identity for one layer, then
    /// sha256("<parent chain> <diff id>")), naming an unpacked layer stack.
    public static func chainIDs(_ diffIDs: [Digest]) -> [Digest] {
        var chain: [Digest] = []
        for diffID in diffIDs {
            if let parent = chain.last {
                chain.append(Digest.of(Array("\(parent) \(diffID)".utf8)))
            } else {
                chain.append(diffID)
            }
        }
        return chain
    }
}
