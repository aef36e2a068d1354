import Foundation
import ImageStore
import Synchronization

/// Credentials for one registry, as the CRI's AuthConfig carries them.
public struct RegistryCredentials: Sendable, Equatable {
    public var username: String
    public var password: String
    /// A bearer token handed to the token endpoint as a refresh token (identity_token).
    public var identityToken: String
    /// A bearer token used as is (registry_token).
    public var registryToken: String

    public init(username: String = "", password: String = "", identityToken: String = "", registryToken: String = "") {
        self.username = username
        self.password = password
        self.identityToken = identityToken
        self.registryToken = registryToken
    }

    /// From the CRI's `auth` field: base64("user:password").
    public init?(auth: String) {
        guard let data = Data(base64Encoded: auth), let text = String(data: data, encoding: .utf8),
              let colon = text.firstIndex(of: ":") else { return nil }
        self.init(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
    }

    var isEmpty: Bool { username.isEmpty && password.isEmpty && identityToken.isEmpty && registryToken.isEmpty }
}

/// Pulls images into an ImageStore over the Docker Registry HTTP API v2 / OCI distribution
/// spec: the endpoints of hosts.toml in order, Basic and Bearer (WWW-Authenticate challenge)
/// auth, retries with backoff on 5xx and 429, layers downloaded concurrently and verified
/// (digest and size) before they enter the store.
public struct Puller: Sendable {
    public let store: ImageStore
    public let hosts: RegistryHosts
    /// Layers downloaded at once.
    public var concurrency = 3
    private let inFlight = InFlightPulls()

    public init(store: ImageStore, hosts: RegistryHosts) {
        self.store = store
        self.hosts = hosts
    }

    static let manifestAccept = [
        MediaType.ociIndex, MediaType.dockerManifestList, MediaType.ociManifest, MediaType.dockerManifest,
        MediaType.dockerSchema1Signed, MediaType.dockerSchema1,
    ].joined(separator: ", ")

    /// Pulls `reference`; returns the stored image. Concurrent pulls of the same reference with
    /// the same credentials share one download.
    public func pull(_ reference: String, credentials: RegistryCredentials = RegistryCredentials()) async throws(RegistryError) -> StoredImage {
        guard let parsed = ImageReference(reference) else { throw RegistryError(.invalidReference, context: reference) }
        let key = InFlightPulls.Key(reference: parsed.description, credentials: credentials)
        return try await inFlight.run(key) { () async throws(RegistryError) -> StoredImage in
            try await pullNow(parsed, credentials: credentials)
        }
    }

    private func pullNow(_ parsed: ImageReference, credentials: RegistryCredentials) async throws(RegistryError) -> StoredImage {
        var lastError = RegistryError(.transport, context: parsed.registry, detail: "no endpoint configured")
        for endpoint in hosts.endpoints(for: parsed.registry) where endpoint.capabilities.contains("pull") {
            if parsed.digest == nil && !endpoint.capabilities.contains("resolve") { continue }
            let session = Session(endpoint: endpoint, registry: parsed.registry, repository: parsed.repository, credentials: credentials)
            do {
                return try await pull(parsed, session: session)
            } catch {
                // Authentication and missing images are final; an unreachable mirror is not.
                if error.kind == .unauthenticated || error.kind == .permissionDenied || error.kind == .store { throw error }
                lastError = error
            }
        }
        throw lastError
    }

