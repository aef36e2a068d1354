import CSwiftletArchive

#if canImport(Glibc)
import Glibc
#endif

/// A source of bytes read in chunks: a file, or a gzip stream over one.
public protocol ByteStream: ~Copyable {
    /// Reads up to `buffer.count` bytes; 0 at the end.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ImageStoreError) -> Int
}

extension ByteStream where Self: ~Copyable {
    /// Reads exactly `count` bytes, or fewer only at the end of the stream.
    mutating func readFully(into buffer: UnsafeMutableRawBufferPointer) throws(ImageStoreError) -> Int {
        var total = 0
        while total < buffer.count {
            let count = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[total...]))
            if count == 0 { break }
            total += count
        }
        return total
    }
}

/// A file read with read(2), hashing what passes if asked.
public struct FileStream: ByteStream, ~Copyable {
    let fd: Int32
    let path: String

    public init(path: String) throws(ImageStoreError) {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path, "open") }
        self.path = path
    }

    deinit { close(fd) }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ImageStoreError) -> Int {
        while true {
            let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            if errno != EINTR { throw .io(path, "read") }
        }
    }
}

/// gzip decoding over another stream (zlib); passes plain data through when the first bytes
/// are not a gzip header, so uncompressed layers read the same way.
public struct GzipStream<Source: ByteStream & ~Copyable>: ByteStream, ~Copyable {
    private var source: Source
    private let state: OpaquePointer?
    private let input: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    private var finished = false
    private let name: String

    public init(_ source: consuming Source, name: String) throws(ImageStoreError) {
        let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)
        var source = source
        let count: Int
        do {
            count = try source.read(into: input)
        } catch {
            input.deallocate()
            throw error
        }
        let isGzip = count >= 2 && input[0] == 0x1f && input[1] == 0x8b
        self.source = source
        self.input = input
        self.name = name
        self.end = count
        self.state = isGzip ? swa_inflate_new() : nil
    }

    deinit {
        if let state { swa_inflate_free(state) }
        input.deallocate()
    }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ImageStoreError) -> Int {
        guard let state else {
            // Plain data: first what was peeked, then the source.
            if start < end {
                let count = min(buffer.count, end - start)
                buffer.baseAddress!.copyMemory(from: input.baseAddress! + start, byteCount: count)
                start += count
                return count
            }
            return try source.read(into: buffer)
        }
        while !finished {
            if start == end {
                let count = try source.read(into: input)
                start = 0
                end = count
                if count == 0 { throw ImageStoreError(.corrupt, context: name, detail: "gzip stream ends early") }
            }
            var consumed = 0, produced = 0
            let result = swa_inflate_run(state, input.baseAddress!.assumingMemoryBound(to: UInt8.self) + start, end - start,
                                         &consumed, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), buffer.count, &produced)
            start += consumed
            if result < 0 { throw ImageStoreError(.corrupt, context: name, detail: "invalid gzip data") }
            if result == 1 { finished = true }
            if produced > 0 { return produced }
        }
        return 0
    }
}
