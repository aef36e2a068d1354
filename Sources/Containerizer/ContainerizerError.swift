#if canImport(Glibc)
import Glibc
#endif

/// Why a containerizer operation failed, with the errno and the object concerned.
public struct ContainerizerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Sendable, Equatable {
        /// A cgroup file or directory could not be created, written or read.
        case cgroup
        /// The container's process could not be started; `stage` says where (exec, mount, …).
        case launch(stage: String)
        /// Checkpointed state could not be written or read.
        case checkpoint
        /// No container with that id.
        case notFound
        /// A container with that id exists already.
        case alreadyExists
        /// The request is wrong in itself.
        case invalidArgument
    }

    public var kind: Kind
    /// The path, id or value concerned.
    public var context: String
    /// The errno behind the failure, if there is one.
    public var errno: Int32?
    public var detail: String

    public init(_ kind: Kind, context: String, errno: Int32? = nil, detail: String = "") {
        self.kind = kind
        self.context = context
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        let reason = detail.isEmpty ? (errno.map { String(cString: strerror($0)) } ?? "") : detail
        switch kind {
        case .cgroup: return "cgroup \(context): \(reason)"
        case .launch(let stage): return "cannot start container \(context): \(stage): \(reason)"
        case .checkpoint: return "checkpoint \(context): \(reason)"
        case .notFound: return "container \(context) not found"
        case .alreadyExists: return "container \(context) already exists"
        case .invalidArgument: return "\(context): \(reason)"
        }
    }

    /// The errno of the last failed call, as an error about `path`.
    static func cgroup(_ path: String, _ what: String) -> ContainerizerError {
        let code = Glibc.errno
        return ContainerizerError(.cgroup, context: path, errno: code, detail: "\(what): \(String(cString: strerror(code)))")
    }
}
