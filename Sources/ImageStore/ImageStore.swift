import CSwiftletArchive
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// An image as the CRI and the CLI see it: its id is its config digest; it may have several
/// names (tags and repo digests).
public struct StoredImage: Sendable, Equatable {
    /// The config digest (`sha256:…`), the CRI's `image_ref`.
    public var id: Digest
    /// `docker.io/library/busybox:latest`, …
    public var tags: [String]
    /// `docker.io/library/busybox@sha256:<manifest>`, …
    public var repoDigests: [String]
    /// The platform manifest.
    public var manifest: Digest
    /// Compressed layers plus the config, in bytes.
    public var size: Int64
    public var configuration: ImageConfiguration
    /// Chain IDs of the layer stack, bottom first.
    public var chainIDs: [Digest]
}

/// Swiftlet's image store under `<root>/images` (the agent's `--root`): verified blobs
/// (``ContentStore``), image records (names → manifest → config) in `images.json`, and one
/// unpacked snapshot per layer chain in `snapshots/<chain id>/fs`, shared by every image
/// (and container) with that chain. Mutations hold `images.lock`, so the CLI and the agent
/// can work on the same store at once; everything is written atomically, so a process killed
/// half-way leaves no corrupt image.
public final class ImageStore: Sendable {
    public let root: String
    public let content: ContentStore
    public let platform: Platform

    /// One name's record.
    public struct Record: Sendable, Codable, Equatable {
        public var name: String
        /// The manifest (or index) the name points at.
        public var target: Descriptor
        /// The platform manifest and its config.
        public var manifest: Digest
        public var config: Digest
        public var createdAt: Int64
    }

    /// The decoded images, reused until images.json changes (ListImages and ImageStatus are
    /// polled by the kubelet).
    private struct Cache {
        var stamp: [Int64] = []
        var images: [StoredImage] = []
    }
    private let cache = Mutex(Cache())

