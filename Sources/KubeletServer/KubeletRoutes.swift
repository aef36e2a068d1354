import Logging

/// The kubelet API (`pkg/kubelet/server/server.go`): every request authenticated and
/// authorized first (the kubelet's auth filter), then routed to the backend.
struct KubeletAPIHandler: RequestHandler {
    let nodeName: String
    let authenticator: RequestAuthenticator
    let authorizer: any Authorizer
    let backend: any KubeletAPIBackend
    let healthz: HealthzRoutes

    func handle(_ request: HTTPRequest, on connection: HTTPConnection) -> ResponseDisposition {
        // Authentication.
        let authenticator = self.authenticator
        let certificate = connection.transport.peerCertificate
        let authorization = request.value("authorization")
        guard let authenticated = connection.call({
            await authenticator.authenticate(certificate: certificate, authorization: authorization)
        }) else { return .close }
        let user: KubeletUser
        switch authenticated {
        case .authenticated(let who):
            user = who
        case .unauthorized(let reason):
            connection.logger.debug("kubelet server: unauthorized", metadata: ["reason": "\(reason)", "path": "\(request.path)"])
            connection.respondRestfulError(to: request, status: 401, "Unauthorized")
            return .keepAlive
        }

        // Authorization.
        let attributes = KubeletRequestAttributes.forRequest(
            user: user, method: request.method, path: request.path, isWebSocketUpgrade: request.isWebSocket, nodeName: nodeName)
        let authorizer = self.authorizer
        guard let decision = connection.call({ () async -> Result<AuthorizationDecision, any Error> in
            do { return .success(try await authorizer.authorize(attributes)) } catch { return .failure(error) }
        }) else { return .close }
        let summary = "(user=\(user.name), verb=\(attributes.verb), resource=\(attributes.resource), subresource=\(attributes.subresource))"
        switch decision {
        case .success(.allow):
            break
        case .success(let denied):
            connection.logger.debug("kubelet server: forbidden \(summary)", metadata: ["decision": "\(denied)"])
            connection.respondRestfulError(to: request, status: 403, "Forbidden \(summary)")
            return .keepAlive
        case .failure(let error):
            connection.logger.error("kubelet server: authorization error \(summary)", metadata: ["error": "\(error)"])
            connection.respondRestfulError(to: request, status: 500, "Authorization error \(summary)")
            return .keepAlive
        }

        return route(request, on: connection)
    }

    /// The path's segments without the leading slash and one trailing slash.
    static func segments(_ path: String) -> [String] {
        var trimmed = Substring(path)
        if trimmed.hasPrefix("/") { trimmed = trimmed.dropFirst() }
        if trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        return trimmed.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    }

    private func route(_ request: HTTPRequest, on connection: HTTPConnection) -> ResponseDisposition {
        let segments = Self.segments(request.path)
        if let disposition = healthz.handle(request, segments: segments, on: connection) { return disposition }
        let backend = self.backend
        switch (segments.first ?? "", segments.count) {
        case ("pods", 1):
            return serveBytes(request, methods: ["GET"], contentType: "application/json", on: connection) { try await backend.pods() }
        case ("runningpods", 1):
            return serveBytes(request, methods: ["GET"], contentType: "application/json", on: connection) { try await backend.runningPods() }
        case ("stats", 2) where segments[1] == "summary":
            let only = request.queryValue("only_cpu_and_memory") == "true"
            return serveBytes(request, methods: ["GET"], contentType: "application/json", on: connection) {
                try await backend.statsSummary(onlyCPUAndMemory: only)
            }
        case ("metrics", 1...2):
            guard let endpoint = KubeletMetricsEndpoint(rawValue: "/" + segments.joined(separator: "/")) else { break }
            return serveBytes(request, methods: ["GET"], contentType: "text/plain; version=0.0.4; charset=utf-8", on: connection) {
                try await backend.metrics(endpoint)
            }
        case ("spec", 1):
            return serveBytes(request, methods: ["GET"], contentType: "application/json", on: connection) { try await backend.spec() }
        case ("containerLogs", 4):
            return serveContainerLogs(request, segments: segments, on: connection)
        case ("exec", 4...5), ("attach", 4...5):
            return serveRemoteCommand(request, segments: segments, on: connection)
        case ("portForward", 3...4):
            return servePortForward(request, segments: segments, on: connection)
        case ("run", 4...5):
            return serveRun(request, segments: segments, on: connection)
        default:
            break
        }
        connection.respondRestfulError(to: request, status: 404, "404: Page Not Found")
        return .keepAlive
    }

    // MARK: Plain responses

