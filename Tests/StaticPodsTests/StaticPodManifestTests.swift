import Foundation
import KubeClient
import SwiftletTestSupport
import Testing
@testable import StaticPods

let etcdYAML = """
# The control plane's etcd, as kubeadm writes it (abridged).
apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: kube-system
  labels:
    component: etcd
    tier: control-plane
  annotations:
    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://192.168.1.10:2379
  creationTimestamp: null
spec:
  hostNetwork: true
  priorityClassName: system-node-critical
  priority: 2000001000
  securityContext:
    seccompProfile:
      type: RuntimeDefault
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.5.12-0
    command:
    - etcd
    - --data-dir=/var/lib/etcd
    - "--snapshot-count=10000"
    ports:
    - containerPort: 2381
      name: metrics
    resources:
      requests:
        cpu: 100m
        memory: 100Mi
      limits:
        cpu: 2
    livenessProbe:
      httpGet:
        host: 127.0.0.1
        path: /health?exclude=NOSPACE&serializable=true
        port: 2381
        scheme: HTTP
      failureThreshold: 8
      initialDelaySeconds: 10
    volumeMounts:
    - mountPath: /var/lib/etcd
      name: etcd-data
    - mountPath: /etc/kubernetes/pki/etcd
      name: etcd-certs
      readOnly: yes
  volumes:
  - hostPath:
      path: /etc/kubernetes/pki/etcd
      type: DirectoryOrCreate
    name: etcd-certs
  - hostPath:
      path: /var/lib/etcd
      type: DirectoryOrCreate
    name: etcd-data
  - name: scratch
  - name: config
    configMap:
      name: etcd-config
      defaultMode: 0640
status: {}
"""

let webJSON = """
{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {"name": "web"},
  "spec": {
    "containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}],
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}]
  }
}
"""