    public init(root: String, platform: Platform = .current) throws(ImageStoreError) {
        self.root = root
        self.platform = platform
        self.content = try ContentStore(root: root)
        for directory in [root + "/snapshots"] where mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw .io(directory, "mkdir")
        }
    }

    // MARK: Records

    private var recordsPath: String { root + "/images.json" }

    /// Every name's record.
    public func records() -> [String: Record] {
        guard let data = FileManager.default.contents(atPath: recordsPath),
              let records = try? JSONDecoder().decode([String: Record].self, from: data) else { return [:] }
        return records
    }

    private func write(_ records: [String: Record]) throws(ImageStoreError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do { data = try encoder.encode(records) } catch { throw ImageStoreError(.io, context: recordsPath, detail: "\(error)") }
        let temporary = recordsPath + ".tmp.\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { throw .io(temporary, "write") }
        let fd = open(temporary, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
        guard rename(temporary, recordsPath) == 0 else { throw .io(recordsPath, "rename") }
    }

    /// Runs `body` holding the store's lock (flock on images.lock).
    func locked<T>(_ body: () throws(ImageStoreError) -> T) throws(ImageStoreError) -> T {
        let fd = open(root + "/images.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io(root + "/images.lock", "open") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR { throw .io(root + "/images.lock", "flock") }
        }
        return try body()
    }

    // MARK: Reading images

    func decode<T: Decodable>(_ type: T.Type, _ digest: Digest) throws(ImageStoreError) -> T {
        let bytes = try content.read(digest)
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            throw ImageStoreError(.invalidFormat, context: digest.description, detail: "not a valid \(T.self): \(error)")
        }
    }

    /// The images, one per config digest, with every name pointing at it.
    public func images() -> [StoredImage] {
        var info = stat()
        let stamp: [Int64] = stat(recordsPath, &info) == 0
            ? [Int64(info.st_ino), Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec), Int64(info.st_size)] : [0]
        if let cached = cache.withLock({ $0.stamp == stamp ? $0.images : nil }) { return cached }
        let images = loadImages()
        cache.withLock { $0 = Cache(stamp: stamp, images: images) }
        return images
    }

    private func loadImages() -> [StoredImage] {
        var byID: [Digest: StoredImage] = [:]
        for record in records().values.sorted(by: { $0.name < $1.name }) {
            if byID[record.config] == nil {
                guard let manifest = try? decode(Manifest.self, record.manifest),
                      let configuration = try? decode(ImageConfiguration.self, record.config) else { continue }
                let size = manifest.layers.reduce(manifest.config.size) { $0 + $1.size }
                byID[record.config] = StoredImage(id: record.config, tags: [], repoDigests: [], manifest: record.manifest, size: size,
                                                 configuration: configuration, chainIDs: Digest.chainIDs(configuration.rootfs.diff_ids))
            }
            if record.name.contains("@") {
                byID[record.config]!.repoDigests.append(record.name)
            } else {
                byID[record.config]!.tags.append(record.name)
                if let reference = ImageReference(record.name) {
                    let digested = reference.digested(record.target.digest)
                    if !byID[record.config]!.repoDigests.contains(digested) { byID[record.config]!.repoDigests.append(digested) }
                }
            }
        }
        return byID.values.sorted { $0.id < $1.id }
    }

    /// The image `reference` names: an id (`sha256:…` or a unique hex prefix of 12+), a
    /// name (normalized, `busybox` = `docker.io/library/busybox:latest`), or `name@digest`.
    public func resolve(_ reference: String) -> StoredImage? {
        let all = images()
        if let digest = Digest(reference), let image = all.first(where: { $0.id == digest }) { return image }
        let hex = reference.hasPrefix("sha256:") ? String(reference.dropFirst(7)) : reference
        if hex.count >= 12, hex.allSatisfy(\.isHexDigit) {
            let matches = all.filter { $0.id.hex.hasPrefix(hex) }
            if matches.count == 1 { return matches[0] }
        }
        guard let parsed = ImageReference(reference) else { return nil }
        if let digest = parsed.digest {
            return all.first { image in image.manifest == digest || image.repoDigests.contains(parsed.digested(digest)) }
        }
        return all.first { $0.tags.contains(parsed.description) }
    }

    // MARK: Adding images

    /// Points `name` at `target` (a manifest or index whose blobs are all in the store),
    /// choosing this platform's manifest from an index; unpacks the layers.
    @discardableResult
    public func tag(_ name: String, target: Descriptor) throws(ImageStoreError) -> StoredImage {
        guard let reference = ImageReference(name), let key = reference.tagged ?? Optional(reference.digested(target.digest)) else {
            throw ImageStoreError(.invalidFormat, context: name, detail: "not an image reference")
        }
        let manifestDigest = try platformManifest(target)
        let manifest = try decode(Manifest.self, manifestDigest)
        let configuration = try decode(ImageConfiguration.self, manifest.config.digest)
        guard configuration.rootfs.diff_ids.count == manifest.layers.count else {
            throw ImageStoreError(.invalidFormat, context: manifestDigest.description,
                                  detail: "\(manifest.layers.count) layers but \(configuration.rootfs.diff_ids.count) diff ids in the config")
        }
        try unpack(manifest: manifest, diffIDs: configuration.rootfs.diff_ids)
        try locked { () throws(ImageStoreError) in
            var records = records()
            records[key] = Record(name: key, target: target, manifest: manifestDigest, config: manifest.config.digest,
                                  createdAt: Int64(Date().timeIntervalSince1970 * 1e9))
            try write(records)
        }
        guard let image = resolve(key) else { throw ImageStoreError(.notFound, context: key) }
        return image
    }

    /// The platform manifest of a manifest or index descriptor.
    func platformManifest(_ target: Descriptor) throws(ImageStoreError) -> Digest {
        switch target.mediaType {
        case _ where MediaType.manifests.contains(target.mediaType):
            return target.digest
        case _ where MediaType.indexes.contains(target.mediaType):
            let index = try decode(Index.self, target.digest)
            guard let chosen = index.manifest(for: platform) else {
                throw ImageStoreError(.notFound, context: "\(target.digest)",
                                      detail: "no manifest for \(platform.os)/\(platform.architecture) in the index")
            }
            return try platformManifest(chosen)
        case MediaType.dockerSchema1, MediaType.dockerSchema1Signed:
            throw ImageStoreError(.invalidFormat, context: target.digest.description,
                                  detail: "Docker schema 1 images are not supported (deprecated since 2017); push the image again with a current client")
        default:
            throw ImageStoreError(.invalidFormat, context: target.digest.description, detail: "unsupported media type \(target.mediaType)")
        }
    }

    // MARK: Snapshots

    public func snapshotPath(_ chainID: Digest) -> String { "\(root)/snapshots/\(chainID.hex)" }

    /// The unpacked layer directories of an image, top first (overlayfs's lowerdir order).
    public func lowerDirectories(_ image: StoredImage) -> [String] {
        image.chainIDs.reversed().map { snapshotPath($0) + "/fs" }
    }

    /// Unpacks every layer not unpacked yet, each into its own directory (overlay form),
    /// verifying the uncompressed content against the config's diff id.
    func unpack(manifest: Manifest, diffIDs: [Digest]) throws(ImageStoreError) {
        let chain = Digest.chainIDs(diffIDs)
        for (index, layer) in manifest.layers.enumerated() where access(snapshotPath(chain[index]), F_OK) != 0 {
            guard MediaType.layers.contains(layer.mediaType) else {
                throw ImageStoreError(.invalidFormat, context: layer.digest.description, detail: "unsupported layer media type \(layer.mediaType)")
            }
            let staging = "\(root)/snapshots/.unpacking-\(chain[index].hex)-\(getpid())"
            try? FileManager.default.removeItem(atPath: staging)
            guard mkdir(staging, 0o700) == 0, mkdir(staging + "/fs", 0o755) == 0 else { throw .io(staging, "mkdir") }
            do {
                let hash = HashBox()
                let stream = HashingStream(try GzipStream(try FileStream(path: content.path(layer.digest)), name: layer.digest.description), hash: hash)
                _ = try LayerApplier(root: staging + "/fs", mode: .overlay).apply(stream, name: layer.digest.description)
                let diffID = hash.finish()
                guard diffID == diffIDs[index] else {
                    throw ImageStoreError(.digestMismatch, context: layer.digest.description,
                                          detail: "uncompressed content has digest \(diffID), the config says \(diffIDs[index])")
                }
                try "\(diffID)\n".write(toFile: staging + "/diffid", atomically: false, encoding: .utf8)
                if index > 0 { try "\(chain[index - 1])\n".write(toFile: staging + "/parent", atomically: false, encoding: .utf8) }
            } catch let error as ImageStoreError {
                try? FileManager.default.removeItem(atPath: staging)
                throw error
            } catch {
                try? FileManager.default.removeItem(atPath: staging)
                throw ImageStoreError(.io, context: staging, detail: "\(error)")
            }
            if rename(staging, snapshotPath(chain[index])) != 0 {
                let code = errno
                try? FileManager.default.removeItem(atPath: staging)
                // Another process unpacked the same chain first: theirs is as good.
                if code != EEXIST && code != ENOTEMPTY { throw ImageStoreError(.io, context: snapshotPath(chain[index]), errno: code) }
            }
        }
    }

    // MARK: Removing

    /// Removes the image `reference` names, with every name it has (the CRI's RemoveImage);
    /// then collects garbage. Returns false if no such image.
    @discardableResult
    public func remove(_ reference: String) throws(ImageStoreError) -> Bool {
        guard let image = resolve(reference) else { return false }
        try locked { () throws(ImageStoreError) in
            var records = records()
            records = records.filter { $0.value.config != image.id }
            try write(records)
        }
        try collectGarbage()
        return true
    }

    /// Deletes blobs no image refers to and snapshots neither an image's chain nor a
    /// container's root filesystem (its lease) uses, and leftovers of interrupted writes and
    /// unpacks.
    @discardableResult
    public func collectGarbage(keepingChains extra: Set<Digest> = []) throws(ImageStoreError) -> (blobs: Int, snapshots: Int) {
        try locked { () throws(ImageStoreError) -> (blobs: Int, snapshots: Int) in
            var liveBlobs: Set<Digest> = []
            var liveChains = extra.union(leasedChains())
            for record in records().values {
                liveBlobs.insert(record.target.digest)
                if MediaType.indexes.contains(record.target.mediaType), let index = try? decode(Index.self, record.target.digest) {
                    liveBlobs.formUnion(index.manifests.map(\.digest))
                }
                liveBlobs.insert(record.manifest)
                if let manifest = try? decode(Manifest.self, record.manifest) {
                    liveBlobs.insert(manifest.config.digest)
                    liveBlobs.formUnion(manifest.layers.map(\.digest))
                }
                if let configuration = try? decode(ImageConfiguration.self, record.config) {
                    liveChains.formUnion(Digest.chainIDs(configuration.rootfs.diff_ids))
                }
            }
            var removed = (blobs: 0, snapshots: 0)
            for digest in content.digests() where !liveBlobs.contains(digest) {
                content.remove(digest)
                removed.blobs += 1
            }
            content.cleanIngests()
            let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/snapshots")) ?? []
            for name in names {
                let live = Digest("sha256:" + name).map(liveChains.contains) ?? false
                if !live {
                    try? FileManager.default.removeItem(atPath: root + "/snapshots/" + name)
                    if !name.hasPrefix(".") { removed.snapshots += 1 }
                }
            }
            return removed
        }
    }

    // MARK: Usage

    /// Bytes and inodes the store uses (content and snapshots), counted as `du` counts them:
    /// allocated blocks, each hard-linked inode once.
    public func usage() -> (bytes: UInt64, inodes: UInt64) {
        var seen: Set<UInt64> = []
        var bytes: UInt64 = 0
        var inodes: UInt64 = 0
        func walk(_ path: String) {
            var info = stat()
            guard lstat(path, &info) == 0 else { return }
            if seen.insert(UInt64(info.st_ino)).inserted {
                bytes += UInt64(info.st_blocks) * 512
                inodes += 1
            }
            guard (info.st_mode & S_IFMT) == S_IFDIR, let directory = opendir(path) else { return }
            var children: [String] = []
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { children.append(name) }
            }
            closedir(directory)
            for child in children { walk(path + "/" + child) }
        }
        walk(root)
        return (bytes, inodes)
    }
}

/// A SHA-256 shared between a stream that feeds it and the code that reads the result.
final class HashBox: @unchecked Sendable {
    private var hash: SHA256? = SHA256()
    func update(_ bytes: UnsafeRawBufferPointer) { hash?.update(bytes) }
    func finish() -> Digest {
        let digest = hash.take()!.finish()
        return digest
    }
}

/// Hashes what passes through, to the end of the stream (tar's trailing blocks included).
struct HashingStream<Source: ByteStream & ~Copyable>: ByteStream, ~Copyable {
    var source: Source
    let hash: HashBox

    init(_ source: consuming Source, hash: HashBox) {
        self.source = source
        self.hash = hash
    }

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ImageStoreError) -> Int {
        let count = try source.read(into: buffer)
        hash.update(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        return count
    }
}
