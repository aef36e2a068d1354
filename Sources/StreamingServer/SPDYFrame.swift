/// One SPDY/3.1 frame (draft-mbelshe-httpbis-spdy-00 and the 3.1 additions). Header blocks
/// stay compressed here; ``SPDYHeaderCodec`` owns the per-connection zlib streams.
enum SPDYFrame: Equatable {
    case synStream(streamID: UInt32, associatedStreamID: UInt32, priority: UInt8, flags: UInt8, headerBlock: [UInt8])
    case synReply(streamID: UInt32, flags: UInt8, headerBlock: [UInt8])
    case rstStream(streamID: UInt32, status: UInt32)
    case settings(flags: UInt8, entries: [SPDYSetting])
    case ping(id: UInt32)
    case goAway(lastGoodStreamID: UInt32, status: UInt32)
    case headers(streamID: UInt32, flags: UInt8, headerBlock: [UInt8])
    case windowUpdate(streamID: UInt32, delta: UInt32)
    case data(streamID: UInt32, flags: UInt8, payload: [UInt8])
    /// A control frame of a type this version does not define; receivers ignore it.
    case unknownControl(type: UInt16)

    static let version: UInt16 = 3
    static let flagFin: UInt8 = 0x01
    static let flagUnidirectional: UInt8 = 0x02
    /// The largest payload a frame's 24-bit length allows.
    static let maxPayload = (1 << 24) - 1

    enum ControlType: UInt16 {
        case synStream = 1, synReply, rstStream, settings, noop, ping, goAway, headers, windowUpdate
    }
}

struct SPDYSetting: Equatable {
    var flags: UInt8
    var id: UInt32
    var value: UInt32
}

/// RST_STREAM status codes.
enum SPDYStreamStatus {
    static let protocolError: UInt32 = 1
    static let invalidStream: UInt32 = 2
    static let refusedStream: UInt32 = 3
    static let unsupportedVersion: UInt32 = 4
    static let cancel: UInt32 = 5
    static let internalError: UInt32 = 6
    static let streamInUse: UInt32 = 8
    static let streamAlreadyClosed: UInt32 = 9
}

/// GOAWAY status codes.
enum SPDYGoAwayStatus {
    static let ok: UInt32 = 0
    static let protocolError: UInt32 = 1
    static let internalError: UInt32 = 2
}

/// A frame that cannot be understood; the connection ends with GOAWAY(PROTOCOL_ERROR).
struct SPDYProtocolError: Error, Equatable {
    var message: String
}

enum SPDYFrameCodec {
    /// Takes one complete frame off the front of `input`; nil while it is incomplete.
    static func parse(_ input: inout ByteQueue) throws(SPDYProtocolError) -> SPDYFrame? {
        guard input.count >= 8 else { return nil }
        let length = Int(input[5]) << 16 | Int(input[6]) << 8 | Int(input[7])
        guard input.count >= 8 + length else { return nil }
        let header = input.consume(8)
        let body = input.consume(length)
        if header[0] & 0x80 == 0 {
            let streamID = readUInt32(header, 0) & 0x7fff_ffff
            return .data(streamID: streamID, flags: header[4], payload: body)
        }
        let version = (UInt16(header[0]) << 8 | UInt16(header[1])) & 0x7fff
        guard version == SPDYFrame.version else {
            throw SPDYProtocolError(message: "unsupported SPDY version \(version)")
        }
        let type = UInt16(header[2]) << 8 | UInt16(header[3])
        let flags = header[4]
        func need(_ minimum: Int) throws(SPDYProtocolError) {
            if body.count < minimum {
                throw SPDYProtocolError(message: "control frame type \(type) too short (\(body.count) bytes)")
            }
        }
        switch SPDYFrame.ControlType(rawValue: type) {
        case .synStream:
            try need(10)
            return .synStream(
                streamID: readUInt32(body, 0) & 0x7fff_ffff,
                associatedStreamID: readUInt32(body, 4) & 0x7fff_ffff,
                priority: body[8] >> 5, flags: flags, headerBlock: Array(body[10...]))
        case .synReply:
            try need(4)
            return .synReply(streamID: readUInt32(body, 0) & 0x7fff_ffff, flags: flags, headerBlock: Array(body[4...]))
        case .rstStream:
            try need(8)
            return .rstStream(streamID: readUInt32(body, 0) & 0x7fff_ffff, status: readUInt32(body, 4))
        case .settings:
            try need(4)
            let count = Int(readUInt32(body, 0))
            guard count <= (body.count - 4) / 8 else {
                throw SPDYProtocolError(message: "SETTINGS frame claims \(count) entries in \(body.count) bytes")
            }
            var entries: [SPDYSetting] = []
            for index in 0..<count {
                let offset = 4 + index * 8
                let idWord = readUInt32(body, offset)
                entries.append(SPDYSetting(flags: UInt8(idWord >> 24), id: idWord & 0xff_ffff, value: readUInt32(body, offset + 4)))
            }
            return .settings(flags: flags, entries: entries)
        case .ping:
            try need(4)
            return .ping(id: readUInt32(body, 0))
        case .goAway:
            try need(4)
            let status = body.count >= 8 ? readUInt32(body, 4) : 0
            return .goAway(lastGoodStreamID: readUInt32(body, 0) & 0x7fff_ffff, status: status)
        case .headers:
            try need(4)
            return .headers(streamID: readUInt32(body, 0) & 0x7fff_ffff, flags: flags, headerBlock: Array(body[4...]))
        case .windowUpdate:
            try need(8)
            return .windowUpdate(streamID: readUInt32(body, 0) & 0x7fff_ffff, delta: readUInt32(body, 4) & 0x7fff_ffff)
        case .noop, nil:
            return .unknownControl(type: type)
        }
    }

