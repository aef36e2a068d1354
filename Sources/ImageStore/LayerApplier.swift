import CSwiftletArchive

#if canImport(Glibc)
import Glibc
#endif

/// Applies an image layer (a tar, gzip or not) to a directory.
///
/// Every entry is created relative to the directory through `openat2(RESOLVE_IN_ROOT)`, so
/// neither `..` nor a symlink planted by an earlier entry or layer can make a write land
/// outside it; entries naming `..` are refused outright. Ownership, modes, modification times,
/// xattrs, hard links, symlinks and device nodes are kept.
///
/// Whiteouts (`.wh.<name>`, and `.wh..wh..opq` for opaque directories) are applied as the
/// target wants them: ``Mode/overlay`` writes overlayfs's form (a 0/0 character device, the
/// `trusted.overlay.opaque` xattr) into a layer directory meant to be a lower of an overlay
/// mount; ``Mode/flatten`` deletes what they hide in a directory that accumulates layers.
public struct LayerApplier: Sendable {
    public enum Mode: Sendable { case overlay, flatten }

    public let root: String
    public let mode: Mode

    public init(root: String, mode: Mode) {
        self.root = root
        self.mode = mode
    }

    /// What an apply wrote.
    public struct Summary: Sendable, Equatable {
        public var entries = 0
        public var bytes: Int64 = 0
    }

    static let whiteoutPrefix = ".wh."
    static let opaqueMarker = ".wh..wh..opq"

