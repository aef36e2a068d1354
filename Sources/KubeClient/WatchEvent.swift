/// The type of a watch event.
public enum WatchEventType: String, Sendable, Hashable, Codable {
    case added = "ADDED"
    case modified = "MODIFIED"
    case deleted = "DELETED"
    /// Only `metadata.resourceVersion` is meaningful: progress without a change.
    case bookmark = "BOOKMARK"
    /// The object is a metav1.Status. ``KubeClient/watch(_:resourceVersion:labelSelector:fieldSelector:allowWatchBookmarks:timeoutSeconds:)``
    /// never yields these: it ends the stream with a ``KubeAPIError`` instead.
    case error = "ERROR"
}

/// One event of a watch: its type and the object (a ``JSONValue``; decode it with
/// ``decode(as:)``).
public struct WatchEvent: Sendable, Hashable {
    public var type: WatchEventType
    public var object: JSONValue

    public init(type: WatchEventType, object: JSONValue) {
        self.type = type
        self.object = object
    }

    /// The object's `metadata.resourceVersion`: where to resume a watch after this event.
    public var resourceVersion: String? { object.resourceVersion }

    /// The object decoded as a model.
    public func decode<T: Decodable>(as type: T.Type) throws(KubeAPIError) -> T { try object.decode(as: T.self) }

    /// The ERROR event's Status as an error (410 Gone for an expired resourceVersion).
    var statusError: KubeAPIError {
        let status = APIStatus(object)
        return KubeAPIError(.status, httpStatus: status?.code ?? 500, status: status,
                            detail: status == nil ? "watch ERROR event: \(String(decoding: object.serialized(), as: UTF8.self))" : "")
    }
}

/// Frames a watch response body into events: the API server writes one JSON object
/// (`{"type": …, "object": …}`) per line. Bytes may arrive split anywhere; feed them as they
/// come.
public struct WatchEventDecoder: Sendable {
    private var buffer: [UInt8] = []
    /// A line longer than this is an error rather than unbounded memory (default 64 MiB).
    public var maximumLineLength: Int

    public init(maximumLineLength: Int = 64 << 20) {
        self.maximumLineLength = maximumLineLength
    }

    /// Consumes bytes and returns the events they complete.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(KubeAPIError) -> [WatchEvent] {
        var events: [WatchEvent] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if let event = try Self.event(fromLine: buffer) { events.append(event) }
                buffer.removeAll(keepingCapacity: true)
            } else {
                buffer.append(byte)
                if buffer.count > maximumLineLength {
                    throw KubeAPIError(.decoding, detail: "a watch event longer than \(maximumLineLength) bytes")
                }
            }
        }
        return events
    }

    /// The last event when the stream ended without a final newline (nil if none).
    public mutating func finish() throws(KubeAPIError) -> WatchEvent? {
        defer { buffer.removeAll() }
        return try Self.event(fromLine: buffer)
    }

    static func event(fromLine line: [UInt8]) throws(KubeAPIError) -> WatchEvent? {
        if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") }) { return nil }
        let value: JSONValue
        do {
            value = try JSONValue(parsing: line)
        } catch {
            throw KubeAPIError(.decoding, detail: "watch event: \(error.detail)")
        }
        guard let typeName = value["type"]?.stringValue else {
            throw KubeAPIError(.decoding, detail: "watch event without a type: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
        guard let type = WatchEventType(rawValue: typeName) else {
            throw KubeAPIError(.decoding, detail: "unknown watch event type \"\(typeName)\"")
        }
        return WatchEvent(type: type, object: value["object"] ?? .null)
    }
}
