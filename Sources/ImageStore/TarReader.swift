/// One entry of a tar archive (ustar, GNU long names, PAX headers).
public struct TarEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file, hardLink, symbolicLink, characterDevice, blockDevice, directory, fifo
    }
    public var path: String
    public var kind: Kind
    public var size: Int64
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var modificationTime: Int64
    /// The target of a link.
    public var linkName: String
    public var deviceMajor: UInt32
    public var deviceMinor: UInt32
    /// PAX `SCHILY.xattr.*` records.
    public var xattrs: [String: [UInt8]]
}

/// Reads tar entries from a stream, one header and its data at a time.
public struct TarReader<Source: ByteStream & ~Copyable>: ~Copyable {
    private var source: Source
    private let name: String
    /// Data bytes of the current entry not read yet, and the padding after them.
    private var remaining: Int64 = 0
    private var padding: Int64 = 0
    private var globalPax: [String: String] = [:]
    private var block = [UInt8](repeating: 0, count: 512)

    public init(_ source: consuming Source, name: String) {
        self.source = source
        self.name = name
    }

    private mutating func readBlock() throws(ImageStoreError) -> Bool {
        var local = [UInt8](repeating: 0, count: 512)
        let count = try local.withUnsafeMutableBytes { raw in
            Result { () throws(ImageStoreError) -> Int in try source.readFully(into: raw) }
        }.get()
        if count == 0 { return false }
        guard count == 512 else { throw ImageStoreError(.corrupt, context: name, detail: "truncated tar header") }
        block = local
        return true
    }

    private mutating func skip(_ count: Int64) throws(ImageStoreError) {
        var left = count
        var scratch = [UInt8](repeating: 0, count: 65536)
        while left > 0 {
            let want = Int(min(Int64(scratch.count), left))
            let got = try scratch.withUnsafeMutableBytes { raw in
                Result { () throws(ImageStoreError) -> Int in try source.readFully(into: UnsafeMutableRawBufferPointer(rebasing: raw[..<want])) }
            }.get()
            guard got == want else { throw ImageStoreError(.corrupt, context: name, detail: "truncated tar data") }
            left -= Int64(got)
        }
    }

    /// Reads the data of an entry whose header precedes it (used for PAX and GNU records).
    private mutating func readRecord(_ size: Int64) throws(ImageStoreError) -> [UInt8] {
        guard size >= 0, size < 16 << 20 else { throw ImageStoreError(.corrupt, context: name, detail: "oversized tar record") }
        var data = [UInt8](repeating: 0, count: Int(size))
        let got = try data.withUnsafeMutableBytes { raw in
            Result { () throws(ImageStoreError) -> Int in try source.readFully(into: raw) }
        }.get()
        guard got == Int(size) else { throw ImageStoreError(.corrupt, context: name, detail: "truncated tar record") }
        try skip((512 - size % 512) % 512)
        return data
    }

    private func string(_ offset: Int, _ length: Int) -> String {
        let slice = block[offset..<(offset + length)]
        let end = slice.firstIndex(of: 0) ?? slice.endIndex
        return String(decoding: block[offset..<end], as: UTF8.self)
    }

    private func number(_ offset: Int, _ length: Int) throws(ImageStoreError) -> Int64 {
        if block[offset] & 0x80 != 0 {  // base-256 (GNU) for large values
            var value: Int64 = Int64(block[offset] & 0x7f)
            for byte in block[(offset + 1)..<(offset + length)] { value = value << 8 | Int64(byte) }
            return value
        }
        let text = string(offset, length).filter { $0 != " " }
        if text.isEmpty { return 0 }
        guard let value = Int64(text, radix: 8) else {
            throw ImageStoreError(.corrupt, context: name, detail: "bad octal field \"\(text)\" in a tar header")
        }
        return value
    }

