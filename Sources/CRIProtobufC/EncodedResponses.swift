import CRI

/// A RuntimeService that can answer its list calls with the response already encoded.
///
/// The kubelet relists pods and containers every second, and what it gets back rarely
/// changed; a service that keeps its answers encoded between changes serves them without
/// building and packing a message tree each time. The CRI server calls these instead of
/// ``RuntimeService/listContainers(_:context:)`` and
/// ``RuntimeService/listPodSandbox(_:context:)``: the bytes must be exactly the protobuf
/// encoding of what those return.
public protocol EncodedListResponses: Sendable {
    /// `ListContainersResponse` for `request`, encoded.
    func listContainersEncoded(_ request: ListContainersRequest, context: CallContext) async throws -> [UInt8]
    /// `ListPodSandboxResponse` for `request`, encoded.
    func listPodSandboxEncoded(_ request: ListPodSandboxRequest, context: CallContext) async throws -> [UInt8]
}
