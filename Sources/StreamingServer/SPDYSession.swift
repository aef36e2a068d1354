import Logging

/// The server side of a SPDY/3.1 connection after the upgrade, as the kubelet's spdystream
/// runs it: the client opens every stream (odd IDs), the server answers each SYN_STREAM with
/// a SYN_REPLY (with FIN when the application rejects it), echoes the client's pings and
/// applies no flow control (WINDOW_UPDATE and SETTINGS are read and ignored, as spdystream
/// does). A frame it cannot parse ends the connection with GOAWAY(PROTOCOL_ERROR).
final class SPDYSession: ConnectionHandler, ChannelTransport {
    /// Largest DATA payload sent in one frame.
    static let maxDataChunk = 32 << 10

    private unowned let loop: ConnectionLoop
    private let codec: SPDYHeaderCodec
    var application: ChannelApplication?

    private struct Stream {
        var remoteClosed = false
        var localClosed = false
    }

    private var streams: [UInt32: Stream] = [:]
    private var lastClientStreamID: UInt32 = 0
    private var goAwaySent = false

    init(loop: ConnectionLoop, codec: SPDYHeaderCodec) {
        self.loop = loop
        self.codec = codec
    }

    // MARK: ConnectionHandler

    func receive(_ input: inout ByteQueue) {
        while !goAwaySent {
            let frame: SPDYFrame?
            do {
                frame = try SPDYFrameCodec.parse(&input)
            } catch {
                fail(error.message)
                return
            }
            guard let frame else { return }
            do {
                try dispatch(frame)
            } catch {
                fail(error.message)
                return
            }
        }
        // After GOAWAY nothing more is read.
        input.removeAll()
    }

    func handle(_ event: ConnectionEvent) { application?.handle(event) }

    var wantsInputPaused: Bool { application?.wantsInputPaused ?? false }

    func teardown() {
        application?.teardown()
        application = nil
    }

    // MARK: Frames from the client

    private func dispatch(_ frame: SPDYFrame) throws(SPDYProtocolError) {
        switch frame {
        case .synStream(let streamID, _, _, let flags, let headerBlock):
            // Always inflate: the zlib stream must stay in step even for refused streams.
            let headers = try codec.decode(headerBlock)
            guard streamID != 0, streamID % 2 == 1, streamID > lastClientStreamID else {
                throw SPDYProtocolError(message: "invalid stream id \(streamID) (last \(lastClientStreamID))")
            }
            lastClientStreamID = streamID
            let accepted = application?.streamOpened(streamID, headers: headers) ?? false
            loop.write(SPDYFrameCodec.encode(.synReply(
                streamID: streamID, flags: accepted ? 0 : SPDYFrame.flagFin, headerBlock: codec.encode([]))))
            guard accepted else {
                loop.logger.debug("stream rejected", metadata: ["stream": "\(streamID)", "headers": "\(headers)"])
                return
            }
            streams[streamID] = Stream()
            if flags & SPDYFrame.flagFin != 0 { remoteClose(streamID) }
        case .data(let streamID, let flags, let payload):
            guard var stream = streams[streamID] else {
                loop.write(SPDYFrameCodec.encode(.rstStream(streamID: streamID, status: SPDYStreamStatus.invalidStream)))
                return
            }
            guard !stream.remoteClosed else {
                stream.localClosed = true
                streams[streamID] = stream
                loop.write(SPDYFrameCodec.encode(.rstStream(streamID: streamID, status: SPDYStreamStatus.streamAlreadyClosed)))
                application?.streamReset(streamID)
                return
            }
            if !payload.isEmpty { application?.streamData(streamID, payload) }
            if flags & SPDYFrame.flagFin != 0 { remoteClose(streamID) }
        case .rstStream(let streamID, _):
            if streams.removeValue(forKey: streamID) != nil {
                application?.streamReset(streamID)
            }
        case .ping(let id):
            // Odd IDs are the client's own pings; even ones would answer ours (none sent).
            if id % 2 == 1 { loop.write(SPDYFrameCodec.encode(.ping(id: id))) }
        case .goAway:
            // The client opens no more streams; those open run to their end.
            break
        case .headers(let streamID, let flags, let headerBlock):
            _ = try codec.decode(headerBlock)
            if flags & SPDYFrame.flagFin != 0, streams[streamID] != nil { remoteClose(streamID) }
        case .synReply(_, _, let headerBlock):
            // The server opens no streams, so no reply is expected; keep zlib in step.
            _ = try codec.decode(headerBlock)
        case .settings, .windowUpdate, .unknownControl:
            break
        }
    }

    private func remoteClose(_ streamID: UInt32) {
        guard var stream = streams[streamID], !stream.remoteClosed else { return }
        stream.remoteClosed = true
        streams[streamID] = stream.localClosed ? nil : stream
        application?.streamRemoteClosed(streamID)
    }

    private func fail(_ message: String) {
        loop.logger.info("SPDY protocol error; closing the connection", metadata: ["error": "\(message)"])
        loop.write(SPDYFrameCodec.encode(.goAway(lastGoodStreamID: lastClientStreamID, status: SPDYGoAwayStatus.protocolError)))
        goAwaySent = true
        loop.finishAfterFlush()
    }

    // MARK: ChannelTransport

    func send(_ bytes: [UInt8], on stream: UInt32) {
        guard let state = streams[stream], !state.localClosed, !goAwaySent else { return }
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + Self.maxDataChunk, bytes.count)
            loop.write(SPDYFrameCodec.encode(.data(streamID: stream, flags: 0, payload: Array(bytes[offset..<end]))))
            offset = end
        }
    }

    func closeStream(_ stream: UInt32) {
        guard var state = streams[stream], !state.localClosed, !goAwaySent else { return }
        state.localClosed = true
        loop.write(SPDYFrameCodec.encode(.data(streamID: stream, flags: SPDYFrame.flagFin, payload: [])))
        if state.remoteClosed {
            streams[stream] = nil
        } else {
            streams[stream] = state
        }
    }

    func finish() {
        guard !goAwaySent else { return }
        goAwaySent = true
        loop.write(SPDYFrameCodec.encode(.goAway(lastGoodStreamID: lastClientStreamID, status: SPDYGoAwayStatus.ok)))
        loop.finishAfterFlush()
    }
}
