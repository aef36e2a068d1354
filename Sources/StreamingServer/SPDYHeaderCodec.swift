import CSwiftletStreaming

/// A SPDY/3 name/value header block, compressed with zlib and the SPDY dictionary. One
/// compressor per direction per connection: each block continues the same zlib stream.
final class SPDYHeaderCodec {
    /// The largest header block accepted once decompressed.
    static let maxDecodedBlock = 256 << 10

    private let compressor: OpaquePointer
    private let decompressor: OpaquePointer

    init?() {
        guard let compressor = sws_zstream_new(1) else { return nil }
        guard let decompressor = sws_zstream_new(0) else {
            sws_zstream_free(compressor)
            return nil
        }
        self.compressor = compressor
        self.decompressor = decompressor
    }

    deinit {
        sws_zstream_free(compressor)
        sws_zstream_free(decompressor)
    }

    /// Encodes and compresses headers (names are lowercased; repeated names joined by NUL).
    func encode(_ headers: [(name: String, value: String)]) -> [UInt8] {
        var grouped: [(String, [String])] = []
        for (name, value) in headers {
            let lowered = name.lowercased()
            if let index = grouped.firstIndex(where: { $0.0 == lowered }) {
                grouped[index].1.append(value)
            } else {
                grouped.append((lowered, [value]))
            }
        }
        var block: [UInt8] = []
        SPDYFrameCodec.appendUInt32(&block, UInt32(grouped.count))
        for (name, values) in grouped {
            let nameBytes = Array(name.utf8)
            let valueBytes = Array(values.joined(separator: "\0").utf8)
            SPDYFrameCodec.appendUInt32(&block, UInt32(nameBytes.count))
            block.append(contentsOf: nameBytes)
            SPDYFrameCodec.appendUInt32(&block, UInt32(valueBytes.count))
            block.append(contentsOf: valueBytes)
        }
        return run(compressor, block, limit: Int.max / 2) ?? []
    }

    /// Decompresses and decodes a block into lowercased names with all their values.
    func decode(_ compressed: [UInt8]) throws(SPDYProtocolError) -> [String: [String]] {
        guard let block = run(decompressor, compressed, limit: Self.maxDecodedBlock) else {
            throw SPDYProtocolError(message: "corrupt or oversized header block")
        }
        // An empty compressed block (a SYN_REPLY with no headers from a lax peer) means none.
        if block.isEmpty { return [:] }
        var offset = 0
        func word() throws(SPDYProtocolError) -> Int {
            guard offset + 4 <= block.count else { throw SPDYProtocolError(message: "truncated header block") }
            defer { offset += 4 }
            return Int(SPDYFrameCodec.readUInt32(block, offset))
        }
        func string(_ length: Int) throws(SPDYProtocolError) -> String {
            guard length <= block.count - offset else { throw SPDYProtocolError(message: "truncated header block") }
            defer { offset += length }
            return String(decoding: block[offset..<(offset + length)], as: UTF8.self)
        }
        let count = try word()
        var headers: [String: [String]] = [:]
        for _ in 0..<min(count, block.count) {
            let name = try string(try word())
            guard !name.isEmpty else { throw SPDYProtocolError(message: "empty header name") }
            let value = try string(try word())
            headers[name.lowercased(), default: []].append(contentsOf: value.split(separator: "\0", omittingEmptySubsequences: false).map(String.init))
        }
        if count > block.count { throw SPDYProtocolError(message: "truncated header block") }
        return headers
    }

    private func run(_ stream: OpaquePointer, _ input: [UInt8], limit: Int) -> [UInt8]? {
        var output: UnsafeMutablePointer<UInt8>?
        var length = 0
        let rc = input.withUnsafeBufferPointer { buffer in
            sws_zstream_run(stream, buffer.baseAddress, buffer.count, limit, &output, &length)
        }
        guard rc == 0 else { return nil }
        defer { sws_free(output) }
        guard let output else { return [] }
        return Array(UnsafeBufferPointer(start: output, count: length))
    }
}
