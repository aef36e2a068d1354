import Foundation
import KubeClient
import SwiftletTestSupport
import Testing

/// The client against a real kube-apiserver 1.20 started by hack/local-up-cluster.sh (which
/// builds and caches the binaries on a fresh machine): node credentials (client certificates,
/// the Node authorizer, NodeRestriction), admin credentials, service-account bearer tokens.
@Suite("KubeClient against a real API server", .serialized)
struct APIServerTests {
    static let nodeName = "swiftlet-kubeclient-node"

    @Test(.timeLimit(.minutes(45)))
    func realAPIServer() async throws {
        let cluster = try await LocalCluster.up(nodeName: Self.nodeName)
        var failure: (any Error)?
        do {
            let context = try Context(cluster: cluster)
            try await context.nodeAndLease()
            try await context.nodeStatusPatches()
            try await context.podWatchWithFieldSelector()
            try await context.goneForTooOldResourceVersion()
            try await context.forbiddenAndNotFound()
            try await context.bearerTokens()
            try await context.certificateFiles()
            try await context.untrustedServer()
        } catch {
            failure = error
        }
        await cluster.down()
        if let failure { throw failure }
    }
}

/// What the scenarios share.
private struct Context {
    let cluster: LocalCluster
    let node: KubeClient
    let admin: KubeClient
    var name: String { cluster.nodeName }
    var nodePath: String { "/api/v1/nodes/\(name)" }
    var leasePath: String { "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/\(name)" }

    init(cluster: LocalCluster) throws {
        self.cluster = cluster
        node = try KubeClient(kubeconfigPath: cluster.nodeKubeconfig)
        admin = try KubeClient(kubeconfigPath: cluster.adminKubeconfig)
    }

    /// The node's own Node and Lease: create, AlreadyExists, get, update, 409 on a stale
    /// resourceVersion, get-modify-update retried after a conflict, JSON patch, delete.
    func nodeAndLease() async throws {
        let version = try await node.get("/version")
        #expect(version["gitVersion"] == "v1.20.2")

        let registered = try await node.create("/api/v1/nodes",
                                               Node(metadata: ObjectMeta(name: name, labels: ["kubernetes.io/hostname": name])),
                                               as: Node.self)
        #expect(registered.metadata.name == name)
        #expect(registered.metadata.resourceVersion != nil)
        let again = try await #require(throws: KubeAPIError.self) {
            try await node.create("/api/v1/nodes", Node(metadata: ObjectMeta(name: name)))
        }
        #expect(again.isAlreadyExists && !again.isConflict, "\(again)")
        #expect(again.status?.details?.kind == "nodes")