    private func pull(_ reference: ImageReference, session: Session) async throws(RegistryError) -> StoredImage {
        let tagOrDigest = reference.digest?.description ?? reference.tag ?? "latest"
        let (descriptor, bytes) = try await session.manifest(tagOrDigest)
        if let wanted = reference.digest, wanted != descriptor.digest {
            throw RegistryError(.store, context: reference.description, detail: "the registry served \(descriptor.digest) for it")
        }
        try ingest(bytes, descriptor.digest)
        var manifestDescriptor = descriptor
        if MediaType.indexes.contains(descriptor.mediaType) {
            let index = try decode(Index.self, bytes, descriptor.digest)
            guard let chosen = index.manifest(for: store.platform) else {
                throw RegistryError(.notFound, context: reference.description,
                                    detail: "no manifest for \(store.platform.os)/\(store.platform.architecture)")
            }
            let (platformDescriptor, platformBytes) = try await session.manifest(chosen.digest.description)
            guard platformDescriptor.digest == chosen.digest else {
                throw RegistryError(.store, context: chosen.digest.description, detail: "the registry served other content")
            }
            try ingest(platformBytes, chosen.digest)
            manifestDescriptor = chosen
            manifestDescriptor.mediaType = platformDescriptor.mediaType
        } else if [MediaType.dockerSchema1, MediaType.dockerSchema1Signed].contains(descriptor.mediaType) {
            throw RegistryError(.protocolError, context: reference.description,
                                detail: "Docker schema 1 images are not supported (deprecated since 2017); push the image again with a current client")
        }
        let manifest = try decode(Manifest.self, try readStored(manifestDescriptor.digest), manifestDescriptor.digest)
        var blobs = [manifest.config] + manifest.layers
        blobs.removeAll { store.content.contains($0.digest) }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var pending = blobs[...]
                var running = 0
                while !pending.isEmpty || running > 0 {
                    while running < concurrency, let blob = pending.popFirst() {
                        running += 1
                        group.addTask { try await session.blob(blob, into: store.content) }
                    }
                    try await group.next()
                    running -= 1
                }
            }
        } catch let error as RegistryError {
            throw error
        } catch {
            throw RegistryError(.transport, context: reference.description, detail: "\(error)")
        }
        do {
            let name = reference.tagged ?? reference.digested(descriptor.digest)
            return try store.tag(name, target: descriptor)
        } catch {
            throw RegistryError(.store, context: reference.description, detail: "\(error)")
        }
    }

    private func ingest(_ bytes: [UInt8], _ digest: Digest) throws(RegistryError) {
        do {
            try store.content.ingest(bytes: bytes, expected: digest)
        } catch {
            throw RegistryError(.store, context: digest.description, detail: "\(error)")
        }
    }

    private func readStored(_ digest: Digest) throws(RegistryError) -> [UInt8] {
        do { return try store.content.read(digest) } catch { throw RegistryError(.store, context: digest.description, detail: "\(error)") }
    }

    private func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], _ digest: Digest) throws(RegistryError) -> T {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch {
            throw RegistryError(.protocolError, context: digest.description, detail: "not a valid \(T.self)")
        }
    }
}

/// The pulls in progress, so a second request for the same image (same credentials: never
/// share another caller's access) waits for the first instead of downloading again. Each
/// pull's task is owned here until it ends.
final class InFlightPulls: Sendable {
    struct Key: Hashable, Sendable {
        var reference: String
        var credentials: String

        init(reference: String, credentials: RegistryCredentials) {
            self.reference = reference
            self.credentials = [credentials.username, credentials.password, credentials.identityToken, credentials.registryToken]
                .joined(separator: "\u{0}")
        }
    }

    private let tasks = Mutex<[Key: Task<StoredImage, any Error>]>([:])

    func run(_ key: Key, _ body: @escaping @Sendable () async throws(RegistryError) -> StoredImage) async throws(RegistryError) -> StoredImage {
        let task = tasks.withLock { tasks in
            if let running = tasks[key] { return running }
            let task = Task { () async throws -> StoredImage in
                defer { _ = self.tasks.withLock { $0.removeValue(forKey: key) } }
                return try await body()
            }
            tasks[key] = task
            return task
        }
        do {
            return try await task.value
        } catch let error as RegistryError {
            throw error
        } catch {
            throw RegistryError(.transport, context: key.reference, detail: "\(error)")
        }
    }
}

/// Requests to one endpoint for one repository, with its auth state.
final class Session: Sendable {
    let endpoint: RegistryHosts.Endpoint
    let registry: String
    let repository: String
    let credentials: RegistryCredentials
    private let authorization = Mutex<String?>(nil)

