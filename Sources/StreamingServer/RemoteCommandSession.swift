import Logging

/// The k8s remote-command protocol (kubelet `remotecommand`) for exec and attach, over
/// SPDY streams or WebSocket channels: waits until the client opened the streams its
/// options call for (error, and stdin/stdout/stderr/resize as requested), starts the
/// runtime's call with pipes, copies stdin in and stdout/stderr out, delivers resizes,
/// then, once the call returned and its output is drained, writes the status on the error
/// stream and ends the connection.
final class RemoteCommandSession: ChannelApplication {
    enum Target: Equatable {
        case exec(containerID: String, command: [String])
        case attach(containerID: String)
    }

    enum StreamType: String, CaseIterable {
        case error, stdin, stdout, stderr, resize
    }

    private unowned let loop: ConnectionLoop
    /// The transport owns this session; it outlives it.
    unowned var transport: (any ChannelTransport)!
    private let target: Target
    private let options: StreamOptions
    private let jsonStatus: Bool
    private let expected: Set<StreamType>

    private var typeOf: [UInt32: StreamType] = [:]
    private var idOf: [StreamType: UInt32] = [:]
    private var started = false
    private var completed = false
    private var earlyStdin: [UInt8] = []
    private var stdinEndedEarly = false
    private var stdinPump: InputPump?
    private var openOutputs = 0
    private var result: Result<Int32?, StreamingError>?
    private var resizeDecoder = ResizeDecoder()
    private let resizes: AsyncStream<TerminalSize>
    private let resizeSink: AsyncStream<TerminalSize>.Continuation

    /// - Parameters:
    ///   - jsonStatus: v4/v5 (`metav1.Status` JSON) rather than the older plain text.
    ///   - resizeSupported: the protocol has a resize stream (v3 and later, WebSocket).
    init(loop: ConnectionLoop, target: Target, options: StreamOptions, jsonStatus: Bool, resizeSupported: Bool) {
        self.loop = loop
        self.target = target
        self.options = options
        self.jsonStatus = jsonStatus
        var expected: Set<StreamType> = [.error]
        if options.stdin { expected.insert(.stdin) }
        if options.stdout { expected.insert(.stdout) }
        if options.stderr { expected.insert(.stderr) }
        if options.tty && resizeSupported { expected.insert(.resize) }
        self.expected = expected
        (resizes, resizeSink) = AsyncStream.makeStream(of: TerminalSize.self, bufferingPolicy: .bufferingNewest(32))
    }

    /// Stream types the client must open before the command starts.
    var expectedStreams: Set<StreamType> { expected }

    // MARK: ChannelApplication

    func streamOpened(_ stream: UInt32, headers: [String: [String]]) -> Bool {
        guard !started, !completed else {
            loop.logger.debug("stream opened after the session started", metadata: ["stream": "\(stream)"])
            return false
        }
        let name = headers.first("streamtype") ?? ""
        guard let type = StreamType(rawValue: name) else {
            loop.logger.info("rejected stream of unknown type", metadata: ["streamtype": "\(name)"])
            return false
        }
        guard idOf[type] == nil else {
            loop.logger.info("rejected duplicate stream", metadata: ["streamtype": "\(name)"])
            return false
        }
        idOf[type] = stream
        typeOf[stream] = type
        if expected.isSubset(of: Set(idOf.keys)) { start() }
        return true
    }

    func streamData(_ stream: UInt32, _ bytes: [UInt8]) {
        switch typeOf[stream] {
        case .stdin where options.stdin:
            if let stdinPump { stdinPump.feed(bytes) } else if !started { earlyStdin.append(contentsOf: bytes) }
        case .resize where options.tty:
            let wasFailed = resizeDecoder.failed
            for size in resizeDecoder.feed(bytes) { resizeSink.yield(size) }
            if resizeDecoder.failed && !wasFailed {
                loop.logger.info("malformed resize message; ignoring further resizes")
            }
        default:
            break
        }
    }

    func streamRemoteClosed(_ stream: UInt32) {
        guard typeOf[stream] == .stdin else { return }
        if let stdinPump { stdinPump.finishInput() } else if !started { stdinEndedEarly = true }
    }

    func streamReset(_ stream: UInt32) { streamRemoteClosed(stream) }

    func handle(_ event: ConnectionEvent) {
        guard case .remoteCommandFinished(let outcome) = event else { return }
        result = outcome
        if case .failure(let error) = outcome {
            loop.logger.info("remote command failed", metadata: ["error": "\(error.message)"])
        }
        completeIfDone()
    }

    var wantsInputPaused: Bool {
        (stdinPump?.backlog ?? 0) >= InputPump.highWater || earlyStdin.count >= InputPump.highWater
    }

    func teardown() {
        resizeSink.finish()
        stdinPump = nil
    }

    // MARK: The session

    private func start() {
        started = true
        loop.setDeadline(nil)
        var keepAlive: [OwnedFD] = []
        var io = StreamIO(stdin: nil, stdout: nil, stderr: nil, tty: options.tty, resize: resizes)

        if options.stdin {
            guard let pipe = Syscall.pipe(nonBlockingEnd: 1) else { return failToStart() }
            keepAlive.append(pipe.read)
            io.stdin = pipe.read.raw
            let pump = InputPump(fd: pipe.write, isSocket: false)
            pump.feed(earlyStdin)
            earlyStdin = []
            if stdinEndedEarly { pump.finishInput() }
            stdinPump = pump
            loop.addPump(pump)
        }
        for type in [StreamType.stdout, .stderr] {
            let wanted = type == .stdout ? options.stdout : options.stderr
            guard wanted, let id = idOf[type] else { continue }
            guard let pipe = Syscall.pipe(nonBlockingEnd: 0) else { return failToStart() }
            keepAlive.append(pipe.write)
            if type == .stdout { io.stdout = pipe.write.raw } else { io.stderr = pipe.write.raw }
            openOutputs += 1
            loop.addPump(OutputPump(fd: pipe.read, onData: { [unowned self] bytes in
                self.transport.send(bytes, on: id)
            }, onEnd: { [unowned self] in
                self.transport.closeStream(id)
                self.openOutputs -= 1
                self.completeIfDone()
            }))
        }

        switch target {
        case .exec(let containerID, let command):
            loop.submit(.exec(containerID: containerID, command: command, io: io, keepAlive: keepAlive))
        case .attach(let containerID):
            loop.submit(.attach(containerID: containerID, io: io, keepAlive: keepAlive))
        }
    }

    private func failToStart() {
        loop.logger.error("cannot create pipes for a remote command session")
        result = .failure(StreamingError(.internal, "cannot create pipes"))
        openOutputs = 0
        completeIfDone()
    }

    private func completeIfDone() {
        guard !completed, let result, openOutputs == 0 else { return }
        completed = true
        resizeSink.finish()
        var command: [String]?
        if case .exec(_, let words) = target { command = words }
        let status = RemoteCommandStatus.encode(result, command: command, json: jsonStatus)
        if let errorID = idOf[.error] {
            if !status.isEmpty { transport.send(status, on: errorID) }
            transport.closeStream(errorID)
        }
        for (type, id) in idOf where type != .error { transport.closeStream(id) }
        transport.finish()
    }
}