    private static func parsePax(_ data: [UInt8]) -> [String: String] {
        var records: [String: String] = [:]
        var index = 0
        while index < data.count {
            guard let space = data[index...].firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: data[index..<space], as: UTF8.self)), length > 0,
                  index + length <= data.count else { break }
            let record = data[(space + 1)..<(index + length - 1)]  // without the trailing newline
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                records[String(decoding: record[..<equals], as: UTF8.self)] = String(decoding: record[(equals + 1)...], as: UTF8.self)
            }
            index += length
        }
        return records
    }

    /// The next entry, or nil at the end of the archive. Unread data of the previous entry is
    /// skipped.
    public mutating func next() throws(ImageStoreError) -> TarEntry? {
        try skip(remaining + padding)
        remaining = 0
        padding = 0
        var pax: [String: String] = [:]
        var longName: String?
        var longLink: String?
        while true {
            guard try readBlock() else { return nil }
            if block.allSatisfy({ $0 == 0 }) { return nil }  // end-of-archive marker
            let stored = try number(148, 8)
            var sum: Int64 = 0
            for (index, byte) in block.enumerated() { sum += (148..<156).contains(index) ? 32 : Int64(byte) }
            guard sum == stored else { throw ImageStoreError(.corrupt, context: name, detail: "tar header checksum mismatch") }
            let type = block[156]
            let size = try number(124, 12)
            switch type {
            case UInt8(ascii: "x"):
                pax.merge(Self.parsePax(try readRecord(size))) { $1 }
                continue
            case UInt8(ascii: "g"):
                globalPax.merge(Self.parsePax(try readRecord(size))) { $1 }
                continue
            case UInt8(ascii: "L"):
                longName = String(decoding: try readRecord(size).prefix { $0 != 0 }, as: UTF8.self)
                continue
            case UInt8(ascii: "K"):
                longLink = String(decoding: try readRecord(size).prefix { $0 != 0 }, as: UTF8.self)
                continue
            default:
                break
            }
            let attributes = globalPax.merging(pax) { $1 }
            var path = string(0, 100)
            let prefix = string(345, 155)
            if string(257, 6).hasPrefix("ustar"), !prefix.isEmpty { path = prefix + "/" + path }
            path = attributes["path"] ?? longName ?? path
            let kind: TarEntry.Kind
            switch type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): kind = path.hasSuffix("/") ? .directory : .file
            case UInt8(ascii: "1"): kind = .hardLink
            case UInt8(ascii: "2"): kind = .symbolicLink
            case UInt8(ascii: "3"): kind = .characterDevice
            case UInt8(ascii: "4"): kind = .blockDevice
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "6"): kind = .fifo
            default:
                throw ImageStoreError(.corrupt, context: name, detail: "unsupported tar entry type \(type) for \(path)")
            }
            let entrySize = attributes["size"].flatMap { Int64($0) } ?? size
            var xattrs: [String: [UInt8]] = [:]
            for (key, value) in attributes where key.hasPrefix("SCHILY.xattr.") {
                xattrs[String(key.dropFirst("SCHILY.xattr.".count))] = Array(value.utf8)
            }
            let headerUID = UInt32(truncatingIfNeeded: try number(108, 8))
            let headerGID = UInt32(truncatingIfNeeded: try number(116, 8))
            let headerTime = try number(136, 12)
            let entry = TarEntry(
                path: path, kind: kind, size: kind == .file ? entrySize : 0, mode: UInt32(try number(100, 8) & 0o7777),
                uid: attributes["uid"].flatMap { UInt32($0) } ?? headerUID,
                gid: attributes["gid"].flatMap { UInt32($0) } ?? headerGID,
                modificationTime: attributes["mtime"].flatMap { Double($0) }.map { Int64($0) } ?? headerTime,
                linkName: attributes["linkpath"] ?? longLink ?? string(157, 100),
                deviceMajor: UInt32(try number(329, 8)), deviceMinor: UInt32(try number(337, 8)), xattrs: xattrs)
            remaining = kind == .file ? entrySize : (entrySize > 0 && kind != .directory ? entrySize : 0)
            padding = (512 - remaining % 512) % 512
            return entry
        }
    }

    /// Reads the rest of the stream (the end-of-archive blocks and any padding after them).
    public mutating func drain() throws(ImageStoreError) {
        var scratch = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = try scratch.withUnsafeMutableBytes { raw in
                Result { () throws(ImageStoreError) -> Int in try source.read(into: raw) }
            }.get()
            if count == 0 { return }
        }
    }

    /// Reads the current entry's data; 0 when it is all read.
    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(ImageStoreError) -> Int {
        guard remaining > 0 else { return 0 }
        let want = Int(min(Int64(buffer.count), remaining))
        let got = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<want]))
        guard got > 0 else { throw ImageStoreError(.corrupt, context: name, detail: "truncated tar data") }
        remaining -= Int64(got)
        return got
    }
}
