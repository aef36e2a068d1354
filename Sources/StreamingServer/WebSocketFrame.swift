import CSwiftletStreaming

/// One RFC 6455 frame.
struct WebSocketFrame: Equatable {
    enum Opcode: UInt8 {
        case continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA
    }

    var fin: Bool
    var opcode: Opcode
    var payload: [UInt8]

    var isControl: Bool { opcode.rawValue & 0x8 != 0 }
}

/// Close codes (RFC 6455 §7.4.1).
enum WebSocketCloseCode {
    static let normal: UInt16 = 1000
    static let protocolError: UInt16 = 1002
    static let unsupportedData: UInt16 = 1003
    static let invalidPayload: UInt16 = 1007
    static let policyViolation: UInt16 = 1008
    static let tooBig: UInt16 = 1009
    static let internalError: UInt16 = 1011
}

/// A frame the server cannot accept; the connection closes with `code`.
struct WebSocketProtocolError: Error, Equatable {
    var code: UInt16
    var message: String
}

enum WebSocketFrameCodec {
    /// Takes one frame off the front of `input`; nil while it is incomplete. Frames from a
    /// client must be masked (`requireMask`); payloads over `maxPayload` are refused.
    static func parse(_ input: inout ByteQueue, requireMask: Bool, maxPayload: Int) throws(WebSocketProtocolError) -> WebSocketFrame? {
        guard input.count >= 2 else { return nil }
        let first = input[0]
        let second = input[1]
        guard first & 0x70 == 0 else {
            throw WebSocketProtocolError(code: WebSocketCloseCode.protocolError, message: "reserved bits set")
        }
        guard let opcode = WebSocketFrame.Opcode(rawValue: first & 0x0f) else {
            throw WebSocketProtocolError(code: WebSocketCloseCode.protocolError, message: "unknown opcode \(first & 0x0f)")
        }
        let masked = second & 0x80 != 0
        if requireMask && !masked {
            throw WebSocketProtocolError(code: WebSocketCloseCode.protocolError, message: "unmasked client frame")
        }
        var headerLength = 2
        var length = UInt64(second & 0x7f)
        if length == 126 {
            guard input.count >= 4 else { return nil }
            length = UInt64(input[2]) << 8 | UInt64(input[3])
            headerLength = 4
        } else if length == 127 {
            guard input.count >= 10 else { return nil }
            length = 0
            for index in 2..<10 { length = length << 8 | UInt64(input[index]) }
            headerLength = 10
        }
        let fin = first & 0x80 != 0
        if opcode.rawValue & 0x8 != 0 && (length > 125 || !fin) {
            throw WebSocketProtocolError(code: WebSocketCloseCode.protocolError, message: "invalid control frame")
        }
        guard length <= UInt64(maxPayload) else {
            throw WebSocketProtocolError(code: WebSocketCloseCode.tooBig, message: "frame of \(length) bytes is too big")
        }
        let maskLength = masked ? 4 : 0
        guard input.count >= headerLength + maskLength + Int(length) else { return nil }
        input.skip(headerLength)
        let mask = masked ? input.consume(4) : []
        var payload = input.consume(Int(length))
        if masked {
            for index in payload.indices { payload[index] ^= mask[index & 3] }
        }
        return WebSocketFrame(fin: fin, opcode: opcode, payload: payload)
    }

    /// The frame's wire bytes; a client masks with `mask`.
    static func encode(_ frame: WebSocketFrame, mask: [UInt8]? = nil) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(frame.payload.count + 14)
        bytes.append((frame.fin ? 0x80 : 0) | frame.opcode.rawValue)
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        let count = frame.payload.count
        if count < 126 {
            bytes.append(maskBit | UInt8(count))
        } else if count <= 0xffff {
            bytes.append(maskBit | 126)
            bytes.append(UInt8(count >> 8))
            bytes.append(UInt8(count & 0xff))
        } else {
            bytes.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((UInt64(count) >> UInt64(shift)) & 0xff)) }
        }
        if let mask {
            bytes.append(contentsOf: mask)
            for (index, byte) in frame.payload.enumerated() { bytes.append(byte ^ mask[index & 3]) }
        } else {
            bytes.append(contentsOf: frame.payload)
        }
        return bytes
    }

    /// A close frame's payload: the code, then the reason.
    static func closePayload(_ code: UInt16, _ reason: String = "") -> [UInt8] {
        [UInt8(code >> 8), UInt8(code & 0xff)] + Array(reason.utf8.prefix(123))
    }

    /// The Sec-WebSocket-Accept value for a client's key.
    static func acceptValue(forKey key: String) -> String {
        let input = Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)
        var digest = [UInt8](repeating: 0, count: 20)
        input.withUnsafeBufferPointer { buffer in
            digest.withUnsafeMutableBufferPointer { out in
                sws_sha1(buffer.baseAddress, buffer.count, out.baseAddress)
            }
        }
        return Base64.encode(digest)
    }
}