    init(endpoint: RegistryHosts.Endpoint, registry: String, repository: String, credentials: RegistryCredentials) {
        self.endpoint = endpoint
        self.registry = registry
        self.repository = repository
        self.credentials = credentials
        if !credentials.registryToken.isEmpty { authorization.withLock { $0 = "Bearer \(credentials.registryToken)" } }
    }

    private var base: String {
        // containerd's hosts.toml may give a path already ending in /v2.
        let url = endpoint.url.hasSuffix("/") ? String(endpoint.url.dropLast()) : endpoint.url
        return url.hasSuffix("/v2") ? url : url + "/v2"
    }

    /// GET with auth and retries; streams the body to `sink` when given.
    func get(_ path: String, accept: String? = nil, sink: HTTP.Sink? = nil, method: String = "GET") async throws(RegistryError) -> HTTPResponse {
        var attempt = 0
        var authenticated = false
        while true {
            var headers: [String] = []
            if let accept { headers.append("Accept: \(accept)") }
            if let value = authorization.withLock({ $0 }) { headers.append("Authorization: \(value)") }
            let response = try await HTTP.perform(method: method, url: base + path, headers: headers, skipVerify: endpoint.skipVerify,
                                                  sink: sink ?? HTTP.Sink(collect: true))
            switch response.status {
            case 200..<300:
                return response
            case 401:
                guard !authenticated, let challenge = response.headers["www-authenticate"] else {
                    throw RegistryError(.unauthenticated, context: registry,
                                        detail: credentials.isEmpty ? "the registry wants credentials" : "the credentials were refused")
                }
                try await authenticate(challenge)
                authenticated = true
            case 403:
                throw RegistryError(.permissionDenied, context: registry, detail: "\(repository)")
            case 404:
                throw RegistryError(.notFound, context: "\(registry)/\(repository)\(path.hasPrefix("/") ? "" : "/")\(path)")
            case 429, 500..<600:
                attempt += 1
                if attempt > 3 {
                    throw RegistryError(.transport, context: registry, detail: "HTTP \(response.status) after \(attempt) tries")
                }
                let delay = min(8.0, Double(response.headers["retry-after"].flatMap(Int.init) ?? 0)) + 0.2 * Double(1 << attempt)
                try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            default:
                throw RegistryError(.protocolError, context: registry, detail: "HTTP \(response.status) for \(path)")
            }
        }
    }

    /// Answers a WWW-Authenticate challenge: Basic with the credentials, or Bearer from the
    /// token endpoint it names.
    private func authenticate(_ challenge: String) async throws(RegistryError) {
        let scheme = challenge.split(separator: " ", maxSplits: 1).first.map { $0.lowercased() } ?? ""
        let parameters = Self.parameters(challenge)
        if scheme == "basic" {
            guard !credentials.username.isEmpty else {
                throw RegistryError(.unauthenticated, context: registry, detail: "the registry wants a username and password")
            }
            let encoded = Data("\(credentials.username):\(credentials.password)".utf8).base64EncodedString()
            authorization.withLock { $0 = "Basic \(encoded)" }
            return
        }
        guard scheme == "bearer", let realm = parameters["realm"] else {
            throw RegistryError(.protocolError, context: registry, detail: "unsupported challenge \(challenge)")
        }
        var query = [URLQueryItem(name: "scope", value: parameters["scope"] ?? "repository:\(repository):pull")]
        if let service = parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
        guard var components = URLComponents(string: realm) else {
            throw RegistryError(.protocolError, context: registry, detail: "bad realm \(realm)")
        }
        let existing = components.queryItems ?? []
        components.queryItems = existing + query
        guard let url = components.string else { throw RegistryError(.protocolError, context: registry, detail: "bad realm \(realm)") }
        var headers: [String] = []
        if !credentials.username.isEmpty {
            headers.append("Authorization: Basic \(Data("\(credentials.username):\(credentials.password)".utf8).base64EncodedString())")
        } else if !credentials.identityToken.isEmpty {
            headers.append("Authorization: Bearer \(credentials.identityToken)")
        }
        let response = try await HTTP.perform(method: "GET", url: url, headers: headers, skipVerify: endpoint.skipVerify, sink: HTTP.Sink(collect: true))
        guard response.status == 200 else {
            throw RegistryError(response.status == 403 ? .permissionDenied : .unauthenticated, context: registry,
                                detail: "the token service answered HTTP \(response.status)")
        }
        struct Token: Decodable { var token: String?; var access_token: String? }
        guard let token = (try? JSONDecoder().decode(Token.self, from: Data(response.body))).flatMap({ $0.token ?? $0.access_token }) else {
            throw RegistryError(.protocolError, context: registry, detail: "the token service sent no token")
        }
        authorization.withLock { $0 = "Bearer \(token)" }
    }

