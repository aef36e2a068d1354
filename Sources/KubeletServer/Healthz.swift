/// apiserver's `healthz` handlers: `/healthz` runs every check (`?verbose` lists them,
/// `?exclude=<name>` skips one), `/healthz/<name>` runs one.
struct HealthzRoutes: Sendable {
    let checks: [KubeletHealthCheck]

    /// `ping` (and `log`: the kubelet API's set), both always healthy here, then `extra`.
    init(includeLog: Bool, extra: [KubeletHealthCheck]) {
        checks = [KubeletHealthCheck(name: "ping") {}] + (includeLog ? [KubeletHealthCheck(name: "log") {}] : []) + extra
    }

    /// Serves `/healthz` and `/healthz/<check>`; nil for any other path.
    func handle(_ request: HTTPRequest, segments: [String], on connection: HTTPConnection) -> ResponseDisposition? {
        guard segments.first == "healthz", segments.count <= 2 else { return nil }
        if segments.count == 2 {
            guard let check = checks.first(where: { $0.name == segments[1] }) else { return nil }
            guard let failure = connection.call({ await Self.run(check) }) else { return .close }
            if let failure {
                connection.respondError(to: request, status: 500, "internal server error: \(failure)")
            } else {
                connection.respond(to: request, status: 200, headers: Self.textHeaders, body: Array("ok".utf8))
            }
            return .keepAlive
        }
        var excluded = Set(request.queryValues("exclude").flatMap { $0.split(separator: ",").map(String.init) })
        let checks = self.checks
        guard let results = connection.call({ () async -> [(String, String?)] in
            var results: [(String, String?)] = []
            for check in checks { results.append((check.name, await Self.run(check))) }
            return results
        }) else { return .close }
        var report = ""
        var failed = false
        for (name, failure) in results {
            if excluded.remove(name) != nil {
                report += "[+]\(name) excluded: ok\n"
            } else if failure != nil {
                report += "[-]\(name) failed: reason withheld\n"
                failed = true
            } else {
                report += "[+]\(name) ok\n"
            }
        }
        if !excluded.isEmpty {
            report += "warn: some health checks cannot be excluded: no matches for \(excluded.sorted().map { "\"\($0)\"" }.joined(separator: ","))\n"
        }
        if failed {
            connection.respondError(to: request, status: 500, report + "healthz check failed")
        } else if request.hasQuery("verbose") {
            connection.respond(to: request, status: 200, headers: Self.textHeaders, body: Array((report + "healthz check passed\n").utf8))
        } else {
            connection.respond(to: request, status: 200, headers: Self.textHeaders, body: Array("ok".utf8))
        }
        return .keepAlive
    }

    static let textHeaders = [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")]

    /// nil when healthy, else the reason.
    private static func run(_ check: KubeletHealthCheck) async -> String? {
        do {
            try await check.check()
            return nil
        } catch {
            return "\(error)"
        }
    }
}

/// The kubelet's `--healthz-port` server (plain HTTP, no authentication): `/healthz` and
/// `/healthz/ping`, healthy while the process serves.
struct HealthzOnlyHandler: RequestHandler {
    let routes: HealthzRoutes

    func handle(_ request: HTTPRequest, on connection: HTTPConnection) -> ResponseDisposition {
        if let disposition = routes.handle(request, segments: KubeletAPIHandler.segments(request.path), on: connection) {
            return disposition
        }
        connection.respondError(to: request, status: 404, "404 page not found")
        return .keepAlive
    }
}
