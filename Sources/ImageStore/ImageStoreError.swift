#if canImport(Glibc)
import Glibc
#endif

/// Why an image store operation failed, with the object and errno.
public struct ImageStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Content whose digest or size is not what its descriptor says.
        case digestMismatch
        /// A layer or archive that cannot be read (corrupt gzip, bad tar header, …).
        case corrupt
        /// A tar entry that would land outside the layer (`..`, absolute links through symlinks).
        case unsafePath
        /// A file system operation failed (errno set).
        case io
        /// A manifest, index or config that is not what the OCI/Docker specs allow.
        case invalidFormat
        case notFound
    }

    public var kind: Kind
    public var context: String
    public var errno: Int32?
    public var detail: String

    public init(_ kind: Kind, context: String, errno: Int32? = nil, detail: String = "") {
        self.kind = kind
        self.context = context
        self.errno = errno
        self.detail = detail
    }

    static func io(_ path: String, _ what: String) -> ImageStoreError {
        let code = Glibc.errno
        return ImageStoreError(.io, context: path, errno: code, detail: "\(what): \(String(cString: strerror(code)))")
    }

    public var description: String {
        switch kind {
        case .digestMismatch: "\(context): \(detail)"
        case .corrupt: "\(context) is corrupt: \(detail)"
        case .unsafePath: "\(context): refused: \(detail)"
        case .io: "\(context): \(detail)"
        case .invalidFormat: "\(context): \(detail)"
        case .notFound: "\(context) not found"
        }
    }
}