    /// `Bearer realm="…",service="…",scope="…"` → parameters.
    static func parameters(_ challenge: String) -> [String: String] {
        guard let space = challenge.firstIndex(of: " ") else { return [:] }
        var result: [String: String] = [:]
        var rest = Substring(challenge[challenge.index(after: space)...])
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: " ,")).lowercased()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                let close = rest.firstIndex(of: "\"") ?? rest.endIndex
                value = String(rest[..<close])
                rest = close < rest.endIndex ? rest[rest.index(after: close)...] : ""
            } else {
                let comma = rest.firstIndex(of: ",") ?? rest.endIndex
                value = String(rest[..<comma])
                rest = rest[comma...]
            }
            result[key] = value
        }
        return result
    }

    /// The manifest (or index) a tag or digest names, with its descriptor.
    func manifest(_ reference: String) async throws(RegistryError) -> (Descriptor, [UInt8]) {
        let response = try await get("/\(repository)/manifests/\(reference)", accept: Puller.manifestAccept)
        let digest = Digest.of(response.body)
        if let claimed = response.headers["docker-content-digest"].flatMap(Digest.init), claimed != digest {
            throw RegistryError(.store, context: "\(registry)/\(repository):\(reference)", detail: "manifest content has digest \(digest), the registry says \(claimed)")
        }
        var mediaType = response.headers["content-type"]?.split(separator: ";").first.map(String.init) ?? ""
        if !MediaType.manifests.contains(mediaType) && !MediaType.indexes.contains(mediaType),
           let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] {
            mediaType = object["mediaType"] as? String ?? (object["manifests"] != nil ? MediaType.ociIndex : MediaType.ociManifest)
        }
        return (Descriptor(mediaType: mediaType, digest: digest, size: Int64(response.body.count)), response.body)
    }

    /// Downloads a blob straight into the content store, verified there.
    func blob(_ descriptor: Descriptor, into content: ContentStore) async throws(RegistryError) {
        let writer: BlobWriter
        do {
            writer = try BlobWriter(store: content, expected: descriptor.digest, size: descriptor.size)
        } catch {
            throw RegistryError(.store, context: descriptor.digest.description, detail: "\(error)")
        }
        let failure = Mutex<ImageStoreError?>(nil)
        let sink = HTTP.Sink(collect: false) { chunk in
            do throws(ImageStoreError) {
                try writer.write(chunk)
                return true
            } catch {
                failure.withLock { $0 = error }
                return false
            }
        }
        let result: Result<HTTPResponse, RegistryError>
        do {
            result = .success(try await get("/\(repository)/blobs/\(descriptor.digest)", sink: sink))
        } catch {
            result = .failure(error)
        }
        if case .failure(let error) = result {
            if let stored = failure.withLock({ $0 }) { throw RegistryError(.store, context: descriptor.digest.description, detail: "\(stored)") }
            throw error
        }
        do {
            try writer.commit()
        } catch {
            throw RegistryError(.store, context: "blob \(descriptor.digest) from \(registry)", detail: "\(error)")
        }
    }
}
