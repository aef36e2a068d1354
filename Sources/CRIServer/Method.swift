import CRI
import CRIProtobufC
import GRPCServer

/// One CRI method bound to its handler.
struct Method: Sendable {
    let service: String
    let name: String
    let serverStreaming: Bool
    let invoke: @Sendable (ServerCall, CallContext) async throws -> Void

    init<Request: ProtobufCCodable, Response: ProtobufCCodable>(
        service: String, name: String, unary _: Request.Type,
        _ body: @escaping @Sendable (Request, CallContext) async throws -> Response
    ) {
        self.service = service
        self.name = name
        self.serverStreaming = false
        self.invoke = { call, context in
            let request = try Method.decodeRequest(Request.self, from: call)
            let response = try await body(request, context)
            call.finish(.ok, message: response.encode())
        }
    }

    /// A unary method whose handler returns its response encoded.
    init<Request: ProtobufCCodable>(
        service: String, name: String, encodedUnary _: Request.Type,
        _ body: @escaping @Sendable (Request, CallContext) async throws -> [UInt8]
    ) {
        self.service = service
        self.name = name
        self.serverStreaming = false
        self.invoke = { call, context in
            let request = try Method.decodeRequest(Request.self, from: call)
            call.finish(.ok, message: try await body(request, context))
        }
    }

    init<Request: ProtobufCCodable, Response: ProtobufCCodable>(
        service: String, name: String, serverStreaming _: Request.Type,
        _ body: @escaping @Sendable (Request, CallContext, ResponseStream<Response>) async throws -> Void
    ) {
        self.service = service
        self.name = name
        self.serverStreaming = true
        self.invoke = { call, context in
            let request = try Method.decodeRequest(Request.self, from: call)
            try await body(request, context, ResponseStream { response in
                try await call.send(response.encode())
            })
            call.finish(.ok)
        }
    }

    private static func decodeRequest<Request: ProtobufCCodable>(_: Request.Type, from call: ServerCall) throws -> Request {
        guard call.hasRequest else {
            throw RPCStatus(.internal, "grpc: no request message received for \(call.method)")
        }
        do {
            return try call.withRequest { bytes throws(WireError) in try Request.decode(bytes) }
        } catch {
            // What grpc-go servers (containerd, CRI-O) answer for a request they cannot parse.
            throw RPCStatus(.internal, "grpc: error unmarshalling request: \(error)")
        }
    }
}

/// Every CRI method of both services, reachable by method path under both API versions:
/// runtime.v1alpha2 is a wire-compatible subset of runtime.v1, and kubelets 1.22–1.25 call
/// methods on v1alpha2 (ListPodSandboxStats, …) that 1.20's v1alpha2 did not have.
struct MethodTable: Sendable {
    /// "/runtime.v1.RuntimeService/Version" -> (method, version)
    private var byPath: [String: (Method, APIVersion)] = [:]
    /// "runtime.v1.RuntimeService" and the like.
    private var services: Set<String> = []

    init(runtime: some RuntimeService, images: some ImageService) {
        var runtimeMethods = Self.runtimeServiceMethods(runtime)
        if let encoded = runtime as? any EncodedListResponses {
            // The list calls answered with responses the service keeps encoded.
            let lists = [
                Method(service: "RuntimeService", name: "ListContainers", encodedUnary: ListContainersRequest.self) { request, context in
                    try await encoded.listContainersEncoded(request, context: context)
                },
                Method(service: "RuntimeService", name: "ListPodSandbox", encodedUnary: ListPodSandboxRequest.self) { request, context in
                    try await encoded.listPodSandboxEncoded(request, context: context)
                },
            ]
            runtimeMethods = runtimeMethods.map { method in lists.first { $0.name == method.name } ?? method }
        }
        for method in runtimeMethods + Self.imageServiceMethods(images) {
            for version in APIVersion.allCases {
                let service = "\(version.package).\(method.service)"
                services.insert(service)
                byPath["/\(service)/\(method.name)"] = (method, version)
            }
        }
    }

    /// What a path names: a method, or why not (as grpc-go words it).
    enum Lookup {
        case method(Method, APIVersion)
        case unknownService(String)
        case unknownMethod(String, service: String)
    }

    func lookup(_ path: String) -> Lookup {
        if let (method, version) = byPath[path] { return .method(method, version) }
        let trimmed = path.hasPrefix("/") ? path.dropFirst() : Substring(path)
        guard let slash = trimmed.lastIndex(of: "/") else { return .unknownService(String(trimmed)) }
        let service = String(trimmed[..<slash])
        let name = String(trimmed[trimmed.index(after: slash)...])
        return services.contains(service) ? .unknownMethod(name, service: service) : .unknownService(service)
    }

    /// Every path served, sorted.
    var paths: [String] { byPath.keys.sorted() }
}
