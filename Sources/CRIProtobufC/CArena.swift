import CSwiftletCRI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns the C memory of one protobuf-c message tree while it is packed.
///
/// Encoding builds the protobuf-c structs of a Swift value (every struct, string and array
/// allocated here), packs them, and frees everything when the arena goes away. Memory comes
/// from zeroed chunks, bump-allocated: a list response of a hundred containers makes
/// thousands of small objects, and one calloc each dominated its encoding.
final class CArena {
    /// Chunks (and allocations too large for one), freed together.
    private var chunks: [UnsafeMutableRawPointer] = []
    private var next: UnsafeMutableRawPointer?
    private var remaining = 0
    private static let chunkSize = 16 << 10
    private static let alignment = 16

    init() {}

    deinit {
        for chunk in chunks {
            free(chunk)
        }
    }

    private func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        let size = (Swift.max(bytes, 1) + Self.alignment - 1) & ~(Self.alignment - 1)
        if size > Self.chunkSize / 4 {
            return zeroed(size)
        }
        if size > remaining {
            next = zeroed(Self.chunkSize)
            remaining = Self.chunkSize
        }
        let pointer = next!
        next = pointer + size
        remaining -= size
        return pointer
    }

    private func zeroed(_ size: Int) -> UnsafeMutableRawPointer {
        guard let pointer = calloc(1, size) else {
            fatalError("out of memory encoding a CRI message")
        }
        chunks.append(pointer)
        return pointer
    }

    /// A zeroed struct of `type`, set to its protobuf-c defaults by `initialize`.
    func message<T>(_ type: T.Type, _ initialize: (UnsafeMutablePointer<T>?) -> Void) -> UnsafeMutablePointer<T> {
        let pointer = allocate(MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: 1)
        initialize(pointer)
        return pointer
    }

    func string(_ value: String) -> UnsafeMutablePointer<CChar> {
        var value = value
        return value.withUTF8 { utf8 in
            let pointer = allocate(utf8.count + 1).bindMemory(to: CChar.self, capacity: utf8.count + 1)
            if let base = utf8.baseAddress {
                UnsafeMutableRawPointer(pointer).copyMemory(from: base, byteCount: utf8.count)
            }
            pointer[utf8.count] = 0
            return pointer
        }
    }

    func bytes(_ value: [UInt8]) -> ProtobufCBinaryData {
        let pointer = allocate(value.count).bindMemory(to: UInt8.self, capacity: value.count)
        value.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress {
                pointer.update(from: base, count: buffer.count)
            }
        }
        return ProtobufCBinaryData(len: value.count, data: pointer)
    }

    private func array<T>(of type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        allocate(MemoryLayout<T>.stride * count).bindMemory(to: T.self, capacity: count)
    }

    func strings(_ values: [String]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) {
        guard !values.isEmpty else { return (0, nil) }
        let pointer = array(of: UnsafeMutablePointer<CChar>?.self, count: values.count)
        for (index, value) in values.enumerated() {
            pointer[index] = string(value)
        }
        return (values.count, pointer)
    }

    func bytesList(_ values: [[UInt8]]) -> (Int, UnsafeMutablePointer<ProtobufCBinaryData>?) {
        guard !values.isEmpty else { return (0, nil) }
        let pointer = array(of: ProtobufCBinaryData.self, count: values.count)
        for (index, value) in values.enumerated() {
            pointer[index] = bytes(value)
        }
        return (values.count, pointer)
    }

    func scalars<S, C>(_ values: [S], _ convert: (S) -> C) -> (Int, UnsafeMutablePointer<C>?) {
        guard !values.isEmpty else { return (0, nil) }
        let pointer = array(of: C.self, count: values.count)
        for (index, value) in values.enumerated() {
            pointer[index] = convert(value)
        }
        return (values.count, pointer)
    }

    func messages<S, C>(_ values: [S], _ convert: (S) -> UnsafeMutablePointer<C>) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<C>?>?) {
        guard !values.isEmpty else { return (0, nil) }
        let pointer = array(of: UnsafeMutablePointer<C>?.self, count: values.count)
        for (index, value) in values.enumerated() {
            pointer[index] = convert(value)
        }
        return (values.count, pointer)
    }

    /// A `map<string, string>` as protobuf-c's repeated entry messages, in key order so that
    /// equal values encode to equal bytes.
    func map<Entry: MapEntry>(
        _ values: [String: String], _ initialize: (UnsafeMutablePointer<Entry>?) -> Void
    ) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>?) {
        guard !values.isEmpty else { return (0, nil) }
        let pointer = array(of: UnsafeMutablePointer<Entry>?.self, count: values.count)
        for (index, (key, value)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
            let entry = message(Entry.self, initialize)
            entry.pointee.key = string(key)
            entry.pointee.value = string(value)
            pointer[index] = entry
        }
        return (values.count, pointer)
    }

    /// Packs the message at `root` with its generated size and pack functions.
    func pack<T>(
        _ root: UnsafeMutablePointer<T>,
        size: (UnsafePointer<T>?) -> Int,
        pack: (UnsafePointer<T>?, UnsafeMutablePointer<UInt8>?) -> Int
    ) -> [UInt8] {
        let count = size(root)
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = pack(root, buffer.baseAddress)
        }
    }
}

/// protobuf-c's struct for one entry of a `map<string, string>` field.
protocol MapEntry {
    var key: UnsafeMutablePointer<CChar>! { get set }
    var value: UnsafeMutablePointer<CChar>! { get set }
}

/// Reading protobuf-c structs into Swift values.
enum CConvert {
    static func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        return String(cString: pointer)
    }

    static func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
        guard data.len > 0, let base = data.data else { return [] }
        return Array(UnsafeBufferPointer(start: base, count: data.len))
    }

    static func strings(_ count: Int, _ pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> [String] {
        guard count > 0, let pointer else { return [] }
        return (0..<count).map { string(pointer[$0]) }
    }

    static func bytesList(_ count: Int, _ pointer: UnsafeMutablePointer<ProtobufCBinaryData>?) -> [[UInt8]] {
        guard count > 0, let pointer else { return [] }
        return (0..<count).map { bytes(pointer[$0]) }
    }

    static func scalars<C, S>(_ count: Int, _ pointer: UnsafeMutablePointer<C>?, _ convert: (C) -> S) -> [S] {
        guard count > 0, let pointer else { return [] }
        return (0..<count).map { convert(pointer[$0]) }
    }

    static func messages<C, S>(_ count: Int, _ pointer: UnsafeMutablePointer<UnsafeMutablePointer<C>?>?, _ convert: (UnsafePointer<C>) -> S) -> [S] {
        guard count > 0, let pointer else { return [] }
        return (0..<count).compactMap { index in pointer[index].map { convert($0) } }
    }

    static func map<Entry: MapEntry>(_ count: Int, _ pointer: UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>?) -> [String: String] {
        guard count > 0, let pointer else { return [:] }
        var result: [String: String] = [:]
        result.reserveCapacity(count)
        for index in 0..<count {
            guard let entry = pointer[index] else { continue }
            result[string(entry.pointee.key)] = string(entry.pointee.value)
        }
        return result
    }
}
