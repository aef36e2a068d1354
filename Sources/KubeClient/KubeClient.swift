import Foundation

/// A Kubernetes API client over HTTPS (libcurl): typed calls on JSON-backed resources, with
/// errors that carry the server's metav1.Status.
///
/// Paths are the API's: `/api/v1/nodes/n1`, `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1`,
/// `/api/v1/nodes/n1/status` for a subresource. Every call comes in two shapes: returning a
/// ``JSONValue`` (any resource), or decoding a `Decodable` model (`as: Node.self`). Objects sent
/// may be any `Encodable`, ``JSONValue`` included; models encode only the fields they know, so
/// prefer ``JSONValue`` or a patch for a read-modify-write of objects with fields the model lacks.
///
/// Blocking transfers run each on a thread of its own, never on the Swift cooperative pool;
/// cancelling the calling task cancels the transfer.
public final class KubeClient: Sendable {
    /// The server and credentials in use.
    public let configuration: KubeClientConfiguration
    private let configuredTLS: TLSMaterial
    /// Re-reads the client certificate and key when their files change (rotation); nil when the
    /// configuration names no files.
    private let certificateReloader: ClientCertificateReloader?

    /// A client for a configuration. When it names the files the client certificate and key came
    /// from (``KubeClientConfiguration/clientCertificateFile``, ``KubeClientConfiguration/clientKeyFile``),
    /// they are re-read whenever they change, so a rotated certificate is used from the next
    /// request on (see ``ClientCertificateRotation``).
    public init(configuration: KubeClientConfiguration) {
        self.configuration = configuration
        configuredTLS = TLSMaterial(caPEM: configuration.certificateAuthorityPEM, certificatePEM: configuration.clientCertificatePEM,
                                    keyPEM: configuration.clientKeyPEM, skipVerify: configuration.insecureSkipTLSVerify)
        certificateReloader = configuration.clientCertificateFile == nil && configuration.clientKeyFile == nil
            ? nil
            : ClientCertificateReloader(certificateFile: configuration.clientCertificateFile, keyFile: configuration.clientKeyFile,
                                        certificatePEM: configuration.clientCertificatePEM, keyPEM: configuration.clientKeyPEM)
    }

    /// The TLS material for the next request.
    var tls: TLSMaterial {
        guard let certificateReloader else { return configuredTLS }
        var material = configuredTLS
        (material.certificatePEM, material.keyPEM) = certificateReloader.current()
        return material
    }

    /// The client certificate chain (its PEM CERTIFICATE blocks) the next request presents: the
    /// configuration's, or the one re-read from ``KubeClientConfiguration/clientCertificateFile``
    /// after it changed.
    public var clientCertificatePEM: [UInt8]? { tls.certificatePEM.map(ClientCertificateStore.certificateBlocks) }

    /// A client for a kubeconfig file's current context (or `context`).
    public convenience init(kubeconfigPath: String, context: String? = nil) throws(KubeConfigError) {
        self.init(configuration: try KubeConfig.load(path: kubeconfigPath).clientConfiguration(context: context))
    }

    // MARK: Raw requests

    /// A response to ``send(method:path:query:body:contentType:)``.
    public struct Response: Sendable {
        /// The HTTP status.
        public var status: Int
        /// The response headers (lowercased names).
        public var headers: [String: String]
        /// The body.
        public var body: [UInt8]
    }

    /// Sends one request and returns the response whatever its status (nothing is thrown for
    /// 4xx/5xx here; transport failures and cancellation are).
    public func send(method: String, path: String, query: [(String, String)] = [], body: [UInt8]? = nil,
                     contentType: String? = nil) async throws(KubeAPIError) -> Response {
        let request = try makeRequest(method: method, path: path, query: Query(items: query), body: body, contentType: contentType,
                                      accept: "application/json", timeoutSeconds: configuration.requestTimeoutSeconds)
        let response = try await Transport.perform(request, tls: tls)
        return Response(status: response.status, headers: response.headers, body: response.body)
    }

    /// Sends a request and returns the JSON body of a 2xx response; any other status becomes a
    /// ``KubeAPIError`` with the decoded Status.
    func call(_ method: String, _ path: String, query: Query = Query(), body: [UInt8]? = nil,
              contentType: String? = nil) async throws(KubeAPIError) -> JSONValue {
        let pathAndQuery = path + query.text
        let response = try await send(method: method, path: path, query: query.items, body: body, contentType: contentType)
        guard (200..<300).contains(response.status) else {
            throw Self.statusError(status: response.status, body: response.body, method: method, path: pathAndQuery)
        }
        do {
            return try JSONValue(parsing: response.body)
        } catch {
            throw KubeAPIError(.decoding, httpStatus: response.status, method: method, path: pathAndQuery, detail: error.detail)
        }
    }

    static func statusError(status: Int, body: [UInt8], method: String, path: String) -> KubeAPIError {
        let decoded = (try? JSONValue(parsing: body)).flatMap(APIStatus.init)
        let text = decoded == nil ? String(decoding: body.prefix(512), as: UTF8.self) : ""
        return KubeAPIError(.status, httpStatus: status, status: decoded, method: method, path: path, detail: text)
    }

    func makeRequest(method: String, path: String, query: Query, body: [UInt8]?, contentType: String?, accept: String,
                     timeoutSeconds: Int) throws(KubeAPIError) -> HTTPRequest {
        var headers = ["Accept: \(accept)", "User-Agent: \(configuration.userAgent)", "Expect:"]
        if let contentType { headers.append("Content-Type: \(contentType)") }
        if let token = try bearerToken(method: method, path: path) { headers.append("Authorization: Bearer \(token)") }
        var server = configuration.server
        while server.hasSuffix("/") { server.removeLast() }
        let separator = path.hasPrefix("/") ? "" : "/"
        return HTTPRequest(method: method, url: server + separator + path + query.text, headers: headers, body: body,
                           timeoutSeconds: timeoutSeconds, connectTimeoutSeconds: configuration.connectTimeoutSeconds)
    }

    private func bearerToken(method: String, path: String) throws(KubeAPIError) -> String? {
        if let file = configuration.bearerTokenFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                if let token = configuration.bearerToken { return token }
                throw KubeAPIError(.credentials, method: method, path: path, detail: "cannot read the token file \(file)")
            }
            let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { return token }
        }
        return configuration.bearerToken
    }

    static func encode(_ object: some Encodable, method: String, path: String) throws(KubeAPIError) -> [UInt8] {
        if let value = object as? JSONValue { return value.serialized() }
        do {
            return Array(try JSONEncoder().encode(object))
        } catch {
            throw KubeAPIError(.encoding, method: method, path: path, detail: "cannot encode \(type(of: object)): \(error)")
        }
    }
}

extension KubeAPIError {
    var detailOrDescription: String { detail.isEmpty ? description : detail }
}

extension Error {
    fileprivate var detail: String { (self as? KubeAPIError)?.detailOrDescription ?? "\(self)" }
}
