import Testing
@testable import KubeletServer

@Suite struct AttributeMappingTests {
    /// The kubelet's NodeAuthorizerAttributesGetter, path by path.
    @Test(arguments: [
        ("GET", "/stats/summary", false, "get", "stats"),
        ("GET", "/stats", false, "get", "stats"),
        ("GET", "/stats/", false, "get", "stats"),
        ("GET", "/statsfoo", false, "get", "proxy"),
        ("GET", "/metrics", false, "get", "metrics"),
        ("GET", "/metrics/cadvisor", false, "get", "metrics"),
        ("GET", "/metrics/resource", false, "get", "metrics"),
        ("GET", "/metrics/probes", false, "get", "metrics"),
        ("GET", "/metricsx", false, "get", "proxy"),
        ("GET", "/logs/", false, "get", "log"),
        ("GET", "/logs/syslog", false, "get", "log"),
        ("GET", "/spec/", false, "get", "spec"),
        ("GET", "/spec", false, "get", "spec"),
        ("GET", "/pods", false, "get", "proxy"),
        ("GET", "/runningpods/", false, "get", "proxy"),
        ("GET", "/healthz", false, "get", "proxy"),
        ("GET", "/containerLogs/ns/pod/c", false, "get", "proxy"),
        ("POST", "/exec/ns/pod/c", false, "create", "proxy"),
        ("GET", "/exec/ns/pod/c", false, "get", "proxy"),
        ("GET", "/exec/ns/pod/c", true, "create", "proxy"),
        ("GET", "/attach/ns/pod/uid/c", true, "create", "proxy"),
        ("GET", "/portForward/ns/pod", true, "create", "proxy"),
        ("GET", "/pods", true, "get", "proxy"),
        ("POST", "/run/ns/pod/c", false, "create", "proxy"),
        ("PUT", "/pods", false, "update", "proxy"),
        ("PATCH", "/pods", false, "patch", "proxy"),
        ("DELETE", "/pods", false, "delete", "proxy"),
        ("HEAD", "/pods", false, "", "proxy"),
        ("OPTIONS", "/stats/summary", false, "", "stats"),
    ])
    func mapping(method: String, path: String, webSocket: Bool, verb: String, subresource: String) {
        let attributes = KubeletRequestAttributes.forRequest(
            user: .anonymous, method: method, path: path, isWebSocketUpgrade: webSocket, nodeName: "node-1")
        #expect(attributes.verb == verb)
        #expect(attributes.subresource == subresource)
        #expect(attributes.resource == "nodes")
        #expect(attributes.apiGroup == "")
        #expect(attributes.apiVersion == "v1")
        #expect(attributes.name == "node-1")
        #expect(attributes.path == path)
    }

    @Test func bearerTokens() {
        #expect(RequestAuthenticator.bearerToken("Bearer abc") == "abc")
        #expect(RequestAuthenticator.bearerToken("bearer abc") == "abc")
        #expect(RequestAuthenticator.bearerToken("  Bearer abc  ") == "abc")
        #expect(RequestAuthenticator.bearerToken("Bearer  abc") == nil)
        #expect(RequestAuthenticator.bearerToken("Basic abc") == nil)
        #expect(RequestAuthenticator.bearerToken("Bearer") == nil)
        #expect(RequestAuthenticator.bearerToken(nil) == nil)
    }

