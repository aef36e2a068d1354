/// A FIFO of bytes: appended at the end, consumed from the front without moving the rest
/// until the consumed part outgrows what remains.
struct ByteQueue {
    private var storage: [UInt8] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { count == 0 }

    mutating func append<Bytes: Sequence<UInt8>>(contentsOf bytes: Bytes) {
        storage.append(contentsOf: bytes)
    }

    mutating func append(_ byte: UInt8) { storage.append(byte) }

    /// The byte at `offset` from the front.
    subscript(offset: Int) -> UInt8 { storage[head + offset] }

    /// The first `length` bytes, not consumed.
    func peek(_ length: Int, from offset: Int = 0) -> ArraySlice<UInt8> {
        storage[(head + offset)..<(head + offset + length)]
    }

    /// Removes and returns the first `length` bytes.
    @discardableResult
    mutating func consume(_ length: Int) -> [UInt8] {
        let bytes = Array(storage[head..<(head + length)])
        skip(length)
        return bytes
    }

    /// Removes the first `length` bytes.
    mutating func skip(_ length: Int) {
        head += length
        if head == storage.count {
            storage.removeAll(keepingCapacity: storage.count <= 1 << 20)
            head = 0
        } else if head >= 1 << 16 && head > storage.count / 2 {
            storage.removeFirst(head)
            head = 0
        }
    }

    mutating func removeAll() {
        storage.removeAll()
        head = 0
    }

    /// The unconsumed bytes, for a write.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[head...]))
        }
    }

    /// Index of the first occurrence of `pattern` at or after the front, as an offset.
    func firstOffset(of pattern: [UInt8]) -> Int? {
        guard count >= pattern.count else { return nil }
        var offset = 0
        while offset + pattern.count <= count {
            var match = true
            for index in 0..<pattern.count where storage[head + offset + index] != pattern[index] {
                match = false
                break
            }
            if match { return offset }
            offset += 1
        }
        return nil
    }
}
