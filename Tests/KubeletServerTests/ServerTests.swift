import Foundation
import Testing
@testable import KubeletServer

/// Everything that runs a server: serialized, so the leak checks (descriptors, TLS sessions,
/// threads) see this suite's servers only.
@Suite(.serialized) struct ServerTests {}

extension ServerTests {
    @Test func routesReachTheBackend() async throws {
        try await withServer { server, backend in
            try await blocking {
                let client = try TestClient(port: server.port)
                let pods = try client.request("GET", "/pods")
                #expect(pods.status == 200)
                #expect(pods.header("content-type") == "application/json")
                #expect(pods.text == #"{"kind":"PodList","apiVersion":"v1","items":[]}"#)
                // Keep-alive: the same connection serves every request below.
                #expect(try client.request("GET", "/runningpods/").text.contains(#""name":"r""#))
                let stats = try client.request("GET", "/stats/summary?only_cpu_and_memory=true")
                #expect(stats.status == 200 && stats.text == #"{"node":{"nodeName":"node-1"}}"#)
                let metrics = try client.request("GET", "/metrics/cadvisor")
                #expect(metrics.header("content-type") == "text/plain; version=0.0.4; charset=utf-8")
                #expect(metrics.text.contains(#"endpoint="/metrics/cadvisor""#))
                #expect(try client.request("GET", "/metrics").text.contains(#"endpoint="/metrics""#))
                #expect(try client.request("GET", "/metrics/resource").status == 200)
                #expect(try client.request("GET", "/metrics/probes").status == 200)
                #expect(try client.request("GET", "/spec/").text == #"{"num_cores":2}"#)
                let run = try client.request("POST", "/run/ns/pod/uid-1/ctr?cmd=ls%20-l%20/")
                #expect(run.status == 200 && run.header("content-type") == "application/json")
                let head = try client.request("HEAD", "/spec/")
                #expect(head.status == 405)
                #expect(try client.request("GET", "/run/ns/pod/ctr").status == 405)
                let missing = try client.request("GET", "/nothing/here")
                #expect(missing.status == 404 && missing.text == "404: Page Not Found")
                #expect(try client.request("GET", "/stats/other").status == 404)
                #expect(try client.request("GET", "/containerLogs/ns/pod").status == 404)
            }
            let state = backend.state.withLock { $0 }
            #expect(state.statsOnlyCPU == [true])
            #expect(state.runs == [RunInContainerRequest(namespace: "ns", pod: "pod", uid: "uid-1", container: "ctr", command: ["ls", "-l", "/"])])
        }
    }

    @Test func healthzOnTheAPIPort() async throws {
        try await withServer { server, backend in
            try await blocking {
                let client = try TestClient(port: server.port)
                #expect(try client.request("GET", "/healthz").text == "ok")
                #expect(try client.request("GET", "/healthz/ping").text == "ok")
                #expect(try client.request("GET", "/healthz/syncloop").text == "ok")
                #expect(try client.request("GET", "/healthz?verbose").text == "[+]ping ok\n[+]log ok\n[+]syncloop ok\nhealthz check passed\n")
                backend.state.withLock { $0.syncLoopHealthy = false }
                let failed = try client.request("GET", "/healthz")
                #expect(failed.status == 500)
                #expect(failed.text == "[+]ping ok\n[+]log ok\n[-]syncloop failed: reason withheld\nhealthz check failed\n")
                let one = try client.request("GET", "/healthz/syncloop")
                #expect(one.status == 500 && one.text == "internal server error: sync loop stalled\n")
                #expect(try client.request("GET", "/healthz?exclude=syncloop").text == "ok")
                #expect(try client.request("GET", "/healthz/nope").status == 404)
            }
        }
    }

