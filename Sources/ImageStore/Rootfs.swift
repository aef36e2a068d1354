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
        for lower in lowers where access(lower, F_OK) != 0 {
            throw ImageStoreError(.notFound, context: lower, detail: "a snapshot of \(image.id) is missing; pull or import the image again")
        }
        let options = "lowerdir=\(lowers.joined(separator: ":")),upperdir=\(directory)/upper,workdir=\(directory)/work"
        if options.utf8.count < 4000, mount("overlay", rootfs, "overlay", 0, options) == 0 {
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
    }
}
