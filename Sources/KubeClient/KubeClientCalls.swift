/// The verbs: get, list, create, update (PUT), patch, delete.
extension KubeClient {
    /// GET an object (or any JSON endpoint, e.g. `/version`).
    public func get(_ path: String) async throws(KubeAPIError) -> JSONValue {
        try await call("GET", path)
    }

    /// GET an object decoded as `T`.
    public func get<T: Decodable>(_ path: String, as type: T.Type) async throws(KubeAPIError) -> T {
        try await get(path).decode(as: T.self)
    }

    /// GET a collection. `resourceVersion` "0" serves from the watch cache; nil reads the
    /// latest from etcd; with `resourceVersionMatch` "Exact" the list is read at that revision
    /// (410 Gone once etcd has compacted it). Selectors are the API's (`spec.nodeName=n1`, `app=web,tier!=db`).
    /// The list's `metadata.resourceVersion` is where a following ``watch(_:resourceVersion:labelSelector:fieldSelector:allowWatchBookmarks:timeoutSeconds:)`` starts.
    public func list(_ path: String, resourceVersion: String? = nil, resourceVersionMatch: String? = nil, labelSelector: String? = nil,
                     fieldSelector: String? = nil, limit: Int? = nil, continueToken: String? = nil) async throws(KubeAPIError) -> JSONValue {
        var query = Query()
        query.add("resourceVersion", resourceVersion)
        query.add("resourceVersionMatch", resourceVersionMatch)
        query.add("labelSelector", labelSelector)
        query.add("fieldSelector", fieldSelector)
        query.add("limit", limit.map(String.init))
        query.add("continue", continueToken)
        return try await call("GET", path, query: query)
    }

    /// POST a new object to a collection path; returns it as stored.
    public func create(_ path: String, _ object: some Encodable) async throws(KubeAPIError) -> JSONValue {
        try await call("POST", path, body: try Self.encode(object, method: "POST", path: path), contentType: "application/json")
    }

    /// POST a new object, decoding the stored object as `T`.
    public func create<T: Decodable>(_ path: String, _ object: some Encodable, as type: T.Type) async throws(KubeAPIError) -> T {
        try await create(path, object).decode(as: T.self)
    }

    /// PUT an object (its `metadata.resourceVersion`, when set, must be current, or the server
    /// answers 409 Conflict: see ``KubeAPIError/isConflict`` and ``retryOnConflict(backoff:_:)``).
    public func update(_ path: String, _ object: some Encodable) async throws(KubeAPIError) -> JSONValue {
        try await call("PUT", path, body: try Self.encode(object, method: "PUT", path: path), contentType: "application/json")
    }

    /// PUT an object, decoding the stored object as `T`.
    public func update<T: Decodable>(_ path: String, _ object: some Encodable, as type: T.Type) async throws(KubeAPIError) -> T {
        try await update(path, object).decode(as: T.self)
    }

    /// PATCH an object (or its `/status`): `body` is the patch document for `type` (a
    /// ``JSONValue`` or any `Encodable`; a JSON patch is an array of operations).
    public func patch(_ path: String, _ body: some Encodable, type: PatchType) async throws(KubeAPIError) -> JSONValue {
        try await call("PATCH", path, body: try Self.encode(body, method: "PATCH", path: path), contentType: type.rawValue)
    }

    /// PATCH an object, decoding the result as `T`.
    public func patch<T: Decodable>(_ path: String, _ body: some Encodable, type: PatchType, as resultType: T.Type) async throws(KubeAPIError) -> T {
        try await patch(path, body, type: type).decode(as: T.self)
    }

    /// DELETE an object. Returns what the server answers: the object (still terminating, or as
    /// it was) or a Success Status.
    @discardableResult
    public func delete(_ path: String, options: DeleteOptions? = nil) async throws(KubeAPIError) -> JSONValue {
        let body = try options.map { (options) throws(KubeAPIError) in try Self.encode(options, method: "DELETE", path: path) }
        return try await call("DELETE", path, body: body, contentType: body == nil ? nil : "application/json")
    }
}
