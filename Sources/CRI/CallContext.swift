/// The CRI API version a call came in on.
public enum APIVersion: String, Sendable, CaseIterable {
    /// `runtime.v1`, spoken by kubelets since 1.23 (required since 1.26).
    case v1
    /// `runtime.v1alpha2`, spoken by kubelets 1.20–1.25.
    case v1alpha2

    /// The protobuf package of the services of this version (`runtime.v1`).
    public var package: String { "runtime.\(rawValue)" }
}

/// What a handler knows about the call it serves, beyond the request message.
///
/// Cancellation reaches the handler as Swift task cancellation: a client that cancels, or a
/// deadline that passes, cancels the task running the handler.
public struct CallContext: Sendable {
    /// The API version the client called.
    public var apiVersion: APIVersion
    /// The full method path, for example `/runtime.v1.RuntimeService/Version`.
    public var method: String
    /// When the client stops waiting, if it set a deadline.
    public var deadline: ContinuousClock.Instant?

    /// Creates a context.
    public init(apiVersion: APIVersion, method: String, deadline: ContinuousClock.Instant? = nil) {
        self.apiVersion = apiVersion
        self.method = method
        self.deadline = deadline
    }
}

/// The sending side of a server-streaming call (`GetContainerEvents`).
public struct ResponseStream<Element: Sendable>: Sendable {
    private let sendElement: @Sendable (Element) async throws -> Void

    /// Creates a stream that hands each element to `send`.
    public init(_ send: @escaping @Sendable (Element) async throws -> Void) {
        self.sendElement = send
    }

    /// Sends one message; returns when the transport took it. Throws if the call is over.
    public func send(_ element: Element) async throws {
        try await sendElement(element)
    }
}
