/// Why the kubelet API server could not start or serve.
public struct KubeletServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What failed.
    public enum Code: Sendable, Equatable {
        /// The certificate, key or client CA could not be loaded (OpenSSL's reason in `detail`).
        case tls
        /// The listening socket could not be created or bound.
        case bind
        /// A thread for the accept loop or a connection could not be started.
        case thread
        /// An eventfd could not be created.
        case resources
        /// ``KubeletAPIServer/run()`` was called before ``KubeletAPIServer/start()``, or twice.
        case notStarted
        /// The self-signed serving certificate (``ServingCertificate``) could not be made or
        /// written: the file or step in `context`, the errno or OpenSSL's reason beside it.
        case certificate
    }

    public var code: Code
    /// The address, file or step involved.
    public var context: String
    /// The errno behind the failure, when there is one.
    public var errno: Int32?
    /// OpenSSL's error text, when there is one.
    public var detail: String?

    public init(_ code: Code, context: String, errno: Int32? = nil, detail: String? = nil) {
        self.code = code
        self.context = context
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        var text = "kubelet server: \(code) (\(context))"
        if let errno { text += ": \(errnoText(errno)) (errno \(errno))" }
        if let detail { text += ": \(detail)" }
        return text
    }
}
