import Logging

/// The server side of a k8s channel WebSocket (apimachinery's wsstream): every message
/// carries a channel index in its first byte (binary protocols) or first character (the
/// base64 protocols, text frames). With `v5.channel.k8s.io` a message on channel 255 closes
/// the channel named by its next byte (the client's half-close of stdin). Fragmented
/// messages are reassembled; pings are answered; a client's close frame is echoed.
final class WebSocketSession: ConnectionHandler, ChannelTransport {
    /// One channel the session opens on its application's behalf.
    struct Channel {
        var index: UInt8
        /// Whether the client may write to it.
        var readable: Bool
        /// The stream headers the application sees (`streamtype`, `port`, …).
        var headers: [String: [String]]
        /// Sent before anything else on the channel (nil: nothing).
        var initialMessage: [UInt8]?
    }

    static let maxMessage = 16 << 20
    static let closeChannel: UInt8 = 255

    private unowned let loop: ConnectionLoop
    var application: ChannelApplication?
    private let base64: Bool
    private let closeSignals: Bool
    private let channels: [Channel]
    private var fragments: [UInt8]?
    private var fragmentOpcode = WebSocketFrame.Opcode.binary
    private var closing = false

    init(loop: ConnectionLoop, base64: Bool, closeSignals: Bool, channels: [Channel]) {
        self.loop = loop
        self.base64 = base64
        self.closeSignals = closeSignals
        self.channels = channels
    }

    /// Opens the channels and sends their first messages.
    func start() {
        for channel in channels {
            if let message = channel.initialMessage { send(message, on: UInt32(channel.index)) }
        }
        for channel in channels {
            _ = application?.streamOpened(UInt32(channel.index), headers: channel.headers)
        }
    }

    // MARK: ConnectionHandler

    func receive(_ input: inout ByteQueue) {
        while !closing {
            let frame: WebSocketFrame?
            do {
                frame = try WebSocketFrameCodec.parse(&input, requireMask: true, maxPayload: Self.maxMessage)
            } catch {
                fail(error.code, error.message)
                return
            }
            guard let frame else { return }
            handleFrame(frame)
        }
        input.removeAll()
    }

    func handle(_ event: ConnectionEvent) { application?.handle(event) }

    var wantsInputPaused: Bool { application?.wantsInputPaused ?? false }

    func teardown() {
        application?.teardown()
        application = nil
    }

    private func handleFrame(_ frame: WebSocketFrame) {
        switch frame.opcode {
        case .ping:
            loop.write(WebSocketFrameCodec.encode(WebSocketFrame(fin: true, opcode: .pong, payload: frame.payload)))
        case .pong:
            break
        case .close:
            let code: UInt16 = frame.payload.count >= 2 ? UInt16(frame.payload[0]) << 8 | UInt16(frame.payload[1]) : WebSocketCloseCode.normal
            closing = true
            loop.write(WebSocketFrameCodec.encode(WebSocketFrame(fin: true, opcode: .close, payload: WebSocketFrameCodec.closePayload(code))))
            loop.finishAfterFlush()
        case .text, .binary:
            guard fragments == nil else {
                fail(WebSocketCloseCode.protocolError, "new message inside a fragmented one")
                return
            }
            if frame.fin {
                handleMessage(frame.payload, text: frame.opcode == .text)
            } else {
                fragments = frame.payload
                fragmentOpcode = frame.opcode
            }
        case .continuation:
            guard var partial = fragments else {
                fail(WebSocketCloseCode.protocolError, "continuation without a message")
                return
            }
            partial.append(contentsOf: frame.payload)
            guard partial.count <= Self.maxMessage else {
                fail(WebSocketCloseCode.tooBig, "message too big")
                return
            }
            if frame.fin {
                fragments = nil
                handleMessage(partial, text: fragmentOpcode == .text)
            } else {
                fragments = partial
            }
        }
    }

    private func handleMessage(_ message: [UInt8], text: Bool) {
        guard let first = message.first else { return }
        var channel = first
        var data = Array(message.dropFirst())
        if base64 {
            // "0".."9": the channel as a digit, then base64.
            guard text, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else {
                fail(WebSocketCloseCode.unsupportedData, "base64 protocols carry text frames with a channel digit")
                return
            }
            channel = first - UInt8(ascii: "0")
            guard let decoded = Base64.decode(data) else {
                fail(WebSocketCloseCode.invalidPayload, "invalid base64 data")
                return
            }
            data = decoded
        }
        if closeSignals && channel == Self.closeChannel {
            if let target = data.first, channels.contains(where: { $0.index == target && $0.readable }) {
                application?.streamRemoteClosed(UInt32(target))
            }
            return
        }
        guard channels.contains(where: { $0.index == channel && $0.readable }) else {
            loop.logger.debug("data for a channel the client may not write", metadata: ["channel": "\(channel)"])
            return
        }
        if !data.isEmpty { application?.streamData(UInt32(channel), data) }
    }

    private func fail(_ code: UInt16, _ message: String) {
        loop.logger.info("WebSocket protocol error; closing the connection", metadata: ["error": "\(message)"])
        closing = true
        loop.write(WebSocketFrameCodec.encode(WebSocketFrame(fin: true, opcode: .close, payload: WebSocketFrameCodec.closePayload(code, message))))
        loop.finishAfterFlush()
    }

    // MARK: ChannelTransport

    func send(_ bytes: [UInt8], on stream: UInt32) {
        guard !closing else { return }
        let channel = UInt8(truncatingIfNeeded: stream)
        let frame: WebSocketFrame
        if base64 {
            frame = WebSocketFrame(fin: true, opcode: .text, payload: [UInt8(ascii: "0") + channel] + Array(Base64.encode(bytes).utf8))
        } else {
            frame = WebSocketFrame(fin: true, opcode: .binary, payload: [channel] + bytes)
        }
        loop.write(WebSocketFrameCodec.encode(frame))
    }

    func closeStream(_ stream: UInt32) {}

    func finish() {
        guard !closing else { return }
        closing = true
        loop.write(WebSocketFrameCodec.encode(WebSocketFrame(fin: true, opcode: .close, payload: WebSocketFrameCodec.closePayload(WebSocketCloseCode.normal))))
        loop.finishAfterFlush()
    }
}
