import Foundation
import KubeClient
import Testing

@Suite("JSON values, models, errors, backoff")
struct ModelTests {
    @Test func jsonValueRoundTripKeepsIntegers() throws {
        let text = #"{"a":1,"b":2.5,"c":[true,null,"x"],"d":{"e":-9007199254740993}}"#
        let value = try JSONValue(parsing: Array(text.utf8))
        #expect(value["a"] == .int(1))
        #expect(value["b"] == .double(2.5))
        #expect(value["c"]?[0] == .bool(true))
        #expect(value["c"]?[1] == .null)
        #expect(value[path: "d", "e"]?.intValue == -9007199254740993)
        #expect(String(decoding: value.serialized(), as: UTF8.self) == text)
    }

    @Test func nodeModelEncodesOnlyWhatIsSet() throws {
        let node = Node(metadata: ObjectMeta(name: "n1", labels: ["kubernetes.io/hostname": "n1"]),
                        status: NodeStatus(capacity: ["cpu": "2", "pods": "110"],
                                           conditions: [NodeCondition(type: "Ready", status: "True", reason: "KubeletReady")],
                                           daemonEndpoints: NodeDaemonEndpoints(kubeletEndpoint: DaemonEndpoint(port: 10250))))
        let value = try JSONValue(encoding: node)
        #expect(value["kind"] == "Node")
        #expect(value[path: "metadata", "name"] == "n1")
        #expect(value[path: "metadata", "namespace"] == nil)
        #expect(value["spec"] == nil)
        #expect(value[path: "status", "daemonEndpoints", "kubeletEndpoint", "Port"] == 10250)
        #expect(try value.decode(as: Node.self) == node)
    }

    @Test func statusErrorsAreDistinguishable() throws {
        func error(_ code: Int, _ reason: String) -> KubeAPIError {
            KubeAPIError(.status, httpStatus: code, status: APIStatus(message: "m", reason: reason, code: code))
        }
        #expect(error(404, "NotFound").isNotFound)
        #expect(error(409, "Conflict").isConflict && !error(409, "Conflict").isAlreadyExists)
        #expect(error(409, "AlreadyExists").isAlreadyExists && !error(409, "AlreadyExists").isConflict)
        #expect(error(410, "Expired").isGone)
        #expect(error(403, "Forbidden").isForbidden)
        #expect(error(503, "ServiceUnavailable").isTransient)
        #expect(!error(404, "NotFound").isTransient)
        #expect(KubeAPIError(.transport, detail: "Connection refused").isTransient)
        #expect(KubeAPIError(.status, httpStatus: 409, status: APIStatus(message: "the object has been modified", reason: "Conflict", code: 409),
                             method: "PUT", path: "/api/v1/nodes/n1").description
                == "PUT /api/v1/nodes/n1: 409 Conflict: the object has been modified")
    }

    @Test func backoffIsCappedExponential() {
        let backoff = Backoff(initial: .milliseconds(100), factor: 2, cap: .seconds(1), jitter: 0, attempts: 10)
        #expect(backoff.delay(afterAttempt: 0) == .milliseconds(100))
        #expect(backoff.delay(afterAttempt: 2) == .milliseconds(400))
        #expect(backoff.delay(afterAttempt: 8) == .seconds(1))
        let jittered = Backoff(initial: .milliseconds(100), jitter: 0.5, attempts: 3).delay(afterAttempt: 0)
        #expect(jittered >= .milliseconds(100) && jittered <= .milliseconds(150))
    }

    @Test func retryOnConflictRetriesOnlyConflicts() async throws {
        let counter = Counter()
        let result = try await retryOnConflict { () async throws(KubeAPIError) -> Int in
            let attempt = await counter.next()
            if attempt < 3 { throw KubeAPIError(.status, httpStatus: 409, status: APIStatus(reason: "Conflict", code: 409)) }
            return attempt
        }
        #expect(result == 3)
        let notFound = Counter()
        await #expect(throws: KubeAPIError.self) {
            try await retryOnConflict { () async throws(KubeAPIError) -> Int in
                _ = await notFound.next()
                throw KubeAPIError(.status, httpStatus: 404, status: APIStatus(reason: "NotFound", code: 404))
            }
        }
        #expect(await notFound.value == 1)
        let always = Counter()
        await #expect(throws: KubeAPIError.self) {
            try await retryOnTransientErrors(backoff: Backoff(initial: .milliseconds(1), attempts: 4)) { () async throws(KubeAPIError) -> Int in
                _ = await always.next()
                throw KubeAPIError(.transport, detail: "refused")
            }
        }
        #expect(await always.value == 4)
    }

    @Test func kubeTimeFormats() {
        let date = Date(timeIntervalSince1970: 1_700_000_000.123456)
        #expect(KubeTime.time(date) == "2023-11-14T22:13:20Z")
        #expect(KubeTime.microTime(date).hasPrefix("2023-11-14T22:13:20.1234"))
        #expect(KubeTime.parse("2023-11-14T22:13:20Z") == Date(timeIntervalSince1970: 1_700_000_000))
    }
}

actor Counter {
    var value = 0
    func next() -> Int {
        value += 1
        return value
    }
}
