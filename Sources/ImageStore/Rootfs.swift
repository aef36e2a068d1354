import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension ImageStore {
    /// How a container's root filesystem was made.
    public enum RootfsKind: String, Sendable, Codable {
        /// overlayfs: the image's snapshots as lower layers, upper and work per container.
        case overlay
        /// A copy of the flattened layers (where overlayfs cannot be mounted).
        case copy
    }

    /// Makes the root filesystem of a container over `image` in `directory`
    /// (`<directory>/rootfs`, with `upper` and `work` beside it): an overlay mount whose lower
    /// layers are the image's chain, shared with every other container of the image, or a
    /// private copy where overlayfs is unavailable. Returns the rootfs path and how it was made.
    public func mountRootfs(_ image: StoredImage, at directory: String) throws(ImageStoreError) -> (path: String, kind: RootfsKind) {
        let rootfs = directory + "/rootfs"
        for path in [directory, rootfs, directory + "/upper", directory + "/work"] where mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw .io(path, "mkdir")
        }
        let lowers = lowerDirectories(image)
        // A lease keeps the snapshots from garbage collection while this rootfs exists,
        // even after the image itself is removed.
        try writeLease(for: directory, chains: image.chainIDs)
        for lower in lowers where access(lower, F_OK) != 0 {
            throw ImageStoreError(.notFound, context: lower, detail: "a snapshot of \(image.id) is missing; pull or import the image again")
        }
        let options = "lowerdir=\(lowers.joined(separator: ":")),upperdir=\(directory)/upper,workdir=\(directory)/work"
        // nodev: a device node shipped in an image must not open a host device (cgroup v2
        // has no device controller here); the container's /dev is a mount of its own.
        if options.utf8.count < 4000, mount("overlay", rootfs, "overlay", UInt(MS_NODEV), options) == 0 {
            return (rootfs, .overlay)
        }
        // Fallback: apply every layer, bottom first, into a private directory.
        let manifest = try decode(Manifest.self, image.manifest)
        for layer in manifest.layers {
            _ = try LayerApplier(root: rootfs, mode: .flatten).apply(
                try GzipStream(try FileStream(path: content.path(layer.digest)), name: layer.digest.description),
                name: layer.digest.description)
        }
        return (rootfs, .copy)
    }

    /// Undoes ``mountRootfs(_:at:)`` and removes the directory with the container's changes.
    public func removeRootfs(at directory: String) throws(ImageStoreError) {
        let rootfs = directory + "/rootfs"
        if umount2(rootfs, Int32(MNT_DETACH)) != 0 && errno != EINVAL && errno != ENOENT {
            throw .io(rootfs, "unmount")
        }
        do {
            if FileManager.default.fileExists(atPath: directory) { try FileManager.default.removeItem(atPath: directory) }
        } catch {
            throw ImageStoreError(.io, context: directory, detail: "\(error)")
        }
        unlink(leasePath(for: directory))
    }

    // MARK: Leases

    struct Lease: Codable {
        var directory: String
        var chains: [Digest]
    }

    func leasePath(for directory: String) -> String {
        var hash = SHA256()
        hash.update(Array(directory.utf8))
        return "\(root)/leases/\(hash.finish().hex)"
    }

    private func writeLease(for directory: String, chains: [Digest]) throws(ImageStoreError) {
        let path = leasePath(for: directory)
        do {
            try FileManager.default.createDirectory(atPath: root + "/leases", withIntermediateDirectories: true)
            try JSONEncoder().encode(Lease(directory: directory, chains: chains)).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw ImageStoreError(.io, context: path, detail: "cannot write the rootfs lease: \(error)")
        }
    }

    /// The chains container root filesystems use; leases whose rootfs is gone are dropped.
    func leasedChains() -> Set<Digest> {
        var chains: Set<Digest> = []
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/leases")) ?? []
        for name in names {
            let path = root + "/leases/" + name
            guard let data = FileManager.default.contents(atPath: path), let lease = try? JSONDecoder().decode(Lease.self, from: data) else {
                continue
            }
            if access(lease.directory, F_OK) != 0 {
                unlink(path)
                continue
            }
            chains.formUnion(lease.chains)
        }
        return chains
    }
}