    private func methodAllowed(_ request: HTTPRequest, _ methods: [String], on connection: HTTPConnection) -> Bool {
        if methods.contains(request.method) { return true }
        connection.respondRestfulError(to: request, status: 405, "405: Method Not Allowed")
        return false
    }

    /// A backend call answered 200 with its bytes, or with its error.
    private func serveBytes(
        _ request: HTTPRequest, methods: [String], contentType: String, on connection: HTTPConnection,
        _ body: @escaping @Sendable () async throws -> [UInt8]
    ) -> ResponseDisposition {
        guard methodAllowed(request, methods, on: connection) else { return .keepAlive }
        guard let result = connection.call({ () async -> Result<[UInt8], any Error> in
            do { return .success(try await body()) } catch { return .failure(error) }
        }) else { return .close }
        switch result {
        case .success(let bytes):
            connection.respond(to: request, status: 200, headers: [("Content-Type", contentType)], body: bytes)
        case .failure(let error):
            respondBackendError(error, to: request, on: connection)
        }
        return .keepAlive
    }

    /// A backend error as the kubelet writes it: ``KubeletAPIError``'s status and message,
    /// else `otherStatus` with the error's description.
    private func respondBackendError(_ error: any Error, to request: HTTPRequest, otherStatus: Int = 500, on connection: HTTPConnection) {
        let (status, message, headers) = Self.describe(error, otherStatus: otherStatus)
        connection.respond(
            to: request, status: status, headers: headers + [("Content-Type", "text/plain; charset=utf-8")],
            body: Array(message.utf8))
    }

