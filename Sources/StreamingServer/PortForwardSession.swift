import CSwiftletStreaming
import Logging

/// The k8s port-forward protocol (kubelet `portforward`), over SPDY streams or WebSocket
/// channels: the client opens a pair of streams per forwarded connection, `data` and
/// `error`, sharing a `requestID` header and naming the `port`. Once both are open the
/// runtime connects to the port in the pod; bytes are copied both ways; the client's end of
/// data shuts the socket's write side; the socket's end of data ends both streams. A
/// failure is written as text on the error stream.
final class PortForwardSession: ChannelApplication {
    private unowned let loop: ConnectionLoop
    /// The transport owns this session; it outlives it.
    unowned var transport: (any ChannelTransport)!
    private let podSandboxID: String
    /// WebSocket: the connection ends once every pair is done (there is one per port).
    private let finishWhenIdle: Bool

    private final class Pair {
        let requestID: String
        var port: Int32 = 0
        var dataStream: UInt32?
        var errorStream: UInt32?
        var pending: [UInt8] = []
        var clientEnded = false
        var requested = false
        var inbound: InputPump?
        var outbound: OutputPump?
        init(requestID: String) { self.requestID = requestID }
    }

    private var pairs: [String: Pair] = [:]
    private var pairOf: [UInt32: Pair] = [:]
    private var startedAny = false

    init(loop: ConnectionLoop, podSandboxID: String, finishWhenIdle: Bool) {
        self.loop = loop
        self.podSandboxID = podSandboxID
        self.finishWhenIdle = finishWhenIdle
    }

    // MARK: ChannelApplication

    func streamOpened(_ stream: UInt32, headers: [String: [String]]) -> Bool {
        guard let portText = headers.first("port"), !portText.isEmpty else {
            loop.logger.info("port-forward stream rejected: \"port\" header is required")
            return false
        }
        guard let port = UInt16(portText), port >= 1 else {
            loop.logger.info("port-forward stream rejected: unable to parse port", metadata: ["port": "\(portText)"])
            return false
        }
        let type = headers.first("streamtype") ?? ""
        guard type == "data" || type == "error" else {
            loop.logger.info("port-forward stream rejected: invalid stream type", metadata: ["streamtype": "\(type)"])
            return false
        }
        // Clients before request IDs: the error stream's ID names the pair, the data
        // stream's ID + 2 (the kubelet's best effort).
        var requestID = headers.first("requestid") ?? ""
        if requestID.isEmpty {
            requestID = String(type == "error" ? stream : stream + 2)
        }
        let pair = pairs[requestID] ?? Pair(requestID: requestID)
        if type == "data" {
            guard pair.dataStream == nil else { return false }
            pair.dataStream = stream
            pair.port = Int32(port)
        } else {
            guard pair.errorStream == nil else { return false }
            pair.errorStream = stream
        }
        pairs[requestID] = pair
        pairOf[stream] = pair
        if pair.dataStream != nil, pair.errorStream != nil, !pair.requested {
            pair.requested = true
            startedAny = true
            loop.submit(.portForward(podSandboxID: podSandboxID, port: pair.port, requestID: requestID))
        }
        return true
    }

    func streamData(_ stream: UInt32, _ bytes: [UInt8]) {
        guard let pair = pairOf[stream], stream == pair.dataStream else { return }
        if let inbound = pair.inbound { inbound.feed(bytes) } else if pair.outbound == nil { pair.pending.append(contentsOf: bytes) }
    }

    func streamRemoteClosed(_ stream: UInt32) {
        guard let pair = pairOf[stream], stream == pair.dataStream else { return }
        pair.clientEnded = true
        pair.inbound?.finishInput()
    }

    func streamReset(_ stream: UInt32) {
        guard let pair = pairOf[stream] else { return }
        end(pair)
    }

    func handle(_ event: ConnectionEvent) {
        switch event {
        case .portForwardConnected(let requestID, let socket):
            guard let pair = pairs[requestID] else { return }  // ended meanwhile: the socket closes
            guard let dataStream = pair.dataStream else { return }
            _ = sws_set_nonblocking(socket.raw)
            let inbound = InputPump(fd: socket, isSocket: true)
            inbound.feed(pair.pending)
            pair.pending = []
            if pair.clientEnded { inbound.finishInput() }
            let outbound = OutputPump(fd: socket, onData: { [unowned self] bytes in
                self.transport.send(bytes, on: dataStream)
            }, onEnd: { [unowned self, unowned pair] in
                self.end(pair)
            })
            pair.inbound = inbound
            pair.outbound = outbound
            loop.addPump(inbound)
            loop.addPump(outbound)
        case .portForwardFailed(let requestID, let message):
            guard let pair = pairs[requestID] else { return }
            loop.logger.info("port-forward failed", metadata: ["port": "\(pair.port)", "error": "\(message)"])
            if let errorStream = pair.errorStream {
                transport.send(Array("error forwarding port \(pair.port) to pod \(podSandboxID), uid : \(message)".utf8), on: errorStream)
            }
            end(pair)
        default:
            break
        }
    }

    var wantsInputPaused: Bool {
        pairs.values.contains { ($0.inbound?.backlog ?? 0) >= InputPump.highWater || $0.pending.count >= InputPump.highWater }
    }

    func teardown() {
        for pair in pairs.values {
            pair.inbound = nil
            pair.outbound = nil
        }
        pairs = [:]
        pairOf = [:]
    }

    /// Ends a pair: both streams closed, the socket released (once both pumps are gone).
    private func end(_ pair: Pair) {
        guard pairs[pair.requestID] === pair else { return }
        pairs[pair.requestID] = nil
        if let data = pair.dataStream {
            transport.closeStream(data)
            pairOf[data] = nil
        }
        if let error = pair.errorStream {
            transport.closeStream(error)
            pairOf[error] = nil
        }
        pair.inbound?.cancel()
        pair.outbound?.cancel()
        pair.inbound = nil
        pair.outbound = nil
        if finishWhenIdle && startedAny && pairs.isEmpty { transport.finish() }
    }
}
