/// An error a CRI handler returns to its client as a gRPC status.
public struct CRIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The gRPC status codes, by their wire numbers.
    public enum Code: Int32, Sendable {
        case ok = 0
        case cancelled = 1
        case unknown = 2
        case invalidArgument = 3
        case deadlineExceeded = 4
        case notFound = 5
        case alreadyExists = 6
        case permissionDenied = 7
        case resourceExhausted = 8
        case failedPrecondition = 9
        case aborted = 10
        case outOfRange = 11
        case unimplemented = 12
        case `internal` = 13
        case unavailable = 14
        case dataLoss = 15
        case unauthenticated = 16
    }

    /// The status code the client sees.
    public var code: Code
    /// The status message the client sees.
    public var message: String

    /// Creates an error with a code and a message for the client.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// The answer of a method Swiftlet does not implement (yet), naming it.
    public static func unimplemented(_ method: String) -> CRIError {
        CRIError(.unimplemented, "method \(method) is not implemented by swiftlet")
    }

    /// A request that is wrong in itself.
    public static func invalidArgument(_ message: String) -> CRIError {
        CRIError(.invalidArgument, message)
    }

    /// An object the request names does not exist.
    public static func notFound(_ message: String) -> CRIError {
        CRIError(.notFound, message)
    }
}