    @Test func authenticationOrder() async {
        let alice = PeerCertificate(verified: true, verifyError: "", commonNames: ["x", "alice"], organizations: ["a", "b"])
        let stranger = PeerCertificate(verified: false, verifyError: "unable to get local issuer certificate", commonNames: ["m"], organizations: [])
        let reviewer = TestTokenReviewer(["good": KubeletUser(name: "sa", groups: ["system:serviceaccounts"])])
        let authenticator = RequestAuthenticator(x509Enabled: true, tokenReviewer: reviewer, anonymousEnabled: true)
        #expect(await authenticator.authenticate(certificate: alice, authorization: nil)
            == .authenticated(KubeletUser(name: "alice", groups: ["a", "b", "system:authenticated"])))
        #expect(await authenticator.authenticate(certificate: nil, authorization: "Bearer good")
            == .authenticated(KubeletUser(name: "sa", groups: ["system:serviceaccounts", "system:authenticated"])))
        // A bad certificate or token is an error: never anonymous.
        #expect(await authenticator.authenticate(certificate: stranger, authorization: nil) != .authenticated(.anonymous))
        #expect(await authenticator.authenticate(certificate: nil, authorization: "Bearer bad") != .authenticated(.anonymous))
        #expect(await authenticator.authenticate(certificate: nil, authorization: "Bearer explode") != .authenticated(.anonymous))
        // A bad certificate with a good token: the token wins (union).
        #expect(await authenticator.authenticate(certificate: stranger, authorization: "Bearer good") != .unauthorized(reason: ""))
        #expect(await authenticator.authenticate(certificate: nil, authorization: nil) == .authenticated(.anonymous))
        #expect(await authenticator.authenticate(certificate: nil, authorization: "Basic x") == .authenticated(.anonymous))
        let closed = RequestAuthenticator(x509Enabled: true, tokenReviewer: nil, anonymousEnabled: false)
        guard case .unauthorized = await closed.authenticate(certificate: nil, authorization: "Bearer good") else {
            Issue.record("a token without a reviewer authenticated")
            return
        }
    }
}

@Suite struct HTTPParserTests {
    private func parse(_ text: String, max: Int = 1 << 20) throws(HTTPError) -> (HTTPRequest, BodyFraming)? {
        var input = InputBuffer()
        input.append(Array(text.utf8))
        return try HTTPParser.parseHead(&input, maxHeaderBytes: max)
    }

    @Test func requestHead() throws {
        let (request, framing) = try #require(try parse(
            "GET /containerLogs/ns/p%20q/c?follow=true&tailLines=5&x=a+b&bad=%zz HTTP/1.1\r\nHost: h\r\nX-A:  one \r\nx-a: two\r\n\r\n"))
        #expect(request.method == "GET")
        #expect(request.path == "/containerLogs/ns/p q/c")
        #expect(request.queryValue("follow") == "true")
        #expect(request.queryValue("x") == "a b")
        #expect(!request.hasQuery("bad"))
        #expect(request.values("X-A") == ["one", "two"])
        #expect(request.keepAlive)
        #expect(framing == .none)
    }

    @Test func bareLineFeedsAndLeadingBlankLines() throws {
        let (request, _) = try #require(try parse("\r\nPOST /run/a/b/c HTTP/1.0\nContent-Length: 3\n\n"))
        #expect(request.method == "POST")
        #expect(!request.keepAlive)
    }

    @Test func incompleteHead() throws {
        #expect(try parse("GET / HTTP/1.1\r\nHost: h\r\n") == nil)
    }

    @Test(arguments: [
        ("GARBAGE\r\n\r\n", 400),
        ("GET /x HTTP/1.1\r\n\r\n", 400),  // no Host
        ("GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /x HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET /x FTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /x HTTP/1.1\r\nHost: a\r\nBad Name: v\r\n\r\n", 400),
        ("GET /x HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
        ("GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        ("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", 400),
    ])
    func refused(text: String, status: Int) {
        #expect(throws: HTTPError.self) { try parse(text) }
        do {
            _ = try parse(text)
        } catch {
            #expect(error.status == status, "\(text)")
        }
    }

    @Test func headerLimit() {
        let big = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "a", count: 2000)
        #expect(throws: HTTPError(431, "431 Request Header Fields Too Large")) { try parse(big, max: 1000) }
        #expect(throws: HTTPError(431, "431 Request Header Fields Too Large")) { try parse(big + "\r\n\r\n", max: 1000) }
    }

    @Test func chunkedBodies() throws {
        let body = Array("4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT".utf8)
        let (decoded, consumed) = try #require(try HTTPParser.decodeChunked(body[...], limit: 100))
        #expect(String(decoding: decoded, as: UTF8.self) == "Wikipedia")
        #expect(String(decoding: body[consumed...], as: UTF8.self) == "NEXT")
        #expect(try HTTPParser.decodeChunked(Array("4\r\nWi".utf8)[...], limit: 100) == nil)
        #expect(throws: HTTPError.self) { try HTTPParser.decodeChunked(Array("zz\r\n".utf8)[...], limit: 100) }
        #expect(throws: HTTPError(413, "413 Request Entity Too Large")) {
            try HTTPParser.decodeChunked(Array("ff\r\n".utf8)[...], limit: 100)
        }
    }

    @Test func streamingURLs() {
        #expect(StreamingURL("http://127.0.0.1:40913/exec/abc") == StreamingURL(host: "127.0.0.1", port: 40913, pathAndQuery: "/exec/abc"))
        #expect(StreamingURL("http://[::1]:8080/pf/x?port=80") == StreamingURL(host: "::1", port: 8080, pathAndQuery: "/pf/x?port=80"))
        #expect(StreamingURL("http://localhost/x")?.port == 80)
        #expect(StreamingURL("http://[::1]:8080/x")?.hostPort == "[::1]:8080")
        #expect(StreamingURL("https://127.0.0.1:1/x") == nil)
        #expect(StreamingURL("http://127.0.0.1:99999/x") == nil)
        #expect(StreamingURL("http:///x") == nil)
    }

    @Test func rfc3339() {
        #expect(RFC3339.nanoseconds("1970-01-01T00:00:00Z") == 0)
        #expect(RFC3339.nanoseconds("2024-02-29T12:30:45.5Z") == 1_709_209_845_500_000_000)
        #expect(RFC3339.nanoseconds("2024-02-29T14:30:45.5+02:00") == 1_709_209_845_500_000_000)
        #expect(RFC3339.nanoseconds("2023-02-29T00:00:00Z") == nil)
        #expect(RFC3339.nanoseconds("2024-01-01 00:00:00Z") == nil)
        #expect(RFC3339.nanoseconds("2024-01-01T00:00:00") == nil)
    }
}

