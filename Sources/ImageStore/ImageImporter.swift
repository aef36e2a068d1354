import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Imports images without a registry: an OCI image layout directory, an OCI archive (a tar of
/// one), or a Docker archive (`docker save`). Every blob is verified as it enters the store.
extension ImageStore {
    /// Imports `path`; names images by their `org.opencontainers.image.ref.name` /
    /// `io.containerd.image.name` annotations or RepoTags, or by `name` when given (one image).
    /// Returns the names imported.
    @discardableResult
    public func importArchive(_ path: String, name: String? = nil) throws(ImageStoreError) -> [String] {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .io(path, "stat") }
        if (info.st_mode & S_IFMT) == S_IFDIR { return try importDirectory(path, name: name) }
        let staging = "\(root)/import-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard mkdir(staging, 0o700) == 0 else { throw .io(staging, "mkdir") }
        defer { try? FileManager.default.removeItem(atPath: staging) }
        _ = try LayerApplier(root: staging, mode: .flatten).apply(try GzipStream(try FileStream(path: path), name: path), name: path)
        return try importDirectory(staging, name: name)
    }

    private func importDirectory(_ directory: String, name: String?) throws(ImageStoreError) -> [String] {
        if access(directory + "/index.json", F_OK) == 0 { return try importLayout(directory, name: name) }
        if access(directory + "/manifest.json", F_OK) == 0 { return try importDocker(directory, name: name) }
        throw ImageStoreError(.invalidFormat, context: directory, detail: "neither an OCI layout (index.json) nor a Docker archive (manifest.json)")
    }

    private func readJSON<T: Decodable>(_ type: T.Type, _ path: String) throws(ImageStoreError) -> T {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(path, "read") }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw ImageStoreError(.invalidFormat, context: path, detail: "\(error)")
        }
    }

    private func ingestFile(_ path: String, _ descriptor: Descriptor) throws(ImageStoreError) {
        try content.ingest(try FileStream(path: path), expected: descriptor.digest, size: descriptor.size)
    }

    /// OCI image layout: index.json, blobs/sha256/<hex>.
    private func importLayout(_ directory: String, name: String?) throws(ImageStoreError) -> [String] {
        let index = try readJSON(Index.self, directory + "/index.json")
        func blob(_ digest: Digest) -> String { "\(directory)/blobs/sha256/\(digest.hex)" }
        func ingestTree(_ descriptor: Descriptor) throws(ImageStoreError) {
            try ingestFile(blob(descriptor.digest), descriptor)
            if MediaType.indexes.contains(descriptor.mediaType) {
                let nested = try readJSON(Index.self, blob(descriptor.digest))
                // Only this platform's manifest needs its layers; the other entries are kept
                // as the index refers to them when their blobs are present.
                for child in nested.manifests {
                    if child.platform == nil || nested.manifest(for: platform)?.digest == child.digest {
                        try ingestTree(child)
                    } else if access(blob(child.digest), F_OK) == 0 {
                        try ingestFile(blob(child.digest), child)
                    }
                }
            } else if MediaType.manifests.contains(descriptor.mediaType) {
                let manifest = try readJSON(Manifest.self, blob(descriptor.digest))
                try ingestFile(blob(manifest.config.digest), manifest.config)
                for layer in manifest.layers { try ingestFile(blob(layer.digest), layer) }
            } else if [MediaType.dockerSchema1, MediaType.dockerSchema1Signed].contains(descriptor.mediaType) {
                throw ImageStoreError(.invalidFormat, context: descriptor.digest.description,
                                      detail: "Docker schema 1 images are not supported")
            }
        }
        var names: [String] = []
        for descriptor in index.manifests {
            try ingestTree(descriptor)
            let annotations = descriptor.annotations ?? [:]
            let label = name ?? annotations["io.containerd.image.name"] ?? annotations["org.opencontainers.image.ref.name"]
            guard let label else { continue }
            // A bare ref.name ("v1") is a tag of an unnamed image: keep it under "import".
            let full = label.contains("/") || label.contains(":") || index.manifests.count == 1 && name != nil ? label : "import/image:\(label)"
            try tag(full, target: descriptor)
            names.append(ImageReference(full)?.description ?? full)
        }
        return names
    }

    private struct DockerArchiveEntry: Decodable {
        var Config: String
        var RepoTags: [String]?
        var Layers: [String]
    }

    /// `docker save`: manifest.json, a config JSON, and an uncompressed tar per layer. A Docker
    /// v2 manifest is made for it, so the image is stored like a pulled one.
    private func importDocker(_ directory: String, name: String?) throws(ImageStoreError) -> [String] {
        let entries = try readJSON([DockerArchiveEntry].self, directory + "/manifest.json")
        var names: [String] = []
        for entry in entries {
            func describe(_ relative: String, _ mediaType: String) throws(ImageStoreError) -> Descriptor {
                let path = directory + "/" + relative
                var hash = SHA256()
                var stream = try FileStream(path: path)
                var size: Int64 = 0
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
                defer { buffer.deallocate() }
                while true {
                    let count = try stream.read(into: buffer)
                    if count == 0 { break }
                    hash.update(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                    size += Int64(count)
                }
                let descriptor = Descriptor(mediaType: mediaType, digest: hash.finish(), size: size)
                try ingestFile(path, descriptor)
                return descriptor
            }
            let config = try describe(entry.Config, MediaType.dockerConfig)
            let layers = try entry.Layers.map { layer throws(ImageStoreError) in
                try describe(layer, "application/vnd.docker.image.rootfs.diff.tar")
            }
            let manifest = Manifest(schemaVersion: 2, mediaType: MediaType.dockerManifest, config: config, layers: layers, annotations: nil)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let bytes: [UInt8]
            do { bytes = Array(try encoder.encode(manifest)) } catch { throw ImageStoreError(.invalidFormat, context: directory, detail: "\(error)") }
            let digest = Digest.of(bytes)
            try content.ingest(bytes: bytes, expected: digest)
            let target = Descriptor(mediaType: MediaType.dockerManifest, digest: digest, size: Int64(bytes.count))
            let tags = name.map { [$0] } ?? entry.RepoTags ?? []
            for tag in tags {
                try self.tag(tag, target: target)
                names.append(ImageReference(tag)?.description ?? tag)
            }
            if tags.isEmpty {
                // Unnamed: reachable by id.
                try self.tag("import/\(config.digest.hex.prefix(12)):latest", target: target)
                names.append("docker.io/import/\(config.digest.hex.prefix(12)):latest")
            }
        }
        return names
    }
}
