import CSwiftletArchive

#if canImport(Glibc)
import Glibc
#endif

/// Content-addressed blobs under `<root>/content/blobs/sha256/<hex>`, as containerd lays them
/// out. A blob enters only through ``ingest(_:expected:size:)``: written to
/// `<root>/content/ingest/`, hashed as it is written, fsynced, and renamed into place only if
/// its digest and size are the ones expected. A blob in the store is therefore always whole
/// and correct; a write killed half-way leaves only an ingest file, removed by ``cleanIngests()``.
public struct ContentStore: Sendable {
    public let root: String

    public init(root: String) throws(ImageStoreError) {
        self.root = root
        for directory in [root + "/content/blobs/sha256", root + "/content/ingest"] {
            var current = ""
            for part in directory.split(separator: "/") {
                current += "/" + part
                if mkdir(current, 0o700) != 0 && errno != EEXIST { throw .io(current, "mkdir") }
            }
        }
    }

    public func path(_ digest: Digest) -> String { "\(root)/content/blobs/sha256/\(digest.hex)" }

    public func contains(_ digest: Digest) -> Bool { access(path(digest), F_OK) == 0 }

    /// The blob's size, if present.
    public func size(_ digest: Digest) -> Int64? {
        var info = stat()
        return stat(path(digest), &info) == 0 ? Int64(info.st_size) : nil
    }

    /// Writes what `stream` yields as the blob `expected` (of `size` bytes, if known).
    @discardableResult
    public func ingest<Source: ByteStream & ~Copyable>(_ stream: consuming Source, expected: Digest, size: Int64? = nil) throws(ImageStoreError) -> Int64 {
        if contains(expected) { return self.size(expected) ?? 0 }
        var source = stream
        let writer = try BlobWriter(store: self, expected: expected, size: size)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = try source.read(into: buffer)
            if count == 0 { break }
            try writer.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
        return try writer.commit()
    }

    /// Writes a blob held in memory (manifests, configs).
    @discardableResult
    public func ingest(bytes: [UInt8], expected: Digest) throws(ImageStoreError) -> Int64 {
        try ingest(ByteArrayStream(bytes), expected: expected, size: Int64(bytes.count))
    }

    /// Reads a whole blob into memory (manifests and configs are small).
    public func read(_ digest: Digest, limit: Int = 16 << 20) throws(ImageStoreError) -> [UInt8] {
        var stream = try FileStream(path: path(digest))
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = try chunk.withUnsafeMutableBytes { raw in
                Result { () throws(ImageStoreError) -> Int in try stream.read(into: raw) }
            }.get()
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
            if bytes.count > limit { throw ImageStoreError(.invalidFormat, context: digest.description, detail: "larger than \(limit) bytes") }
        }
        return bytes
    }

    /// Deletes a blob (garbage collection decides which).
    public func remove(_ digest: Digest) {
        unlink(path(digest))
    }

    /// Every blob in the store.
    public func digests() -> [Digest] {
        guard let directory = opendir("\(root)/content/blobs/sha256") else { return [] }
        defer { closedir(directory) }
        var found: [Digest] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let digest = Digest("sha256:" + name) { found.append(digest) }
        }
        return found.sorted()
    }

    /// Removes ingest files left by writes that never finished: those of processes that are
    /// gone (`<hex>.<pid>.<random>`); a pull running in another process keeps its file.
    public func cleanIngests() {
        guard let directory = opendir("\(root)/content/ingest") else { return }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name == "." || name == ".." { continue }
            let parts = name.split(separator: ".")
            if parts.count == 3, let pid = Int32(parts[1]), kill(pid, 0) == 0 || errno == EPERM { continue }
            unlink("\(root)/content/ingest/\(name)")
        }
    }
}

/// Writes one blob as its bytes arrive (a download), hashing them; ``commit()`` moves it into
/// the store only if digest and size match. Dropping an uncommitted writer removes its file.
public final class BlobWriter {
    private let store: ContentStore
    public let expected: Digest
    public let size: Int64?
    private let temporary: String
    private var fd: Int32
    private var hash: SHA256? = SHA256()
    public private(set) var written: Int64 = 0
    private var committed = false

    public init(store: ContentStore, expected: Digest, size: Int64?) throws(ImageStoreError) {
        self.store = store
        self.expected = expected
        self.size = size
        temporary = "\(store.root)/content/ingest/\(expected.hex).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io(temporary, "create") }
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(temporary) }
    }

    public func write(_ chunk: UnsafeRawBufferPointer) throws(ImageStoreError) {
        hash!.update(chunk)
        var offset = 0
        while offset < chunk.count {
            let result = Glibc.write(fd, chunk.baseAddress! + offset, chunk.count - offset)
            if result < 0 {
                if errno == EINTR { continue }
                throw .io(temporary, "write")
            }
            offset += result
        }
        written += Int64(chunk.count)
        if let size, written > size {
            throw ImageStoreError(.digestMismatch, context: expected.description, detail: "more than the \(size) bytes its descriptor gives")
        }
    }

    /// Verifies and moves the blob into the store; returns its size.
    @discardableResult
    public func commit() throws(ImageStoreError) -> Int64 {
        let actual = hash.take()!.finish()
        guard actual == expected else {
            throw ImageStoreError(.digestMismatch, context: expected.description, detail: "content has digest \(actual)")
        }
        if let size, written != size {
            throw ImageStoreError(.digestMismatch, context: expected.description, detail: "\(written) bytes, its descriptor says \(size)")
        }
        guard fsync(fd) == 0 else { throw .io(temporary, "fsync") }
        close(fd)
        fd = -1
        guard rename(temporary, store.path(expected)) == 0 else { throw .io(store.path(expected), "rename") }
        committed = true
        return written
    }
}

/// A byte array as a stream.
public struct ByteArrayStream: ByteStream {
    let bytes: [UInt8]
    var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ImageStoreError) -> Int {
        let count = min(buffer.count, bytes.count - offset)
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: count) }
        offset += count
        return count
    }
}