    /// The frame's wire bytes.
    static func encode(_ frame: SPDYFrame) -> [UInt8] {
        var body: [UInt8] = []
        let type: UInt16
        var flags: UInt8 = 0
        switch frame {
        case .data(let streamID, let dataFlags, let payload):
            var bytes: [UInt8] = []
            bytes.reserveCapacity(8 + payload.count)
            appendUInt32(&bytes, streamID & 0x7fff_ffff)
            bytes.append(dataFlags)
            appendUInt24(&bytes, UInt32(payload.count))
            bytes.append(contentsOf: payload)
            return bytes
        case .synStream(let streamID, let associated, let priority, let synFlags, let block):
            type = SPDYFrame.ControlType.synStream.rawValue
            flags = synFlags
            appendUInt32(&body, streamID & 0x7fff_ffff)
            appendUInt32(&body, associated & 0x7fff_ffff)
            body.append(priority << 5)
            body.append(0)
            body.append(contentsOf: block)
        case .synReply(let streamID, let replyFlags, let block):
            type = SPDYFrame.ControlType.synReply.rawValue
            flags = replyFlags
            appendUInt32(&body, streamID & 0x7fff_ffff)
            body.append(contentsOf: block)
        case .rstStream(let streamID, let status):
            type = SPDYFrame.ControlType.rstStream.rawValue
            appendUInt32(&body, streamID & 0x7fff_ffff)
            appendUInt32(&body, status)
        case .settings(let settingsFlags, let entries):
            type = SPDYFrame.ControlType.settings.rawValue
            flags = settingsFlags
            appendUInt32(&body, UInt32(entries.count))
            for entry in entries {
                appendUInt32(&body, UInt32(entry.flags) << 24 | (entry.id & 0xff_ffff))
                appendUInt32(&body, entry.value)
            }
        case .ping(let id):
            type = SPDYFrame.ControlType.ping.rawValue
            appendUInt32(&body, id)
        case .goAway(let last, let status):
            type = SPDYFrame.ControlType.goAway.rawValue
            appendUInt32(&body, last & 0x7fff_ffff)
            appendUInt32(&body, status)
        case .headers(let streamID, let headerFlags, let block):
            type = SPDYFrame.ControlType.headers.rawValue
            flags = headerFlags
            appendUInt32(&body, streamID & 0x7fff_ffff)
            body.append(contentsOf: block)
        case .windowUpdate(let streamID, let delta):
            type = SPDYFrame.ControlType.windowUpdate.rawValue
            appendUInt32(&body, streamID & 0x7fff_ffff)
            appendUInt32(&body, delta & 0x7fff_ffff)
        case .unknownControl(let unknown):
            type = unknown
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + body.count)
        bytes.append(0x80 | UInt8(SPDYFrame.version >> 8))
        bytes.append(UInt8(SPDYFrame.version & 0xff))
        bytes.append(UInt8(type >> 8))
        bytes.append(UInt8(type & 0xff))
        bytes.append(flags)
        appendUInt24(&bytes, UInt32(body.count))
        bytes.append(contentsOf: body)
        return bytes
    }

    static func readUInt32<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes, _ offset: Int) -> UInt32 where Bytes.Index == Int {
        let start = bytes.startIndex + offset
        return UInt32(bytes[start]) << 24 | UInt32(bytes[start + 1]) << 16 | UInt32(bytes[start + 2]) << 8 | UInt32(bytes[start + 3])
    }

    static func appendUInt32(_ bytes: inout [UInt8], _ value: UInt32) {
        bytes.append(UInt8(value >> 24))
        bytes.append(UInt8((value >> 16) & 0xff))
        bytes.append(UInt8((value >> 8) & 0xff))
        bytes.append(UInt8(value & 0xff))
    }

    static func appendUInt24(_ bytes: inout [UInt8], _ value: UInt32) {
        bytes.append(UInt8((value >> 16) & 0xff))
        bytes.append(UInt8((value >> 8) & 0xff))
        bytes.append(UInt8(value & 0xff))
    }
}