    static func describe(_ error: any Error, otherStatus: Int) -> (Int, String, [(String, String)]) {
        if let error = error as? KubeletAPIError {
            return (error.status, error.message, error.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        }
        return (otherStatus, "\(error)", [])
    }

    // MARK: Container logs

    private enum LogEvent: Sendable {
        case opened
        case chunk([UInt8])
        case finished
        case failed(any Error)
    }

    private func serveContainerLogs(_ request: HTTPRequest, segments: [String], on connection: HTTPConnection) -> ResponseDisposition {
        guard methodAllowed(request, ["GET"], on: connection) else { return .keepAlive }
        let logRequest: ContainerLogsRequest
        switch Self.containerLogsRequest(request, segments: segments) {
        case .success(let parsed):
            logRequest = parsed
        case .failure(let error):
            connection.respondRestfulError(to: request, status: error.status, error.message)
            return .keepAlive
        }

        let backend = self.backend
        let handoff = Handoff<LogEvent>(capacity: 16, wake: connection.wake)
        let job = Job {
            do {
                let stream = try await backend.containerLogs(logRequest)
                guard await handoff.send(.opened) else { return handoff.finish() }
                for try await chunk in stream where !chunk.isEmpty {
                    // A false send: the client left; returning drops the stream (and this
                    // task is being cancelled), which ends it.
                    guard await handoff.send(.chunk(chunk)) else { return handoff.finish() }
                }
                _ = await handoff.send(.finished)
            } catch {
                _ = await handoff.send(.failed(error))
            }
            handoff.finish()
        }
        guard connection.jobs.submit(job) else { return .close }

        var opened = false
        while true {
            let (events, finished) = handoff.take()
            var output: [UInt8] = []
            for event in events {
                switch event {
                case .opened:
                    opened = true
                    var head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\n"
                    if !request.keepAlive { head += "Connection: close\r\n" }
                    output += Array((head + "\r\n").utf8)
                case .chunk(let bytes):
                    output += Array((String(bytes.count, radix: 16) + "\r\n").utf8) + bytes + [13, 10]
                case .finished:
                    output += Array("0\r\n\r\n".utf8)
                    return connection.write(output) ? .keepAlive : .close
                case .failed(let error):
                    if opened {
                        // Too late for a status: the response ends without its last chunk.
                        connection.logger.debug("kubelet server: log stream failed", metadata: ["error": "\(error)"])
                        connection.write(output)
                        return .close
                    }
                    // The kubelet answers log failures 400 (GetKubeletContainerLogs' error).
                    respondBackendError(error, to: request, otherStatus: 400, on: connection)
                    return .keepAlive
                }
            }
            if !output.isEmpty, !connection.write(output) {
                job.cancel()
                handoff.abandon()
                return .close
            }
            if finished { return .close }
            switch connection.waitForWake(watchClient: true) {
            case .wake, .timedOut:
                continue
            case .stopped, .clientGone:
                job.cancel()
                handoff.abandon()
                return .close
            }
        }
    }

    /// The kubelet's decoding of the v1 `PodLogOptions` query and its validation.
    static func containerLogsRequest(_ request: HTTPRequest, segments: [String]) -> Result<ContainerLogsRequest, KubeletAPIError> {
        if segments[2].isEmpty { return .failure(.badRequest(#"{"message": "Missing podID."}"#)) }
        if segments[3].isEmpty { return .failure(.badRequest(#"{"message": "Missing container name."}"#)) }
        if segments[1].isEmpty { return .failure(.badRequest(#"{"message": "Missing podNamespace."}"#)) }
        var query = request.query
        // Backwards compatibility: `tail` for tailLines, `tail=all` for every line.
        let tail = request.queryValue("tail")
        if !tail.isEmpty {
            query.removeAll { $0.name == "tailLines" }
            if tail != "all" { query.append(("tailLines", tail)) }
        }
        func first(_ name: String) -> String? { query.first { $0.name == name }?.value }
        func flag(_ name: String) -> Bool {
            guard let value = first(name) else { return false }
            return !(value == "0" || value.lowercased() == "f" || value.lowercased() == "false")
        }
        let undecodable = KubeletAPIError.badRequest(#"{"message": "Unable to decode query."}"#)
        func integer(_ name: String) -> Result<Int64?, KubeletAPIError> {
            guard let value = first(name), !value.isEmpty else { return .success(nil) }
            guard let number = Int64(value) else { return .failure(undecodable) }
            return .success(number)
        }
        var parsed = ContainerLogsRequest(namespace: segments[1], pod: segments[2], container: segments[3])
        parsed.follow = flag("follow")
        parsed.previous = flag("previous")
        parsed.timestamps = flag("timestamps")
        do {
            parsed.tailLines = try integer("tailLines").get()
            parsed.limitBytes = try integer("limitBytes").get()
            parsed.sinceSeconds = try integer("sinceSeconds").get()
        } catch {
            return .failure(undecodable)
        }
        if let sinceTime = first("sinceTime"), !sinceTime.isEmpty, sinceTime != "null" {
            guard let nanoseconds = RFC3339.nanoseconds(sinceTime) else { return .failure(undecodable) }
            parsed.sinceTimeNanoseconds = nanoseconds
        }
        if let stream = first("stream"), !stream.isEmpty {
            guard let kind = ContainerLogStream(rawValue: stream) else {
                return .failure(.badRequest("invalid stream type \"\(stream)\""))
            }
            parsed.stream = kind
        }
        let invalid = KubeletAPIError(status: 422, message: #"{"message": "Invalid request."}"#)
        if let lines = parsed.tailLines, lines < 0 { return .failure(invalid) }
        if let bytes = parsed.limitBytes, bytes < 1 { return .failure(invalid) }
        if parsed.sinceSeconds != nil && parsed.sinceTimeNanoseconds != nil { return .failure(invalid) }
        if let seconds = parsed.sinceSeconds, seconds < 1 { return .failure(invalid) }
        return .success(parsed)
    }

    // MARK: Streaming (exec, attach, port-forward)

    private func serveRemoteCommand(_ request: HTTPRequest, segments: [String], on connection: HTTPConnection) -> ResponseDisposition {
        guard methodAllowed(request, ["GET", "POST"], on: connection) else { return .keepAlive }
        let uid = segments.count == 5 ? segments[3] : nil
        // remotecommand's NewOptions: the API server's `input`/`output`/`error`/`tty`
        // (api.ExecStdinParam, …).
        let tty = request.queryValue("tty") == "1"
        let stdin = request.queryValue("input") == "1"
        let stdout = request.queryValue("output") == "1"
        let stderr = request.queryValue("error") == "1" && !tty
        guard stdin || stdout || stderr else {
            connection.respondRestfulError(to: request, status: 400, "you must specify at least 1 of stdin, stdout, stderr")
            return .keepAlive
        }
        let isExec = segments[0] == "exec"
        let streamRequest = ContainerStreamRequest(
            namespace: segments[1], pod: segments[2], uid: uid, container: segments[segments.count - 1],
            command: isExec ? request.queryValues("command") : [], stdin: stdin, stdout: stdout, stderr: stderr, tty: tty)
        let backend = self.backend
        return proxyStream(request, on: connection) {
            isExec ? try await backend.exec(streamRequest) : try await backend.attach(streamRequest)
        }
    }

    private func servePortForward(_ request: HTTPRequest, segments: [String], on connection: HTTPConnection) -> ResponseDisposition {
        guard methodAllowed(request, ["GET", "POST"], on: connection) else { return .keepAlive }
        // portforward's NewV4Options: WebSocket clients name their ports.
        var ports: [Int32] = []
        if request.isWebSocket {
            let values = request.queryValues("port")
            var failure: String?
            if values.isEmpty { failure = "query parameter \"port\" is required" }
            for value in values where failure == nil {
                if value.isEmpty {
                    failure = "query parameter \"port\" cannot be empty"
                    break
                }
                for piece in value.split(separator: ",", omittingEmptySubsequences: false) {
                    guard let port = UInt16(piece) else {
                        failure = "unable to parse \"\(value)\" as a port: strconv.ParseUint: parsing \"\(piece)\": invalid syntax"
                        break
                    }
                    guard port >= 1 else {
                        failure = "port \"\(value)\" must be > 0"
                        break
                    }
                    ports.append(Int32(port))
                }
            }
            if let failure {
                connection.respondRestfulError(to: request, status: 400, failure)
                return .keepAlive
            }
        }
        let forward = PortForwardRequest(
            namespace: segments[1], pod: segments[2], uid: segments.count == 4 ? segments[3] : nil, ports: ports)
        let backend = self.backend
        return proxyStream(request, on: connection) { try await backend.portForward(forward) }
    }

    /// Asks the backend for the streaming URL, then proxies the client's upgrade to it.
    private func proxyStream(
        _ request: HTTPRequest, on connection: HTTPConnection, _ locate: @escaping @Sendable () async throws -> String
    ) -> ResponseDisposition {
        guard let located = connection.call({ () async -> Result<String, any Error> in
            do { return .success(try await locate()) } catch { return .failure(error) }
        }) else { return .close }
        switch located {
        case .failure(let error):
            respondBackendError(error, to: request, on: connection)
            return .keepAlive
        case .success(let url):
            guard request.isUpgrade else {
                // UpgradeAwareHandler with upgradeRequired, through the kubelet's responder.
                connection.respondError(to: request, status: 500, "Upgrade request required")
                return .keepAlive
            }
            connection.logger.debug("kubelet server: proxying upgrade", metadata: ["path": "\(request.path)"])
            return connection.proxyUpgrade(request, to: url)
        }
    }

    // MARK: Run

    private func serveRun(_ request: HTTPRequest, segments: [String], on connection: HTTPConnection) -> ResponseDisposition {
        guard methodAllowed(request, ["POST"], on: connection) else { return .keepAlive }
        // For legacy reasons /run takes `cmd`, split at spaces.
        let command = request.queryValue("cmd").split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let run = RunInContainerRequest(
            namespace: segments[1], pod: segments[2], uid: segments.count == 5 ? segments[3] : nil,
            container: segments[segments.count - 1], command: command)
        let backend = self.backend
        return serveBytes(request, methods: ["POST"], contentType: "application/json", on: connection) { try await backend.run(run) }
    }
}

/// RFC 3339 timestamps as Go's `time.Parse(time.RFC3339, …)` reads them.
enum RFC3339 {
    /// Nanoseconds since the Unix epoch; nil when malformed.
    static func nanoseconds(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        func number(_ start: Int, _ count: Int) -> Int64? {
            guard start + count <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[start..<start + count] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            return value
        }
        func byte(_ at: Int, _ expected: Character) -> Bool { at < bytes.count && bytes[at] == expected.asciiValue! }
        guard let year = number(0, 4), byte(4, "-"), let month = number(5, 2), byte(7, "-"), let day = number(8, 2),
              byte(10, "T") || byte(10, "t"), let hour = number(11, 2), byte(13, ":"), let minute = number(14, 2), byte(16, ":"),
              let second = number(17, 2)
        else { return nil }
        var index = 19
        var fraction: Int64 = 0
        if byte(index, ".") {
            index += 1
            var digits = 0
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                if digits < 9 { fraction = fraction * 10 + Int64(bytes[index] - 48) }
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in min(digits, 9)..<9 { fraction *= 10 }
        }
        var offset: Int64 = 0
        if byte(index, "Z") || byte(index, "z") {
            index += 1
        } else if byte(index, "+") || byte(index, "-") {
            guard let hours = number(index + 1, 2), byte(index + 3, ":"), let minutes = number(index + 4, 2), hours < 24, minutes < 60
            else { return nil }
            offset = (hours * 60 + minutes) * 60 * (byte(index, "-") ? -1 : 1)
            index += 6
        } else {
            return nil
        }
        guard index == bytes.count, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour < 24, minute < 60, second < 60
        else { return nil }
        let seconds = daysFromCivil(year: year, month: month, day: day) * 86400 + hour * 3600 + minute * 60 + second - offset
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        return product + fraction
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 (Howard Hinnant's algorithm).
    private static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146097 + dayOfEra - 719468
    }
}
