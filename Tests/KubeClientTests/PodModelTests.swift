import Foundation
import KubeClient
import Testing

@Suite("core/v1 Pod and the node's other API models")
struct PodModelTests {
    /// As `kubectl get pod -o json` prints a running pod with a projected service account volume
    /// (plus fields the models do not type: managedFields, affinity, an nfs volume).
    static let podJSON = #"""
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T11:00:00Z"},
            "creationTimestamp": "2024-05-01T12:00:00Z",
            "generateName": "web-7d4b9c8f5d-",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c8f5d"},
            "managedFields": [{"apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}, "manager": "kube-controller-manager", "operation": "Update", "time": "2024-05-01T12:00:00Z"}],
            "name": "web-7d4b9c8f5d-x2kqp",
            "namespace": "default",
            "ownerReferences": [{"apiVersion": "apps/v1", "blockOwnerDeletion": true, "controller": true, "kind": "ReplicaSet", "name": "web-7d4b9c8f5d", "uid": "0d5f6c1e-3b7a-4d2a-9f3e-2a1b4c5d6e7f"}],
            "resourceVersion": "48213",
            "uid": "6a2f1d3c-8e4b-4c1a-b7d9-0e5f3a2b1c4d"
        },
        "spec": {
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}},
            "containers": [
                {
                    "args": ["--port=8080", "--verbose"],
                    "command": ["/app/server"],
                    "env": [
                        {"name": "MODE", "value": "production"},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
                        {"name": "MEM_LIMIT", "valueFrom": {"resourceFieldRef": {"containerName": "web", "divisor": "1Mi", "resource": "limits.memory"}}},
                        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"key": "color", "name": "web-config", "optional": true}}},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"key": "password", "name": "web-secret"}}}
                    ],
                    "envFrom": [{"configMapRef": {"name": "web-env"}, "prefix": "CFG_"}],
                    "image": "registry.example.com/web:1.4.2",
                    "imagePullPolicy": "IfNotPresent",
                    "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 5"]}}, "postStart": {"httpGet": {"path": "/warm", "port": "http", "scheme": "HTTP"}}},
                    "livenessProbe": {"failureThreshold": 3, "httpGet": {"httpHeaders": [{"name": "X-Probe", "value": "1"}], "path": "/healthz", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 5, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1},
                    "name": "web",
                    "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                    "readinessProbe": {"failureThreshold": 3, "periodSeconds": 5, "successThreshold": 1, "tcpSocket": {"port": "http"}, "timeoutSeconds": 1},
                    "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}, "readOnlyRootFilesystem": true, "runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                    "startupProbe": {"failureThreshold": 30, "grpc": {"port": 9090, "service": ""}, "periodSeconds": 2, "successThreshold": 1, "timeoutSeconds": 1},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "volumeMounts": [
                        {"mountPath": "/cache", "name": "cache"},
                        {"mountPath": "/etc/web", "name": "config", "readOnly": true},
                        {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access-5xq7z", "readOnly": true}
                    ]
                }
            ],
            "dnsConfig": {"options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "hostAliases": [{"hostnames": ["db.local"], "ip": "10.0.0.5"}],
            "initContainers": [
                {"command": ["sh", "-c", "until nslookup db; do sleep 1; done"], "image": "busybox:1.36", "imagePullPolicy": "IfNotPresent", "name": "wait-db", "resources": {}, "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
            ],
            "nodeName": "node-1",
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {"fsGroup": 2000, "runAsGroup": 3000, "supplementalGroups": [4000], "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
            ],
            "volumes": [
                {"emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}, "name": "cache"},
                {"configMap": {"defaultMode": 420, "items": [{"key": "app.conf", "path": "app.conf", "mode": 256}], "name": "web-config"}, "name": "config"},
                {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
                {"name": "creds", "secret": {"defaultMode": 420, "secretName": "web-secret", "optional": false}},
                {"name": "podinfo", "downwardAPI": {"defaultMode": 420, "items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}, "path": "labels"}]}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}},
                {"name": "share", "nfs": {"path": "/exports", "server": "10.0.0.9"}},
                {
                    "name": "kube-api-access-5xq7z",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
                            {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}
                        ]
                    }
                }
            ]
        },
        "status": {
            "conditions": [
                {"lastProbeTime": null, "lastTransitionTime": "2024-05-01T12:00:03Z", "status": "True", "type": "PodReadyToStartContainers"},
                {"lastProbeTime": null, "lastTransitionTime": "2024-05-01T12:00:04Z", "status": "True", "type": "Initialized"},
                {"lastProbeTime": null, "lastTransitionTime": "2024-05-01T12:00:09Z", "status": "True", "type": "Ready"},
                {"lastProbeTime": null, "lastTransitionTime": "2024-05-01T12:00:09Z", "status": "True", "type": "ContainersReady"},
                {"lastProbeTime": null, "lastTransitionTime": "2024-05-01T12:00:00Z", "status": "True", "type": "PodScheduled"}
            ],
            "containerStatuses": [
                {
                    "containerID": "containerd://4f1c2b3a",
                    "image": "registry.example.com/web:1.4.2",
                    "imageID": "registry.example.com/web@sha256:9b2c",
                    "lastState": {"terminated": {"containerID": "containerd://1a2b", "exitCode": 137, "finishedAt": "2024-05-01T12:00:06Z", "reason": "OOMKilled", "startedAt": "2024-05-01T12:00:04Z"}},
                    "name": "web",
                    "ready": true,
                    "restartCount": 1,
                    "started": true,
                    "state": {"running": {"startedAt": "2024-05-01T12:00:07Z"}}
                }
            ],
            "hostIP": "192.168.1.10",
            "hostIPs": [{"ip": "192.168.1.10"}],
            "initContainerStatuses": [
                {
                    "containerID": "containerd://77aa",
                    "image": "docker.io/library/busybox:1.36",
                    "imageID": "docker.io/library/busybox@sha256:5eef",
                    "lastState": {},
                    "name": "wait-db",
                    "ready": true,
                    "restartCount": 0,
                    "started": false,
                    "state": {"terminated": {"containerID": "containerd://77aa", "exitCode": 0, "finishedAt": "2024-05-01T12:00:03Z", "reason": "Completed", "startedAt": "2024-05-01T12:00:02Z"}}
                }
            ],
            "phase": "Running",
            "podIP": "10.244.1.7",
            "podIPs": [{"ip": "10.244.1.7"}],
            "qosClass": "Burstable",
            "startTime": "2024-05-01T12:00:00Z"
        }
    }
    """#

    static func decodePod() throws -> Pod {
        try JSONDecoder().decode(Pod.self, from: Data(podJSON.utf8))
    }

    @Test func decodesAPIServerPod() throws {
        let pod = try Self.decodePod()
        #expect(pod.metadata.name == "web-7d4b9c8f5d-x2kqp")
        #expect(pod.metadata.ownerReferences?.first?.kind == "ReplicaSet")
        let spec = try #require(pod.spec)
        #expect(spec.nodeName == "node-1")
        #expect(spec.securityContext?.fsGroup == 2000)
        #expect(spec.securityContext?.sysctls?.first?.value == "0")
        #expect(spec.tolerations?.first?.tolerationSeconds == 300)
        #expect(spec.dnsConfig?.options?[1].value == nil)
        #expect(spec.affinity?[path: "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"] != nil)

        let web = try #require(spec.containers.first)
        #expect(web.image == "registry.example.com/web:1.4.2")
        #expect(web.env?[1].valueFrom?.fieldRef?.fieldPath == "status.podIP")
        #expect(web.env?[2].valueFrom?.resourceFieldRef?.divisor == "1Mi")
        #expect(web.env?[3].valueFrom?.configMapKeyRef?.optional == true)
        #expect(web.env?[4].valueFrom?.secretKeyRef?.key == "password")
        #expect(web.envFrom?.first?.prefix == "CFG_")
        #expect(web.resources?.limits?["memory"] == "256Mi")
        #expect(web.livenessProbe?.httpGet?.port == .int(8080))
        #expect(web.livenessProbe?.httpGet?.httpHeaders?.first?.name == "X-Probe")
        #expect(web.readinessProbe?.tcpSocket?.port == .string("http"))
        #expect(web.startupProbe?.grpc?.port == 9090)
        #expect(web.lifecycle?.postStart?.httpGet?.port == "http")
        #expect(web.lifecycle?.preStop?.exec?.command?.last == "sleep 5")
        #expect(web.securityContext?.capabilities?.drop == ["ALL"])
        #expect(web.securityContext?.seccompProfile?.type == "RuntimeDefault")
        #expect(web.volumeMounts?[1].readOnly == true)
        #expect(spec.initContainers?.first?.name == "wait-db")

        let volumes = try #require(spec.volumes)
        #expect(volumes.map(\.sourceKind) == ["emptyDir", "configMap", "hostPath", "secret", "downwardAPI", "persistentVolumeClaim", "nfs", "projected"])
        #expect(volumes[0].emptyDir?.sizeLimit == "64Mi")
        #expect(volumes[1].configMap?.items?.first?.mode == 256)
        #expect(volumes[2].hostPath?.type == "Directory")
        #expect(volumes[3].secret?.secretName == "web-secret")
        #expect(volumes[5].persistentVolumeClaim?.claimName == "web-data")
        #expect(volumes[6].otherSources?["nfs"]?["server"] == "10.0.0.9")
        let projected = try #require(volumes[7].projected?.sources)
        #expect(projected[0].serviceAccountToken?.expirationSeconds == 3607)
        #expect(projected[1].configMap?.name == "kube-root-ca.crt")
        #expect(projected[2].downwardAPI?.items?.first?.fieldRef?.fieldPath == "metadata.namespace")

        let status = try #require(pod.status)
        #expect(status.phase == "Running")
        #expect(status.conditions?.count == 5 && status.conditions?.first?.lastProbeTime == nil)
        #expect(status.podIPs == [PodIP(ip: "10.244.1.7")])
        #expect(status.qosClass == "Burstable")
        let running = try #require(status.containerStatuses?.first)
        #expect(running.ready && running.restartCount == 1 && running.started == true)
        #expect(running.state?.running?.startedAt == "2024-05-01T12:00:07Z")
        #expect(running.lastState?.terminated?.exitCode == 137)
        #expect(running.lastState?.terminated?.reason == "OOMKilled")
        let initStatus = try #require(status.initContainerStatuses?.first)
        #expect(initStatus.state?.terminated?.reason == "Completed")
        #expect(initStatus.lastState == ContainerState())
    }

    @Test func podRoundTripsThroughJSON() throws {
        let pod = try Self.decodePod()
        let encoded = try JSONEncoder().encode(pod)
        #expect(try JSONDecoder().decode(Pod.self, from: encoded) == pod)
        // Untyped members survive: a mirror pod or an update carries them unchanged.
        let value = try JSONValue(encoding: pod)
        #expect(value[path: "spec", "volumes"]?[6]?["nfs"]?["path"] == "/exports")
        #expect(value[path: "spec", "affinity", "nodeAffinity"] != nil)
        #expect(value[path: "spec", "containers"]?[0]?["livenessProbe"]?["httpGet"]?["port"] == 8080)
        #expect(value[path: "spec", "containers"]?[0]?["readinessProbe"]?["tcpSocket"]?["port"] == "http")
        #expect(value[path: "status", "containerStatuses"]?[0]?["state"]?["running"]?["startedAt"] == "2024-05-01T12:00:07Z")
        // Nothing unset is written.
        #expect(value[path: "spec", "hostNetwork"] == nil)
    }

    @Test func minimalPodDecodesAndEncodesSparsely() throws {
        let pod = try JSONDecoder().decode(Pod.self, from: Data(#"{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#.utf8))
        #expect(pod.spec?.containers == [Container(name: "c", image: "i")])
        let value = try JSONValue(encoding: Pod(metadata: ObjectMeta(name: "p"), spec: PodSpec(containers: [Container(name: "c")])))
        #expect(value == ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "p"], "spec": ["containers": [["name": "c"]]]])
    }

    @Test func quantitiesWrittenAsNumbersDecodeAsText() throws {
        let resources = try JSONDecoder().decode(ResourceRequirements.self, from: Data(#"{"limits":{"cpu":2,"memory":"1Gi"},"requests":{"cpu":0.5}}"#.utf8))
        #expect(resources == ResourceRequirements(limits: ["cpu": "2", "memory": "1Gi"], requests: ["cpu": "0.5"]))
        #expect(try JSONDecoder().decode(EmptyDirVolumeSource.self, from: Data(#"{"sizeLimit":1000000}"#.utf8)).sizeLimit == "1000000")
        #expect(try JSONDecoder().decode(ResourceFieldSelector.self, from: Data(#"{"resource":"limits.cpu","divisor":1}"#.utf8)).divisor == "1")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ResourceRequirements.self, from: Data(#"{"limits":{"cpu":true}}"#.utf8)) }
    }

    @Test func intOrStringRejectsOtherTypes() throws {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(IntOrString.self, from: Data("true".utf8)) }
        #expect(try JSONDecoder().decode([IntOrString].self, from: Data(#"[80,"80"]"#.utf8)) == [.int(80), .string("80")])
        #expect(IntOrString.string("80").intValue == nil)
    }

    @Test func configMapAndSecretContents() throws {
        let configMap = try JSONDecoder().decode(ConfigMap.self, from: Data(#"""
        {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"default"},"data":{"a":"x"},"binaryData":{"b":"AAEC"}}
        """#.utf8))
        #expect(configMap.contents == ["a": Array("x".utf8), "b": [0, 1, 2]])
        let secret = try JSONDecoder().decode(Secret.self, from: Data(#"""
        {"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"type":"Opaque","data":{"password":"aHVudGVyMg=="}}
        """#.utf8))
        #expect(secret.type == "Opaque")
        #expect(secret.contents == ["password": Array("hunter2".utf8)])
        #expect(Secret(metadata: ObjectMeta(name: "s"), data: ["bad": "%%%"]).contents == nil)
    }

    @Test func tokenRequestAndReviews() throws {
        let request = try JSONValue(encoding: TokenRequest(spec: TokenRequestSpec(audiences: ["api"], expirationSeconds: 3600,
                                                                                  boundObjectRef: BoundObjectReference(name: "p", uid: "u"))))
        #expect(request["apiVersion"] == "authentication.k8s.io/v1")
        #expect(request[path: "spec", "boundObjectRef", "kind"] == "Pod")
        let issued = try JSONDecoder().decode(TokenRequest.self, from: Data(#"""
        {"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{"name":"default","namespace":"default","creationTimestamp":"2024-05-01T12:00:00Z"},
         "spec":{"audiences":["https://kubernetes.default.svc.cluster.local"],"expirationSeconds":3600,"boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"p","uid":"u"}},
         "status":{"token":"eyJhbGciOi","expirationTimestamp":"2024-05-01T13:00:00Z"}}
        """#.utf8))
        #expect(issued.status?.token == "eyJhbGciOi")

        let review = try JSONDecoder().decode(TokenReview.self, from: Data(#"""
        {"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},"spec":{"token":"t"},
         "status":{"authenticated":true,"user":{"username":"system:serviceaccount:kube-system:metrics","uid":"9","groups":["system:serviceaccounts","system:authenticated"],
         "extra":{"authentication.kubernetes.io/pod-name":["metrics-0"]}},"audiences":["https://kubernetes.default.svc"]}}
        """#.utf8))
        #expect(review.status?.authenticated == true)
        #expect(review.status?.user?.extra?["authentication.kubernetes.io/pod-name"] == ["metrics-0"])

        let access = try JSONDecoder().decode(SubjectAccessReview.self, from: Data(#"""
        {"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","metadata":{"creationTimestamp":null},
         "spec":{"resourceAttributes":{"verb":"get","version":"v1","resource":"nodes","subresource":"proxy","name":"node-1"},"user":"u","groups":["g"]},
         "status":{"allowed":false,"denied":true,"reason":"no RBAC policy matched"}}
        """#.utf8))
        #expect(access.spec.resourceAttributes?.subresource == "proxy")
        #expect(access.status == SubjectAccessReviewStatus(allowed: false, denied: true, reason: "no RBAC policy matched"))
        let undecided = try JSONDecoder().decode(SubjectAccessReviewStatus.self, from: Data("{}".utf8))
        #expect(!undecided.allowed)
    }

    @Test func eventAsTheKubeletWritesIt() throws {
        let event = Event(metadata: ObjectMeta(name: "web.17c", namespace: "default"),
                          involvedObject: ObjectReference(kind: "Pod", namespace: "default", name: "web", uid: "u", apiVersion: "v1",
                                                          fieldPath: "spec.containers{web}"),
                          reason: "Pulled", message: "Successfully pulled image", source: EventSource(component: "kubelet", host: "node-1"),
                          firstTimestamp: "2024-05-01T12:00:00Z", lastTimestamp: "2024-05-01T12:00:00Z", count: 1, type: "Normal",
                          reportingComponent: "kubelet", reportingInstance: "node-1")
        let value = try JSONValue(encoding: event)
        #expect(value[path: "involvedObject", "fieldPath"] == "spec.containers{web}")
        #expect(value[path: "source", "component"] == "kubelet")
        #expect(value["eventTime"] == nil)
        let decoded = try JSONDecoder().decode(Event.self, from: Data(#"""
        {"kind":"Event","apiVersion":"v1","metadata":{"name":"web.17c","namespace":"default"},"involvedObject":{"kind":"Pod","name":"web"},
         "reason":"BackOff","message":"Back-off restarting failed container","source":{"component":"kubelet","host":"node-1"},
         "firstTimestamp":"2024-05-01T12:00:00Z","lastTimestamp":"2024-05-01T12:05:00Z","count":7,"type":"Warning","eventTime":null,
         "reportingComponent":"kubelet","reportingInstance":"node-1"}
        """#.utf8))
        #expect(decoded.count == 7 && decoded.eventTime == nil)
    }
}
