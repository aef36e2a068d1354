/// Why a gRPC server could not start or serve.
public struct GRPCServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What failed.
    public enum Kind: Sendable, Equatable {
        /// The listening address could not be bound.
        case bind
        /// A thread for the completion queue could not be started (errno in `errno`).
        case thread
    }

    public var kind: Kind
    /// The address or object concerned.
    public var context: String
    /// The errno behind the failure, where there is one.
    public var errno: Int32?

    public init(_ kind: Kind, context: String, errno: Int32? = nil) {
        self.kind = kind
        self.context = context
        self.errno = errno
    }

    public var description: String {
        switch kind {
        case .bind: "cannot listen on \(context) (the gRPC core logged why)"
        case .thread: "cannot start the completion-queue thread for \(context): errno \(errno ?? 0)"
        }
    }
}
