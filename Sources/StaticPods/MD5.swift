import Foundation

/// MD5 (RFC 1321), for the static pod UID as the kubelet makes it (an MD5 hex digest). Not for
/// security: only a stable, well-spread name for a manifest's content.
struct MD5 {
    private var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476)
    private var buffer: [UInt8] = []
    private var length: UInt64 = 0

    private static let shifts: [UInt32] = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                           5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                                           4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                           6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]
    private static let constants: [UInt32] = (0..<64).map { index in
        UInt32(truncatingIfNeeded: Int64((abs(sin(Double(index + 1))) * 4_294_967_296).rounded(.down)))
    }

    mutating func update(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            buffer.append(byte)
            length &+= 1
            if buffer.count == 64 {
                compress(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
    }

    mutating func update(_ text: String) { update(text.utf8) }

    consuming func finalize() -> [UInt8] {
        let bitLength = length &* 8
        update([0x80])
        while buffer.count != 56 { update([0]) }
        for shift in stride(from: 0, to: 64, by: 8) { buffer.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        compress(buffer)
        var digest: [UInt8] = []
        for word in [state.0, state.1, state.2, state.3] {
            for shift in stride(from: 0, to: 32, by: 8) { digest.append(UInt8(truncatingIfNeeded: word >> UInt32(shift))) }
        }
        return digest
    }

    /// The digest as 32 lowercase hex digits (the form of a static pod's UID).
    consuming func hexDigest() -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: finalize().flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xf)]] }, as: UTF8.self)
    }

    static func hex(_ text: String) -> String {
        var md5 = MD5()
        md5.update(text)
        return md5.hexDigest()
    }

    private mutating func compress(_ block: [UInt8]) {
        var words = [UInt32](repeating: 0, count: 16)
        for index in 0..<16 {
            words[index] = UInt32(block[index * 4]) | UInt32(block[index * 4 + 1]) << 8 | UInt32(block[index * 4 + 2]) << 16
                | UInt32(block[index * 4 + 3]) << 24
        }
        var (a, b, c, d) = state
        for round in 0..<64 {
            var f: UInt32
            let g: Int
            switch round {
            case 0..<16:
                f = (b & c) | (~b & d)
                g = round
            case 16..<32:
                f = (d & b) | (~d & c)
                g = (5 * round + 1) % 16
            case 32..<48:
                f = b ^ c ^ d
                g = (3 * round + 5) % 16
            default:
                f = c ^ (b | ~d)
                g = (7 * round) % 16
            }
            f = f &+ a &+ Self.constants[round] &+ words[g]
            a = d
            d = c
            c = b
            b = b &+ ((f << Self.shifts[round]) | (f >> (32 - Self.shifts[round])))
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d)
    }
}