@Suite("Static pod manifests: decoding, defaulting, hashing, errors")
struct StaticPodManifestTests {
    @Test func loadsYAMLAndJSONManifestsAsTheKubeletNamesThem() throws {
        let tree = try TemporaryTree(prefix: "static-pods")
        try tree.write("etcd.yaml", etcdYAML)
        try tree.write("web.json", webJSON)
        let seen = Date(timeIntervalSince1970: 1_714_564_800.25)
        let manifests = try StaticPodManifests.load(directory: tree.path, nodeName: "Node-1", now: seen)
        #expect(manifests.errors.isEmpty)
        #expect(manifests.pods.map(\.path) == [tree.path + "/etcd.yaml", tree.path + "/web.json"])

        let etcd = manifests.pods[0]
        #expect(etcd.name == "etcd-node-1")
        #expect(etcd.namespace == "kube-system")
        #expect(etcd.fullName == "etcd-node-1_kube-system")
        #expect(etcd.uid.count == 32 && etcd.uid.allSatisfy(\.isHexDigit))
        #expect(etcd.pod.spec?.nodeName == "Node-1")
        #expect(etcd.pod.metadata.labels?["component"] == "etcd")
        let annotations = try #require(etcd.pod.metadata.annotations)
        #expect(annotations["kubernetes.io/config.hash"] == etcd.uid)
        #expect(annotations["kubernetes.io/config.source"] == "file")
        #expect(annotations["kubernetes.io/config.seen"] == "2024-05-01T12:00:00.25Z")
        #expect(annotations["kubeadm.kubernetes.io/etcd.advertise-client-urls"] == "https://192.168.1.10:2379")
        #expect(etcd.pod.spec?.tolerations == [Toleration(operator: "Exists", effect: "NoExecute")])
        #expect(etcd.pod.status == nil)

        // YAML 1.1 scalars as the kubelet's decoder reads them; quoted scalars stay strings.
        let container = try #require(etcd.pod.spec?.containers.first)
        #expect(container.command?.last == "--snapshot-count=10000")
        #expect(container.volumeMounts?[1].readOnly == true)
        #expect(container.livenessProbe?.httpGet?.port == .int(2381))
        #expect(etcd.pod.spec?.volumes?[3].configMap?.defaultMode == 0o640)
        #expect(etcd.pod.spec?.priority == 2_000_001_000)
        // A quantity written as a number; requests default to limits per resource.
        #expect(container.resources == ResourceRequirements(limits: ["cpu": "2"], requests: ["cpu": "100m", "memory": "100Mi"]))

        // The API's defaults, as for any pod the workers see.
        #expect(etcd.pod.spec?.restartPolicy == "Always")
        #expect(etcd.pod.spec?.terminationGracePeriodSeconds == 30)
        #expect(etcd.pod.spec?.dnsPolicy == "ClusterFirst")
        #expect(container.imagePullPolicy == "IfNotPresent")
        #expect(container.terminationMessagePath == "/dev/termination-log")
        #expect(container.ports?.first?.protocol == "TCP")
        #expect(container.ports?.first?.hostPort == 2381)  // hostNetwork
        #expect(container.livenessProbe?.timeoutSeconds == 1 && container.livenessProbe?.periodSeconds == 10)
        #expect(container.livenessProbe?.failureThreshold == 8)
        #expect(etcd.pod.spec?.volumes?[2].emptyDir == EmptyDirVolumeSource())

        let web = manifests.pods[1]
        #expect(web.name == "web-node-1")
        #expect(web.namespace == "default" && web.pod.metadata.namespace == "default")
        #expect(web.pod.spec?.containers.first?.imagePullPolicy == "Always")
        #expect(web.pod.spec?.tolerations == [Toleration(key: "dedicated", operator: "Equal", value: "web", effect: "NoSchedule"),
                                              Toleration(operator: "Exists", effect: "NoExecute")])
    }

    @Test func uidIsStableForTheSameManifestAndChangesWithIt() throws {
        let tree = try TemporaryTree(prefix: "static-pods")
        let path = try tree.write("etcd.yaml", etcdYAML)
        func uid(node: String = "node-1") throws -> String {
            try #require(StaticPodManifests.load(directory: tree.path, nodeName: node).pods.first).uid
        }
        let first = try uid()
        #expect(try uid() == first)
        #expect(try StaticPodManifests.staticPod(manifest: Array(etcdYAML.utf8), path: path, nodeName: "node-1").uid == first)

        // Comments, layout and key order are not the manifest's content.
        try tree.write("etcd.yaml", "# reformatted\n" + etcdYAML.replacingOccurrences(of: "  labels:\n    component: etcd\n    tier: control-plane\n",
                                                                                      with: "  labels: {tier: control-plane, component: etcd}\n"))
        #expect(try uid() == first)

        try tree.write("etcd.yaml", etcdYAML.replacingOccurrences(of: "etcd:3.5.12-0", with: "etcd:3.5.13-0"))
        let changed = try uid()
        #expect(changed != first)
        #expect(try uid(node: "node-2") != changed)
        // Another file with the same content is another pod.
        #expect(try StaticPodManifests.staticPod(manifest: Array(etcdYAML.utf8), path: tree.path + "/other.yaml", nodeName: "node-1").uid != first)

        // A UID in the manifest is kept, as the kubelet keeps it.
        let given = try StaticPodManifests.staticPod(manifest: Array(webJSON.replacingOccurrences(of: #""name": "web"}"#,
                                                                                                    with: #""name": "web", "uid": "u-1"}"#).utf8),
                                                     path: "/m/web.json", nodeName: "n")
        #expect(given.uid == "u-1" && given.pod.metadata.annotations?["kubernetes.io/config.hash"] == "u-1")
    }

    @Test func badFilesAreReportedWithoutHidingGoodOnes() throws {
        let tree = try TemporaryTree(prefix: "static-pods")
        try tree.write("a-good.yaml", etcdYAML)
        try tree.write("b-broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n")
        try tree.write("c-deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
        try tree.write("d-badname.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: Web_1, image: nginx}]}\n")
        try tree.write("e-noimage.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: x}, {name: a}]}\n")
        try tree.write("f-duplicate.yaml", etcdYAML.replacingOccurrences(of: "# The control plane", with: "# a copy of"))
        try tree.write("g-wrongtype.json", #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":"nginx"}}"#)
        try tree.write("h-mount.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: m}\nspec: {containers: [{name: a, image: x, volumeMounts: [{name: gone, mountPath: /x}]}]}\n")
        try tree.write("i-two.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: a, image: x}]}\n---\n"
                       + "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: b, image: x}]}\n")
        try tree.write("j-empty.yaml", "")
        try tree.write("z-good.json", webJSON)
        try tree.write(".hidden.yaml", "not: a pod")
        try tree.write("sub/nested.yaml", webJSON)

        let manifests = try StaticPodManifests.load(directory: tree.path, nodeName: "n")
        #expect(manifests.pods.map(\.name) == ["etcd-n", "web-n"])
        let reasons = Dictionary(uniqueKeysWithValues: manifests.errors.map { (($0.path as NSString).lastPathComponent, $0) })
        #expect(reasons.keys.sorted() == ["b-broken.yaml", "c-deployment.yaml", "d-badname.yaml", "e-noimage.yaml", "f-duplicate.yaml",
                                          "g-wrongtype.json", "h-mount.yaml", "i-two.yaml", "j-empty.yaml"])
        #expect(reasons["b-broken.yaml"]?.reason == .unparsable)
        #expect(reasons["c-deployment.yaml"]?.reason == .notAPod)
        #expect(reasons["c-deployment.yaml"]?.message.contains("Deployment") == true)
        #expect(reasons["d-badname.yaml"]?.reason == .invalid)
        #expect(reasons["d-badname.yaml"]?.message.contains(#"spec.containers[0].name: "Web_1" is not a DNS-1123 label"#) == true)
        let noImage = try #require(reasons["e-noimage.yaml"]?.message)
        #expect(noImage.contains("spec.containers[1].image: required") && noImage.contains(#"duplicate container name "a""#))
        #expect(reasons["f-duplicate.yaml"]?.reason == .duplicate)
        #expect(reasons["f-duplicate.yaml"]?.message.contains("a-good.yaml") == true)
        #expect(reasons["g-wrongtype.json"]?.message == "spec.containers: expected a list")
        #expect(reasons["h-mount.yaml"]?.message.contains(#"no volume named "gone""#) == true)
        #expect(reasons["i-two.yaml"]?.reason == .unparsable)
        #expect(reasons["j-empty.yaml"]?.message == "empty manifest")
        #expect(reasons["b-broken.yaml"]?.description.hasPrefix("static pod manifest \(tree.path)/b-broken.yaml: invalid YAML") == true)
    }

    @Test func missingDirectoryHasNoPodsAndAFileIsAManifest() throws {
        let tree = try TemporaryTree(prefix: "static-pods")
        #expect(try StaticPodManifests.load(directory: tree.path + "/absent", nodeName: "n") == StaticPodManifests())
        let file = try tree.write("only.json", webJSON)
        #expect(try StaticPodManifests.load(directory: file, nodeName: "n").pods.map(\.name) == ["web-n"])
        #expect(throws: StaticPodError.self) { try StaticPodManifests.load(directory: file + "/below", nodeName: "n") }
    }

    @Test func mirrorPodCarriesTheHashAndTheNodeAsOwner() throws {
        let staticPod = try StaticPodManifests.staticPod(manifest: Array(etcdYAML.utf8), path: "/etc/kubernetes/manifests/etcd.yaml",
                                                         nodeName: "node-1")
        let mirror = mirrorPod(of: staticPod, nodeUID: "5c0b7f8e-node")
        let annotations = try #require(mirror.metadata.annotations)
        #expect(annotations["kubernetes.io/config.mirror"] == staticPod.uid)
        #expect(annotations["kubernetes.io/config.hash"] == staticPod.uid)
        #expect(annotations["kubernetes.io/config.source"] == "file")
        #expect(annotations["kubernetes.io/config.seen"] == staticPod.pod.metadata.annotations?["kubernetes.io/config.seen"])
        #expect(mirror.metadata.uid == nil && mirror.status == nil)
        #expect(mirror.metadata.name == "etcd-node-1" && mirror.metadata.namespace == "kube-system")
        #expect(mirror.metadata.ownerReferences == [OwnerReference(apiVersion: "v1", kind: "Node", name: "node-1", uid: "5c0b7f8e-node",
                                                                   controller: true)])
        #expect(mirror.spec == staticPod.pod.spec)
        #expect(mirrorPod(of: staticPod).metadata.ownerReferences == nil)

        #expect(isMirrorPod(mirror) && !isMirrorPod(staticPod.pod))
        #expect(isStaticPod(staticPod.pod) && !isStaticPod(mirror))
        #expect(isMirrorPod(mirror, of: staticPod))
        var stale = mirror
        stale.metadata.annotations?["kubernetes.io/config.mirror"] = "an-older-hash"
        #expect(!isMirrorPod(stale, of: staticPod))
        // What the API server returns decodes back with the annotations intact.
        let fromServer = try JSONDecoder().decode(Pod.self, from: JSONEncoder().encode(mirror))
        #expect(isMirrorPod(fromServer, of: staticPod))
    }

    @Test func md5AndTimestamps() {
        #expect(MD5.hex("") == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(MD5.hex("abc") == "900150983cd24fb0d6963f7d28e17f72")
        #expect(MD5.hex(String(repeating: "1234567890", count: 8)) == "57edf4a22be3c955ac49da2e2107b67a")
        #expect(rfc3339Nano(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(rfc3339Nano(Date(timeIntervalSince1970: 1_714_564_800.5)) == "2024-05-01T12:00:00.5Z")
        #expect(StaticPodDefaults.tag(of: "nginx") == "latest")
        #expect(StaticPodDefaults.tag(of: "localhost:5000/app") == "latest")
        #expect(StaticPodDefaults.tag(of: "localhost:5000/app:1.2") == "1.2")
        #expect(StaticPodDefaults.tag(of: "app@sha256:abc") == nil)
    }
}
