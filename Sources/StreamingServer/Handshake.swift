import Logging

/// The subprotocols the server speaks, in the kubelet's order.
enum StreamProtocols {
    /// SPDY `X-Stream-Protocol-Version` for exec and attach.
    static let remoteCommandSPDY = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]
    /// `Sec-WebSocket-Protocol` for exec and attach.
    static let remoteCommandWebSocket = [
        "v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io",
    ]
    /// SPDY `X-Stream-Protocol-Version` for port forwarding.
    static let portForwardSPDY = ["portforward.k8s.io"]
    /// `Sec-WebSocket-Protocol` for port forwarding.
    static let portForwardWebSocket = ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"]

    /// The client's first protocol the server also speaks (apimachinery's negotiation).
    static func negotiate(client: [String], server: [String]) -> String? {
        client.first { server.contains($0) }
    }
}

/// Reads the request head, routes it (`/exec/<token>`, `/attach/<token>`,
/// `/portforward/<token>`), consumes the token and upgrades to SPDY/3.1 or WebSocket, or
/// answers with the error the kubelet would give.
final class HandshakeHandler: ConnectionHandler {
    private unowned let loop: ConnectionLoop
    private var done = false

    init(loop: ConnectionLoop) {
        self.loop = loop
        loop.setDeadline(.now + loop.context.streamCreationTimeout) { [unowned self] in
            self.refuse(408, "timed out waiting for the request")
        }
    }

    func receive(_ input: inout ByteQueue) {
        guard !done else { return }
        let head: HTTPRequestHead
        do {
            guard let parsed = try HTTPRequestParser.parse(&input) else { return }
            head = parsed
        } catch {
            switch error {
            case .tooLarge: return refuse(431, "request header fields too large")
            case .malformed(let why): return refuse(400, "malformed HTTP request: \(why)")
            }
        }
        done = true
        loop.setDeadline(nil)
        route(head)
    }

    func handle(_ event: ConnectionEvent) {}
    var wantsInputPaused: Bool { false }
    func teardown() {}

    private func refuse(_ status: Int, _ message: String, headers: [(String, String)] = []) {
        done = true
        loop.logger.debug("request refused", metadata: ["status": "\(status)", "message": "\(message)"])
        loop.write(HTTPResponse.error(status, message, extraHeaders: headers))
        loop.finishAfterFlush()
    }

