/// A session's view of its transport: SPDY streams or WebSocket channels, both named by a
/// number (a SPDY stream ID or a channel index).
protocol ChannelTransport: AnyObject {
    /// Sends bytes on a stream.
    func send(_ bytes: [UInt8], on stream: UInt32)
    /// Ends the server's side of a stream (SPDY: an empty DATA frame with FIN; WebSocket
    /// channels have no half-close, so nothing).
    func closeStream(_ stream: UInt32)
    /// Ends the connection once everything queued is written (SPDY: GOAWAY; WebSocket: a
    /// close frame).
    func finish()
}

/// A streaming protocol over a transport: the k8s remote-command (exec, attach) or
/// port-forward protocol.
protocol ChannelApplication: AnyObject {
    /// A stream the client opened with `headers` (lowercased names); false rejects it.
    func streamOpened(_ stream: UInt32, headers: [String: [String]]) -> Bool
    func streamData(_ stream: UInt32, _ bytes: [UInt8])
    /// The client ended its side of the stream.
    func streamRemoteClosed(_ stream: UInt32)
    /// The client reset the stream: neither side uses it any more.
    func streamReset(_ stream: UInt32)
    /// An event from the task that runs the runtime's calls.
    func handle(_ event: ConnectionEvent)
    /// Whether input should pause (a process is not reading its stdin fast enough).
    var wantsInputPaused: Bool { get }
    /// The connection ends: release everything.
    func teardown()
}

extension Dictionary where Key == String, Value == [String] {
    /// The first value of a header (names are lowercase).
    func first(_ name: String) -> String? { self[name]?.first }
}