extension StreamingURL {
    init(host: String, port: Int, pathAndQuery: String) {
        self.init("http://x:1/")!
        self.host = host
        self.port = port
        self.pathAndQuery = pathAndQuery
    }
}

@Suite struct LogOptionsTests {
    private func options(_ query: String) -> Result<ContainerLogsRequest, KubeletAPIError> {
        let request = HTTPRequest(
            method: "GET", target: "/", path: "/containerLogs/ns/p/c", rawQuery: query, query: HTTPParser.parseQuery(query),
            minorVersion: 1, headers: [])
        return KubeletAPIHandler.containerLogsRequest(request, segments: ["containerLogs", "ns", "p", "c"])
    }

    @Test func decoded() throws {
        let parsed = try options("follow=true&previous=1&timestamps=false&tailLines=10&limitBytes=500&sinceSeconds=30&stream=Stdout").get()
        #expect(parsed.follow && parsed.previous && !parsed.timestamps)
        #expect(parsed.tailLines == 10 && parsed.limitBytes == 500 && parsed.sinceSeconds == 30)
        #expect(parsed.stream == .stdout)
        #expect(try options("tail=7").get().tailLines == 7)
        #expect(try options("tailLines=3&tail=all").get().tailLines == nil)
        #expect(try options("follow=f").get().follow == false)
        #expect(try options("sinceTime=1970-01-01T00:00:01Z").get().sinceTimeNanoseconds == 1_000_000_000)
    }

    @Test func refused() {
        #expect(options("tailLines=x") == .failure(.badRequest(#"{"message": "Unable to decode query."}"#)))
        #expect(options("sinceTime=yesterday") == .failure(.badRequest(#"{"message": "Unable to decode query."}"#)))
        let invalid = KubeletAPIError(status: 422, message: #"{"message": "Invalid request."}"#)
        #expect(options("tailLines=-1") == .failure(invalid))
        #expect(options("limitBytes=0") == .failure(invalid))
        #expect(options("sinceSeconds=0") == .failure(invalid))
        #expect(options("sinceSeconds=5&sinceTime=1970-01-01T00:00:01Z") == .failure(invalid))
        #expect(options("stream=both") == .failure(.badRequest("invalid stream type \"both\"")))
    }
}
