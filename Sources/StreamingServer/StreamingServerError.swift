/// Why the streaming server could not start or serve.
public struct StreamingServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What failed.
    public enum Code: Sendable, Equatable {
        /// The listening socket could not be created or bound.
        case bind
        /// A thread for the accept loop or a connection could not be started.
        case thread
        /// An eventfd or pipe could not be created.
        case resources
        /// ``StreamingServer/run()`` was called before ``StreamingServer/start()``, or twice.
        case notStarted
    }

    public var code: Code
    /// The address, or what was being done.
    public var context: String
    /// The errno behind the failure, when there is one.
    public var errno: Int32?

    public init(_ code: Code, context: String, errno: Int32? = nil) {
        self.code = code
        self.context = context
        self.errno = errno
    }

    public var description: String {
        var text = "streaming server: \(code) (\(context))"
        if let errno { text += ": errno \(errno)" }
        return text
    }
}
