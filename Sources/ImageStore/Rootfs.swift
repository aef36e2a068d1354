import CSwiftletSyscalls
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

    /// The user namespace a container's root filesystem is seen through: its layers are
    /// idmapped mounts, so the image's files owned by 0 belong to the container's root, and
    /// what the container writes is stored as the image would have it.
    public struct IDMapping: Sendable, Equatable {
        /// A file of the user namespace (a pod's pinned `user` namespace).
        public var userNamespacePath: String
        /// The container's root (its uid and gid 0) on the host.
        public var rootUID: UInt32
        public var rootGID: UInt32

        public init(userNamespacePath: String, rootUID: UInt32, rootGID: UInt32) {
            self.userNamespacePath = userNamespacePath
            self.rootUID = rootUID
            self.rootGID = rootGID
        }
    }

    /// Makes the root filesystem of a container over `image` in `directory`
    /// (`<directory>/rootfs`, with `upper` and `work` beside it): an overlay mount whose lower
    /// layers are the image's chain, shared with every other container of the image, or a
    /// private copy where overlayfs is unavailable. With `idMapping` the layers are idmapped
    /// mounts through the container's user namespace (overlay only: Linux 6.8 or later).
    /// Returns the rootfs path and how it was made.
    public func mountRootfs(_ image: StoredImage, at directory: String, idMapping: IDMapping? = nil) throws(ImageStoreError) -> (path: String, kind: RootfsKind) {
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
        if let idMapping {
            var message = [CChar](repeating: 0, count: 512)
            let lowerPointers = lowers.map { strdup($0) }
            defer { lowerPointers.forEach { free($0) } }
            let mounted = lowerPointers.map { UnsafePointer($0) }.withUnsafeBufferPointer { lowerArray in
                swl_mount_idmapped_overlay(lowerArray.baseAddress, lowerArray.count, directory, rootfs, idMapping.userNamespacePath,
                                           idMapping.rootUID, idMapping.rootGID, &message, message.count)
            }
            guard mounted == 0 else {
                throw ImageStoreError(.io, context: "idmapped root filesystem at \(rootfs)",
                                      detail: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            return (rootfs, .overlay)
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