    /// Applies the layer read from `stream`.
    public func apply<Source: ByteStream & ~Copyable>(_ stream: consuming Source, name: String) throws(ImageStoreError) -> Summary {
        let rootFD = open(root, SWA_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw .io(root, "open") }
        defer { close(rootFD) }
        var reader = TarReader(stream, name: name)
        var summary = Summary()
        var directories: [(String, Int64)] = []
        var addedHere: Set<String> = []
        var buffer = [UInt8](repeating: 0, count: 256 << 10)
        while let entry = try reader.next() {
            let path = try Self.clean(entry.path, layer: name)
            if path.isEmpty { continue }  // "./" itself
            let (parentPath, base) = Self.split(path)
            let parent = try openParent(rootFD, parentPath, layer: name)
            defer { close(parent) }
            summary.entries += 1

            if base == Self.opaqueMarker {
                switch mode {
                case .overlay:
                    guard swa_set_xattr(root + "/" + parentPath, "trusted.overlay.opaque", "y", 1) == 0 else {
                        throw .io(root + "/" + parentPath, "mark opaque")
                    }
                case .flatten:
                    try removeChildren(of: parentPath, keeping: addedHere)
                }
                continue
            }
            if base.hasPrefix(Self.whiteoutPrefix) {
                let hidden = String(base.dropFirst(Self.whiteoutPrefix.count))
                try removeAny(parent, hidden, path: parentPath.isEmpty ? hidden : parentPath + "/" + hidden)
                if mode == .overlay, mknodat(parent, hidden, S_IFCHR | 0, 0) != 0 {
                    throw .io(root + "/" + path, "whiteout")
                }
                continue
            }
            addedHere.insert(path)

            if entry.kind == .directory {
                var info = stat()
                if fstatat(parent, base, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) != S_IFDIR {
                    try removeAny(parent, base, path: path)
                }
                if mkdirat(parent, base, 0o700) != 0 && errno != EEXIST { throw .io(root + "/" + path, "mkdir") }
                directories.append((path, entry.modificationTime))
            } else {
                try removeAny(parent, base, path: path)
                switch entry.kind {
                case .file:
                    let fd = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                    guard fd >= 0 else { throw .io(root + "/" + path, "create") }
                    defer { close(fd) }
                    while true {
                        let count = try buffer.withUnsafeMutableBytes { raw in
                            Result { () throws(ImageStoreError) -> Int in try reader.read(into: raw) }
                        }.get()
                        if count == 0 { break }
                        var offset = 0
                        while offset < count {
                            let written = buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, count - offset) }
                            if written < 0 {
                                if errno == EINTR { continue }
                                throw .io(root + "/" + path, "write")
                            }
                            offset += written
                        }
                        summary.bytes += Int64(count)
                    }
                case .symbolicLink:
                    guard symlinkat(entry.linkName, parent, base) == 0 else { throw .io(root + "/" + path, "symlink") }
                case .hardLink:
                    let target = try Self.clean(entry.linkName, layer: name)
                    let (targetParentPath, targetBase) = Self.split(target)
                    let targetParent = try openParent(rootFD, targetParentPath, layer: name)
                    defer { close(targetParent) }
                    guard linkat(targetParent, targetBase, parent, base, 0) == 0 else {
                        throw .io(root + "/" + path, "link to \(target)")
                    }
                    continue  // a hard link shares the target's metadata
                case .characterDevice, .blockDevice, .fifo:
                    let type: mode_t = entry.kind == .characterDevice ? S_IFCHR : entry.kind == .blockDevice ? S_IFBLK : S_IFIFO
                    let device = (UInt64(entry.deviceMajor) << 8) | UInt64(entry.deviceMinor & 0xff)
                        | (UInt64(entry.deviceMinor & ~0xff) << 12) | (UInt64(entry.deviceMajor & ~0xfff) << 32)
                    guard mknodat(parent, base, type | 0o600, dev_t(device)) == 0 else { throw .io(root + "/" + path, "mknod") }
                case .directory:
                    break
                }
            }
            // Ownership first (chown clears set-id bits), then the mode, xattrs, the time.
            guard fchownat(parent, base, entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) == 0 else { throw .io(root + "/" + path, "chown") }
            if entry.kind != .symbolicLink {
                guard fchmodat(parent, base, mode_t(entry.mode), 0) == 0 else { throw .io(root + "/" + path, "chmod") }
            }
            for (key, value) in entry.xattrs.sorted(by: { $0.key < $1.key }) {
                let status = value.withUnsafeBytes { swa_set_xattr(root + "/" + path, key, $0.baseAddress, $0.count) }
                if status != 0 && errno != ENOTSUP { throw .io(root + "/" + path, "set xattr \(key)") }
            }
            if entry.kind != .directory {
                var times = [timespec(tv_sec: Int(entry.modificationTime), tv_nsec: 0), timespec(tv_sec: Int(entry.modificationTime), tv_nsec: 0)]
                utimensat(parent, base, &times, AT_SYMLINK_NOFOLLOW)
            }
        }
        // Read past the end-of-archive blocks, so a hash of the stream covers all of it.
        try reader.drain()
        // Directory times last: creating their children changed them.
        for (path, time) in directories.reversed() {
            var times = [timespec(tv_sec: Int(time), tv_nsec: 0), timespec(tv_sec: Int(time), tv_nsec: 0)]
            let fd = swa_open_in_root(rootFD, path, O_RDONLY | O_DIRECTORY, 0)
            if fd >= 0 {
                futimens(fd, &times)
                close(fd)
            }
        }
        return summary
    }

    /// A tar path as a relative path without `.` components; `..` anywhere is refused.
    static func clean(_ path: String, layer: String) throws(ImageStoreError) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." && !part.isEmpty {
            guard part != ".." else {
                throw ImageStoreError(.unsafePath, context: layer, detail: "entry \"\(path)\" climbs out of the layer with ..")
            }
            parts.append(part)
        }
        return parts.joined(separator: "/")
    }

    static func split(_ path: String) -> (String, String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        return (String(path[..<slash]), String(path[path.index(after: slash)...]))
    }

    /// The parent directory, created if missing, opened inside the root.
    private func openParent(_ rootFD: Int32, _ path: String, layer: String) throws(ImageStoreError) -> Int32 {
        let fd = swa_open_in_root(rootFD, path, SWA_O_PATH | O_DIRECTORY, 0)
        if fd >= 0 { return fd }
        guard errno == ENOENT, !path.isEmpty else {
            throw ImageStoreError(.unsafePath, context: layer, errno: errno, detail: "parent \(path) is not a directory inside the layer")
        }
        let (grandparentPath, base) = Self.split(path)
        let grandparent = try openParent(rootFD, grandparentPath, layer: layer)
        defer { close(grandparent) }
        if mkdirat(grandparent, base, 0o755) != 0 && errno != EEXIST { throw .io(root + "/" + path, "mkdir") }
        let created = swa_open_in_root(rootFD, path, SWA_O_PATH | O_DIRECTORY, 0)
        guard created >= 0 else { throw .io(root + "/" + path, "open") }
        return created
    }

    /// Removes `name` in `parent` whatever it is (a directory with all it holds).
    private func removeAny(_ parent: Int32, _ name: String, path: String) throws(ImageStoreError) {
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            try removeChildren(of: path, keeping: [])
            guard unlinkat(parent, name, AT_REMOVEDIR) == 0 else { throw .io(root + "/" + path, "rmdir") }
        } else if unlinkat(parent, name, 0) != 0 && errno != ENOENT {
            throw .io(root + "/" + path, "unlink")
        }
    }

    /// Removes everything in a directory except paths this layer added (an opaque marker may
    /// come after entries of its own directory).
    private func removeChildren(of path: String, keeping kept: Set<String>) throws(ImageStoreError) {
        let rootFD = open(root, SWA_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw .io(root, "open") }
        defer { close(rootFD) }
        let fd = swa_open_in_root(rootFD, path, O_RDONLY | O_DIRECTORY, 0)
        guard fd >= 0 else { return }
        guard let directory = fdopendir(fd) else {
            close(fd)
            throw .io(root + "/" + path, "opendir")
        }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        defer { closedir(directory) }
        for name in names {
            let child = path.isEmpty ? name : path + "/" + name
            if kept.contains(child) { continue }
            try removeAny(dirfd(directory), name, path: child)
        }
    }
}