    @Test func healthzServerOverPlainHTTP() async throws {
        let server = KubeletAPIServer.healthz(address: "127.0.0.1", port: 0, logger: testLogger())
        try server.start()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            try await blocking {
                let client = try TestClient(port: server.port)
                let ok = try client.request("GET", "/healthz")
                #expect(ok.status == 200 && ok.text == "ok")
                #expect(ok.header("content-type") == "text/plain; charset=utf-8")
                #expect(try client.request("GET", "/healthz/ping").text == "ok")
                #expect(try client.request("GET", "/healthz?verbose=1").text == "[+]ping ok\nhealthz check passed\n")
                #expect(try client.request("GET", "/healthz/log").status == 404)
                let other = try client.request("GET", "/pods")
                #expect(other.status == 404 && other.text == "404 page not found\n")
            }
            server.shutdown()
            try await group.waitForAll()
        }
    }

    @Test func malformedRequestsGet400() async throws {
        var configuration = KubeletAPIServer.Configuration(address: "127.0.0.1", port: 0, nodeName: "node-1", tls: nil, anonymousAuthEnabled: true)
        configuration.limits.maxHeaderBytes = 4096
        try await withServer(configuration) { server, _ in
            try await blocking {
                for (request, status) in [
                    ("NONSENSE\r\n\r\n", 400),
                    ("GET /pods HTTP/1.1\r\n\r\n", 400),
                    ("GET /pods HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
                    ("GET /pods HTTP/9.9\r\nHost: x\r\n\r\n", 505),
                    ("GET /pods HTTP/1.1\r\nHost: x\r\nX: \(String(repeating: "y", count: 5000))\r\n\r\n", 431),
                    ("POST /run/a/b/c HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n", 413),
                ] {
                    let client = try TestClient(port: server.port)
                    try client.send(request)
                    let response = try client.readResponse()
                    #expect(response.status == status, "\(request.prefix(40))")
                    #expect(response.header("connection") == "close")
                    // The server closes after refusing a request.
                    #expect(try client.readToEnd().isEmpty)
                }
                // A bad request after a good one on the same connection.
                let client = try TestClient(port: server.port)
                #expect(try client.request("GET", "/pods").status == 200)
                try client.send("GET /pods HTTP/1.1\r\nbroken header\r\n\r\n")
                #expect(try client.readResponse().status == 400)
            }
        }
    }

    @Test func pipelinedAndChunkedRequests() async throws {
        try await withServer { server, backend in
            try await blocking {
                let client = try TestClient(port: server.port)
                try client.send(
                    "POST /run/ns/p/c?cmd=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                        + "GET /spec HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                #expect(try client.readResponse().text == "ran [\"a\"]")
                let second = try client.readResponse()
                #expect(second.text == #"{"num_cores":2}"#)
                #expect(second.header("connection") == "close")
                #expect(try client.readToEnd().isEmpty)
            }
            #expect(backend.state.withLock { $0.runs.count } == 1)
        }
    }

    @Test func authorizationDecisions() async throws {
        let authorizer = TestAuthorizer { attributes in
            if attributes.path == "/boom" { throw ClientError("webhook down") }
            return attributes.subresource == "stats" ? .allow : .deny(reason: "no RBAC")
        }
        let configuration = KubeletAPIServer.Configuration(
            address: "127.0.0.1", port: 0, nodeName: "node-7", tls: nil, anonymousAuthEnabled: true, authorizer: authorizer)
        try await withServer(configuration) { server, _ in
            try await blocking {
                let client = try TestClient(port: server.port)
                #expect(try client.request("GET", "/stats/summary").status == 200)
                let denied = try client.request("GET", "/pods")
                #expect(denied.status == 403)
                #expect(denied.text == "Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)")
                let logs = try client.request("POST", "/logs/x")
                #expect(logs.text == "Forbidden (user=system:anonymous, verb=create, resource=nodes, subresource=log)")
                let error = try client.request("GET", "/boom")
                #expect(error.status == 500)
                #expect(error.text == "Authorization error (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)")
            }
            let last = try #require(authorizer.asked.withLock { $0.first })
            #expect(last.user == .anonymous)
            #expect(last.name == "node-7" && last.verb == "get" && last.subresource == "stats" && last.path == "/stats/summary")
        }
    }

    @Test func unauthenticatedRequestsGet401() async throws {
        let reviewer = TestTokenReviewer(["secret": KubeletUser(name: "system:serviceaccount:kube-system:metrics", uid: "u1", groups: ["system:serviceaccounts"])])
        let authorizer = TestAuthorizer()
        let configuration = KubeletAPIServer.Configuration(
            address: "127.0.0.1", port: 0, nodeName: "node-1", tls: nil, tokenReviewer: reviewer, authorizer: authorizer)
        try await withServer(configuration) { server, _ in
            try await blocking {
                let client = try TestClient(port: server.port)
                let none = try client.request("GET", "/pods")
                #expect(none.status == 401 && none.text == "Unauthorized")
                #expect(try client.request("GET", "/pods", headers: [("Authorization", "Bearer wrong")]).status == 401)
                #expect(try client.request("GET", "/pods", headers: [("Authorization", "Bearer explode")]).status == 401)
                #expect(try client.request("GET", "/pods", headers: [("Authorization", "Bearer secret")]).status == 200)
            }
            #expect(reviewer.asked.withLock { $0 } == ["wrong", "explode", "secret"])
            let user = try #require(authorizer.last?.user)
            #expect(user.name == "system:serviceaccount:kube-system:metrics")
            #expect(user.groups == ["system:serviceaccounts", "system:authenticated"])
            #expect(authorizer.asked.withLock { $0.count } == 1)
        }
    }
}