    private func route(_ head: HTTPRequestHead) {
        let parts = head.path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].isEmpty, ["exec", "attach", "portforward"].contains(parts[1]), !parts[2].isEmpty else {
            return refuse(404, "404 page not found")
        }
        guard head.method == "GET" || head.method == "POST" else {
            return refuse(405, "405 method not allowed")
        }
        guard let request = loop.context.tokens.consume(String(parts[2])), request.pathSegment == parts[1] else {
            return refuse(404, "404 page not found")
        }
        loop.logger = loop.logger.with("request", "\(request.pathSegment)")
        switch request {
        case .exec(let containerID, let command, let options):
            serveRemoteCommand(head, .exec(containerID: containerID, command: command), options)
        case .attach(let containerID, let options):
            serveRemoteCommand(head, .attach(containerID: containerID), options)
        case .portForward(let podSandboxID, let port):
            servePortForward(head, podSandboxID: podSandboxID, port: port)
        }
    }

    // MARK: Upgrades

    private static func isWebSocket(_ head: HTTPRequestHead) -> Bool {
        head.values("connection").contains { $0.lowercased().contains("upgrade") }
            && head.value("upgrade")?.lowercased() == "websocket"
    }

    /// apimachinery's `httpstream.Handshake`: the negotiated protocol, or nil after an error
    /// response.
    private func negotiateSPDY(_ head: HTTPRequestHead, server: [String]) -> String? {
        let client = head.commaSeparated("x-stream-protocol-version")
        guard !client.isEmpty else {
            refuse(400, "unable to upgrade: X-Stream-Protocol-Version is required")
            return nil
        }
        guard let chosen = StreamProtocols.negotiate(client: client, server: server) else {
            refuse(
                403,
                "unable to upgrade: unable to negotiate protocol: client supports [\(client.joined(separator: " "))], server accepts [\(server.joined(separator: " "))]",
                headers: server.map { ("X-Accepted-Stream-Protocol-Versions", $0) })
            return nil
        }
        return chosen
    }

    /// Upgrades to SPDY/3.1 (spdy `ResponseUpgrader`); nil after an error response.
    private func upgradeSPDY(_ head: HTTPRequestHead, chosen: String) -> SPDYSession? {
        let connection = head.values("connection").contains { $0.lowercased().contains("upgrade") }
        guard connection, head.value("upgrade")?.lowercased() == "spdy/3.1" else {
            refuse(400, "unable to upgrade: missing upgrade headers in request: Connection=\(head.values("connection")) Upgrade=\(head.values("upgrade"))")
            return nil
        }
        guard let codec = SPDYHeaderCodec() else {
            refuse(500, "unable to upgrade: out of memory")
            return nil
        }
        loop.write(HTTPResponse.switchingProtocols([
            ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", chosen),
        ]))
        let session = SPDYSession(loop: loop, codec: codec)
        loop.switchHandler(to: session)
        return session
    }

    /// Upgrades to WebSocket (RFC 6455) with one of `server`'s subprotocols ("" when the
    /// client names none); nil after an error response.
    private func upgradeWebSocket(_ head: HTTPRequestHead, server: [String]) -> String? {
        guard let key = head.value("sec-websocket-key"), Base64.decode(Array(key.utf8))?.count == 16 else {
            refuse(400, "bad request: missing or invalid Sec-WebSocket-Key")
            return nil
        }
        guard head.value("sec-websocket-version") == "13" else {
            refuse(400, "bad request: unsupported Sec-WebSocket-Version", headers: [("Sec-WebSocket-Version", "13")])
            return nil
        }
        let client = head.commaSeparated("sec-websocket-protocol")
        let chosen: String
        if client.isEmpty {
            chosen = ""
        } else if let match = StreamProtocols.negotiate(client: client, server: server) {
            chosen = match
        } else {
            refuse(403, "requested protocol(s) are not supported: [\(client.joined(separator: " "))]; supports [\(server.joined(separator: " "))]")
            return nil
        }
        var headers = [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", WebSocketFrameCodec.acceptValue(forKey: key)),
        ]
        if !chosen.isEmpty { headers.append(("Sec-WebSocket-Protocol", chosen)) }
        loop.write(HTTPResponse.switchingProtocols(headers))
        return chosen
    }

    // MARK: Exec and attach

    private func serveRemoteCommand(_ head: HTTPRequestHead, _ target: RemoteCommandSession.Target, _ options: StreamOptions) {
        if Self.isWebSocket(head) {
            guard let chosen = upgradeWebSocket(head, server: StreamProtocols.remoteCommandWebSocket) else { return }
            let v4OrLater = chosen.hasPrefix("v4.") || chosen.hasPrefix("v5.")
            let session = RemoteCommandSession(loop: loop, target: target, options: options, jsonStatus: v4OrLater, resizeSupported: true)
            var channels: [WebSocketSession.Channel] = []
            let layout: [(RemoteCommandSession.StreamType, UInt8, Bool)] = [
                (.stdin, 0, true), (.stdout, 1, false), (.stderr, 2, false), (.error, 3, false), (.resize, 4, true),
            ]
            for (type, index, readable) in layout where session.expectedStreams.contains(type) {
                channels.append(.init(index: index, readable: readable, headers: ["streamtype": [type.rawValue]], initialMessage: nil))
            }
            // The kubelet's first message: empty, on the lowest writable channel.
            let announce: UInt8 = options.stdout ? 1 : options.stderr ? 2 : 3
            if let index = channels.firstIndex(where: { $0.index == announce }) { channels[index].initialMessage = [] }
            let transport = WebSocketSession(
                loop: loop, base64: chosen.contains("base64"), closeSignals: chosen.hasPrefix("v5."), channels: channels)
            transport.application = session
            session.transport = transport
            loop.switchHandler(to: transport)
            transport.start()
            return
        }
        guard let chosen = negotiateSPDY(head, server: StreamProtocols.remoteCommandSPDY),
              let transport = upgradeSPDY(head, chosen: chosen)
        else { return }
        let session = RemoteCommandSession(
            loop: loop, target: target, options: options,
            jsonStatus: chosen == "v4.channel.k8s.io",
            resizeSupported: chosen == "v4.channel.k8s.io" || chosen == "v3.channel.k8s.io")
        transport.application = session
        session.transport = transport
        loop.setDeadline(.now + loop.context.streamCreationTimeout) { [unowned loop] in
            loop.logger.info("timed out waiting for the client to create streams")
            transport.finish()
        }
    }

    // MARK: Port forwarding

    private func servePortForward(_ head: HTTPRequestHead, podSandboxID: String, port: Int32?) {
        if Self.isWebSocket(head) {
            var ports: [UInt16] = []
            let values = head.queryValues("port")
            for value in values {
                guard !value.isEmpty else { return refuse(400, "query parameter \"port\" cannot be empty") }
                for item in value.split(separator: ",", omittingEmptySubsequences: false) {
                    guard let parsed = UInt16(item) else { return refuse(400, "unable to parse \"\(value)\" as a port") }
                    guard parsed >= 1 else { return refuse(400, "port \"\(value)\" must be > 0") }
                    ports.append(parsed)
                }
            }
            if ports.isEmpty, let port, let only = UInt16(exactly: port), only >= 1 { ports = [only] }
            guard !ports.isEmpty else { return refuse(400, "query parameter \"port\" is required") }
            guard let chosen = upgradeWebSocket(head, server: StreamProtocols.portForwardWebSocket) else { return }
            var channels: [WebSocketSession.Channel] = []
            for (index, port) in ports.enumerated() {
                let prefix = [UInt8(port & 0xff), UInt8(port >> 8)]
                let common = ["port": ["\(port)"], "requestid": ["\(index)"]]
                channels.append(.init(index: UInt8(index * 2), readable: true,
                                      headers: common.merging(["streamtype": ["data"]]) { $1 }, initialMessage: prefix))
                channels.append(.init(index: UInt8(index * 2 + 1), readable: false,
                                      headers: common.merging(["streamtype": ["error"]]) { $1 }, initialMessage: prefix))
            }
            guard channels.count <= 254 else { return refuse(400, "too many ports") }
            let session = PortForwardSession(loop: loop, podSandboxID: podSandboxID, finishWhenIdle: true)
            let transport = WebSocketSession(loop: loop, base64: chosen.contains("base64"), closeSignals: false, channels: channels)
            transport.application = session
            session.transport = transport
            loop.switchHandler(to: transport)
            transport.start()
            return
        }
        guard let chosen = negotiateSPDY(head, server: StreamProtocols.portForwardSPDY),
              let transport = upgradeSPDY(head, chosen: chosen)
        else { return }
        let session = PortForwardSession(loop: loop, podSandboxID: podSandboxID, finishWhenIdle: false)
        transport.application = session
        session.transport = transport
    }
}

extension Logger {
    /// A copy with one more metadata value.
    func with(_ key: String, _ value: String) -> Logger {
        var copy = self
        copy[metadataKey: key] = .string(value)
        return copy
    }
}