        let now = KubeTime.microTime(Date())
        let lease = try await node.create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                                          Lease(metadata: ObjectMeta(name: name, namespace: "kube-node-lease"),
                                                spec: LeaseSpec(holderIdentity: name, leaseDurationSeconds: 40, renewTime: now)),
                                          as: Lease.self)
        #expect(lease.spec?.holderIdentity == name)
        #expect(lease.spec?.renewTime == now)

        // Update with the current resourceVersion, then with the stale one: 409 Conflict.
        var renewed = try await node.get(leasePath, as: Lease.self)
        let stale = renewed
        renewed.spec?.renewTime = KubeTime.microTime(Date().addingTimeInterval(1))
        let updated = try await node.update(leasePath, renewed, as: Lease.self)
        #expect(updated.metadata.resourceVersion != stale.metadata.resourceVersion)
        let conflict = try await #require(throws: KubeAPIError.self) { try await node.update(leasePath, stale) }
        #expect(conflict.isConflict && !conflict.isAlreadyExists, "\(conflict)")
        #expect(conflict.httpStatus == 409 && conflict.reason == "Conflict")
        #expect(conflict.message?.contains("the object has been modified") == true, "\(conflict)")

        // retryOnConflict around a get-modify-update whose first read is stale.
        let attempts = Attempts()
        let retried = try await retryOnConflict { () async throws(KubeAPIError) -> Lease in
            var current = await attempts.next() == 1 ? stale : try await node.get(leasePath, as: Lease.self)
            current.spec?.leaseTransitions = 7
            return try await node.update(leasePath, current, as: Lease.self)
        }
        #expect(await attempts.count == 2)
        #expect(retried.spec?.leaseTransitions == 7)

        // The client's own get-modify-update (typed) and a JSON patch.
        let modified = try await node.update(leasePath, as: Lease.self) { lease in lease.spec?.leaseDurationSeconds = 41 }
        #expect(modified.spec?.leaseDurationSeconds == 41)
        let patched = try await node.patch(leasePath, [["op": "replace", "path": "/spec/leaseDurationSeconds", "value": 40]] as JSONValue,
                                           type: .json, as: Lease.self)
        #expect(patched.spec?.leaseDurationSeconds == 40)
        #expect(patched.spec?.leaseTransitions == 7)

        // Delete (a Status or the object comes back), then 404.
        let deleted = try await node.delete(leasePath)
        #expect(deleted["kind"] == "Status" || deleted[path: "metadata", "name"] == .string(name), "\(deleted)")
        let gone = try await #require(throws: KubeAPIError.self) { try await node.get(leasePath) }
        #expect(gone.isNotFound && gone.reason == "NotFound", "\(gone)")
    }

    /// Merge patch and strategic-merge patch of the status subresource.
    func nodeStatusPatches() async throws {
        let heartbeat = KubeTime.time(Date())
        let status = NodeStatus(
            capacity: ["cpu": "2", "memory": "4026532Ki", "pods": "110", "ephemeral-storage": "20Gi"],
            allocatable: ["cpu": "1900m", "memory": "3800000Ki", "pods": "110", "ephemeral-storage": "18Gi"],
            conditions: [NodeCondition(type: "Ready", status: "True", lastHeartbeatTime: heartbeat, lastTransitionTime: heartbeat,
                                       reason: "KubeletReady", message: "swiftlet is posting ready status")],
            addresses: [NodeAddress(type: "InternalIP", address: "127.0.0.1"), NodeAddress(type: "Hostname", address: name)],
            daemonEndpoints: NodeDaemonEndpoints(kubeletEndpoint: DaemonEndpoint(port: 10250)),
            nodeInfo: NodeSystemInfo(machineID: "m", systemUUID: "u", bootID: "b", kernelVersion: "6.1", osImage: "Debian GNU/Linux 12",
                                     containerRuntimeVersion: "swiftlet://0.1.0", kubeletVersion: "v1.20.2", architecture: "amd64"))
        struct StatusPatch: Encodable { var status: NodeStatus }
        let merged = try await node.patch("\(nodePath)/status", StatusPatch(status: status), type: .merge, as: Node.self)
        #expect(merged.status?.capacity?["pods"] == "110")
        #expect(merged.status?.allocatable?["cpu"] == "1900m")
        #expect(merged.status?.conditions?.map(\.type) == ["Ready"])
        #expect(merged.status?.nodeInfo?.containerRuntimeVersion == "swiftlet://0.1.0")
        #expect(merged.status?.daemonEndpoints?.kubeletEndpoint?.Port == 10250)
        #expect(merged.status?.addresses?.contains(NodeAddress(type: "InternalIP", address: "127.0.0.1")) == true)

        // Strategic merge: conditions merge by type instead of being replaced.
        let pressure: JSONValue = ["status": ["conditions": [["type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
                                                              "lastHeartbeatTime": .string(heartbeat), "lastTransitionTime": .string(heartbeat)]]]]
        let strategic = try await node.patch("\(nodePath)/status", pressure, type: .strategicMerge, as: Node.self)
        #expect(Set(strategic.status?.conditions?.map(\.type) ?? []) == ["Ready", "MemoryPressure"])

        // The same through the generic path, as seen by the admin.
        let seen = try await admin.get(nodePath)
        #expect(seen[path: "status", "nodeInfo", "kubeletVersion"] == "v1.20.2")
    }

    /// The node lists and watches pods bound to it; the admin creates, changes and deletes one
    /// (and one bound elsewhere, which the field selector keeps out).
    func podWatchWithFieldSelector() async throws {
        let selector = "spec.nodeName=\(name)"
        let list = try await node.list("/api/v1/pods", fieldSelector: selector)
        #expect(list["items"]?.arrayValue?.isEmpty == true)
        let listVersion = try #require(list.resourceVersion)

        let log = EventLog()
        let stream = node.watch("/api/v1/pods", resourceVersion: listVersion, fieldSelector: selector, allowWatchBookmarks: true)
        let consumer = Task {
            do {
                for try await event in stream { await log.append(event) }
                await log.finish(nil)
            } catch {
                await log.finish(error)
            }
        }

        func pod(_ podName: String, on nodeName: String) -> JSONValue {
            ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": .string(podName), "namespace": "default"],
             "spec": ["nodeName": .string(nodeName), "containers": [["name": "c", "image": "busybox"]]]]
        }
        _ = try await admin.create("/api/v1/namespaces/default/pods", pod("elsewhere", on: "another-node"))
        _ = try await admin.create("/api/v1/namespaces/default/pods", pod("mine", on: name))
        _ = try await admin.patch("/api/v1/namespaces/default/pods/mine", ["metadata": ["labels": ["changed": "yes"]]] as JSONValue, type: .merge)
        try await admin.delete("/api/v1/namespaces/default/pods/mine", options: DeleteOptions(gracePeriodSeconds: 0))

        // ADDED, MODIFIED (the label), MODIFIED (deletionTimestamp set), DELETED.
        let events = try await log.wait(timeout: .seconds(30)) { $0.contains { $0.type == .deleted } }
        let changes = events.filter { $0.type != .bookmark }
        #expect(changes.first?.type == .added && changes.last?.type == .deleted, "\(changes.map(\.type))")
        #expect(changes.dropFirst().dropLast().allSatisfy { $0.type == .modified } && changes.count >= 3, "\(changes.map(\.type))")
        #expect(changes.allSatisfy { $0.object[path: "metadata", "name"] == "mine" })
        #expect(changes.dropFirst().first?.object[path: "metadata", "labels", "changed"] == "yes")
        #expect(changes.last?.object[path: "metadata", "deletionGracePeriodSeconds"] == 0)
        let decoded = try changes[0].decode(as: Pod.self)
        #expect(decoded.spec.nodeName == name)

        // The consumer stops: the stream ends (the wait returns) and the transfer is cancelled.
        consumer.cancel()
        _ = await consumer.value
        #expect(await log.ended)

        try await admin.delete("/api/v1/namespaces/default/pods/elsewhere", options: DeleteOptions(gracePeriodSeconds: 0))
    }

    /// 410 Gone, twice: a watch from a resourceVersion older than the watch cache's window (a
    /// custom resource's cache starts at the revision of its first list, so any older version is
    /// too old), and a list at an exact resourceVersion that etcd has compacted. Also a watch the
    /// server ends (`timeoutSeconds`) finishes the stream normally.
    func goneForTooOldResourceVersion() async throws {
        let group = "kubeclient.swiftlet.test"
        _ = try await admin.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", [
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": ["name": .string("widgets.\(group)")],
            "spec": ["group": .string(group), "scope": "Namespaced",
                     "names": ["plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"],
                     "versions": [["name": "v1", "served": true, "storage": true,
                                   "schema": ["openAPIV3Schema": ["type": "object", "x-kubernetes-preserve-unknown-fields": true]]]]],
        ] as JSONValue)
        let widgets = "/apis/\(group)/v1/namespaces/default/widgets"
        var cacheStart: String?
        for _ in 0..<100 where cacheStart == nil {
            cacheStart = (try? await admin.list(widgets))?.resourceVersion
            if cacheStart == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        let listVersion = try #require(cacheStart, "the Widget resource was never served")
        _ = try await admin.create(widgets, ["apiVersion": .string("\(group)/v1"), "kind": "Widget", "metadata": ["name": "w1"]] as JSONValue)

        // From the list's version: the new widget arrives, then the server's timeout ends the stream.
        var seen: [WatchEventType] = []
        let started = ContinuousClock.now
        for try await event in admin.watch(widgets, resourceVersion: listVersion, timeoutSeconds: 2) { seen.append(event.type) }
        #expect(seen == [.added])
        #expect(ContinuousClock.now - started >= .seconds(1))

        // From long before the cache's start: an ERROR event with a 410 Status ends the stream.
        var error: KubeAPIError?
        do {
            for try await event in admin.watch(widgets, resourceVersion: "2", timeoutSeconds: 20) {
                Issue.record("unexpected \(event.type) from a too-old resourceVersion")
            }
        } catch let failure as KubeAPIError {
            error = failure
        }
        let gone = try #require(error, "a watch from resourceVersion 2 ended without an error")
        #expect(gone.isGone && gone.httpStatus == 410 && gone.reason == "Expired", "\(gone)")
        #expect(gone.message?.contains("too old resource version") == true, "\(gone)")
        #expect(gone.path.contains("resourceVersion=2"))

        // Compact etcd (through its JSON gateway: the API server compacts only every 5 minutes),
        // then list at a version from before: 410 Expired.
        let before = try #require(try await admin.list("/api/v1/namespaces/default/configmaps").resourceVersion)
        _ = try await admin.create("/api/v1/namespaces/default/configmaps",
                                   ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "bump"]] as JSONValue)
        let now = try #require(try await admin.list("/api/v1/namespaces/default/configmaps").resourceVersion)
        let etcd = KubeClient(configuration: KubeClientConfiguration(server: "http://127.0.0.1:\(try #require(cluster.env["ETCD_PORT"]))"))
        let compacted = try await etcd.create("/v3/kv/compaction", ["revision": .string(now), "physical": true] as JSONValue)
        #expect(compacted["header"] != nil, "\(compacted)")
        let expired = try await #require(throws: KubeAPIError.self) {
            try await admin.list("/api/v1/namespaces/default/configmaps", resourceVersion: before, resourceVersionMatch: "Exact")
        }
        #expect(expired.isGone && expired.reason == "Expired", "\(expired)")
        #expect(try await admin.list("/api/v1/namespaces/default/configmaps", resourceVersion: now, resourceVersionMatch: "Exact")["kind"]
                == "ConfigMapList")
    }

    /// What the Node authorizer and NodeRestriction refuse, and what does not exist.
    func forbiddenAndNotFound() async throws {
        let secrets = try await #require(throws: KubeAPIError.self) { try await node.list("/api/v1/namespaces/default/secrets") }
        #expect(secrets.isForbidden && secrets.reason == "Forbidden", "\(secrets)")
        #expect(secrets.message?.contains("system:node:\(name)") == true, "\(secrets)")
        let otherNode = try await #require(throws: KubeAPIError.self) {
            try await node.create("/api/v1/nodes", Node(metadata: ObjectMeta(name: "someone-else")))
        }
        #expect(otherNode.isForbidden, "\(otherNode)")
        let missing = try await #require(throws: KubeAPIError.self) { try await admin.get("/api/v1/namespaces/default/pods/nope") }
        #expect(missing.isNotFound && missing.message == "pods \"nope\" not found", "\(missing)")
        var watchError: KubeAPIError?
        do {
            for try await event in node.watch("/api/v1/secrets") { Issue.record("unexpected \(event.type)") }
        } catch let failure as KubeAPIError {
            watchError = failure
        }
        #expect(watchError?.isForbidden == true && watchError?.status?.code == 403, "\(String(describing: watchError))")
        let raw = try await node.send(method: "GET", path: "/api/v1/namespaces/default/secrets")
        #expect(raw.status == 403)
        #expect(raw.headers["content-type"] == "application/json")
    }

    /// A service account's token as `token` and as `tokenFile`, a CA file, and a bad token.
    func bearerTokens() async throws {
        let account = "kubeclient-test"
        _ = try await admin.create("/api/v1/namespaces/default/serviceaccounts",
                                   ["apiVersion": "v1", "kind": "ServiceAccount", "metadata": ["name": .string(account)]] as JSONValue)
        var secretName: String?
        for _ in 0..<100 where secretName == nil {
            secretName = try await admin.get("/api/v1/namespaces/default/serviceaccounts/\(account)")["secrets"]?[0]?["name"]?.stringValue
            if secretName == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        let secretPath = "/api/v1/namespaces/default/secrets/" + (try #require(secretName))
        let secret = try await admin.get(secretPath)
        let encoded = try #require(secret[path: "data", "token"]?.stringValue)
        let tokenData = try #require(Data(base64Encoded: encoded))
        let token = String(decoding: tokenData, as: UTF8.self)
        let tree = try TemporaryTree(prefix: "kubeclient-token")
        let tokenFile = try tree.write("token", token)
        func kubeconfig(_ user: String) throws -> String {
            try tree.write("config-\(UUID().uuidString)", """
                apiVersion: v1
                kind: Config
                clusters:
                - name: local
                  cluster: {server: "\(cluster.server)", certificate-authority: "\(cluster.caCertificate)"}
                users:
                - name: sa
                  user: {\(user)}
                contexts:
                - {name: sa, context: {cluster: local, user: sa, namespace: default}}
                current-context: sa
                """)
        }
        let byToken = try KubeClient(kubeconfigPath: kubeconfig("token: \(token)"))
        let byFile = try KubeClient(kubeconfigPath: kubeconfig("tokenFile: \(tokenFile)"))
        #expect(byFile.configuration.namespace == "default")

        // Authenticated as the service account, which may do nothing yet: 403 naming it.
        for client in [byToken, byFile] {
            let refused = try await #require(throws: KubeAPIError.self) { try await client.list("/api/v1/namespaces/default/pods") }
            #expect(refused.isForbidden, "\(refused)")
            #expect(refused.message?.contains("system:serviceaccount:default:\(account)") == true, "\(refused)")
        }
        _ = try await admin.create("/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": ["name": "kubeclient-test-view"],
            "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"],
            "subjects": [["kind": "ServiceAccount", "name": .string(account), "namespace": "default"]],
        ] as JSONValue)
        var listed: JSONValue?
        for _ in 0..<50 where listed == nil {
            listed = try? await byFile.list("/api/v1/namespaces/default/pods")
            if listed == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(listed?["kind"] == "PodList")
        #expect(try await byToken.list("/api/v1/namespaces/default/pods", labelSelector: "app in (a,b),!x")["kind"] == "PodList")

        // A rotated token file is read again on the next request.
        try tree.write("token", "not-a-valid-token")
        let rejected = try await #require(throws: KubeAPIError.self) { try await byFile.list("/api/v1/namespaces/default/pods") }
        #expect(rejected.isUnauthorized && rejected.reason == "Unauthorized", "\(rejected)")
    }

    /// The node's identity from certificate and key files (relative to the kubeconfig), the CA
    /// from a file.
    func certificateFiles() async throws {
        let tree = try TemporaryTree(prefix: "kubeclient-files")
        for name in ["node.crt", "node.key", "ca.crt"] {
            try FileManager.default.copyItem(atPath: "\(cluster.pki)/\(name)", toPath: "\(tree.path)/\(name)")
        }
        let path = try tree.write("kubeconfig", """
            apiVersion: v1
            kind: Config
            clusters:
            - {name: local, cluster: {server: "\(cluster.server)", certificate-authority: ca.crt}}
            users:
            - {name: node, user: {client-certificate: node.crt, client-key: node.key}}
            contexts:
            - {name: node, context: {cluster: local, user: node}}
            current-context: node
            """)
        let client = try KubeClient(configuration: try KubeConfig.load(explicitPath: path, environment: [:]).clientConfiguration())
        let seen = try await client.get(nodePath, as: Node.self)
        #expect(seen.metadata.name == name)
        let refused = try await #require(throws: KubeAPIError.self) { try await client.get("/api/v1/nodes/someone-else-entirely") }
        // The Node authorizer lets a node read nodes; the object does not exist.
        #expect(refused.isNotFound, "\(refused)")
    }

    /// A server whose certificate the configured CA did not sign fails as a transport error.
    func untrustedServer() async throws {
        var configuration = node.configuration
        configuration.certificateAuthorityPEM = Array(try Data(contentsOf: URL(fileURLWithPath: cluster.pki + "/front-proxy-ca.crt")))
        let error = try await #require(throws: KubeAPIError.self) { try await KubeClient(configuration: configuration).get("/version") }
        #expect(error.kind == .transport, "\(error)")
        #expect(error.detail.lowercased().contains("certificate"), "\(error)")
        configuration.insecureSkipTLSVerify = true
        configuration.certificateAuthorityPEM = nil
        #expect(try await KubeClient(configuration: configuration).get("/version")["gitVersion"] == "v1.20.2")
    }
}

/// Just enough of a Pod for the watch test.
private struct Pod: Decodable {
    struct Spec: Decodable { var nodeName: String? }
    var metadata: ObjectMeta
    var spec: Spec
}

private actor Attempts {
    var count = 0
    func next() -> Int {
        count += 1
        return count
    }
}

/// Events a watch consumer saw, and how the stream ended.
private actor EventLog {
    var events: [WatchEvent] = []
    var ended = false
    var error: (any Error)?

    func append(_ event: WatchEvent) { events.append(event) }
    func finish(_ error: (any Error)?) {
        ended = true
        self.error = error
    }

    /// Waits until `done` holds for the events (or the stream ended, or the timeout).
    func wait(timeout: Duration, until done: ([WatchEvent]) -> Bool) async throws -> [WatchEvent] {
        let deadline = ContinuousClock.now + timeout
        while !done(events), !ended, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        if let error { throw error }
        return events
    }
}
