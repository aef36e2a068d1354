import CRI
import Foundation
import KubeClient
import Testing
@testable import KubeNode

@Suite struct PodEnvironmentExpansionTests {
    let values = ["A": "alpha", "B": "beta", "EMPTY": ""]

    @Test(arguments: [
        ("$(A)", "alpha"),
        ("x$(A)y$(B)z", "xalphaybetaz"),
        ("$(EMPTY)|", "|"),
        ("$$", "$"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$alpha"),
        ("$(UNKNOWN)", "$(UNKNOWN)"),
        ("$(A", "$(A"),
        ("$()", "$()"),
        ("$", "$"),
        ("a$", "a$"),
        ("$A", "$A"),
        ("100$", "100$"),
        ("$(A$(B))", "$(A$(B))"),
        ("no references", "no references"),
        ("", ""),
    ])
    func expand(_ input: String, _ output: String) {
        #expect(PodEnvironment.expand(input, with: values) == output)
    }

    @Test func validNames() {
        for name in ["A", "my.env-name", "MY_ENV.NAME", "MyEnvName1", "_x", "-x", ".x"] { #expect(PodEnvironment.isValidName(name), "\(name)") }
        for name in ["", "1A", "with space", "a=b", "é", "a:b"] { #expect(!PodEnvironment.isValidName(name), "\(name)") }
    }

    @Test
    func dotNamesAreInvalid() {
        for name in [".", "..", "..x"] { #expect(!PodEnvironment.isValidName(name), "\(name)") }
    }
}

@Suite struct PodEnvironmentVariablesTests {
    var objects = FakeObjects()

    init() {
        objects.add(configMap: "settings", data: ["LOG_LEVEL": "debug", "MODE": "fast", "1BAD": "x", "has space": "y", "config.yaml": "a: 1"])
        objects.add(secret: "creds", values: ["USER": "admin", "PASSWORD": "s3cr3t"])
        objects.services = [("DB_SERVICE_HOST", "10.96.0.20"), ("DB_SERVICE_PORT", "5432")]
    }

    func environment(_ objects: any ClusterObjects, serviceEnv: [(String, String)] = [], allocatable: [String: String] = [:]) -> PodEnvironment {
        PodEnvironment(objects: objects, serviceEnv: serviceEnv, allocatable: allocatable)
    }

    func variables(_ container: ContainerSpec, pod: Pod? = nil, objects: (any ClusterObjects)? = nil,
                   serviceEnv: [(String, String)] = [], allocatable: [String: String] = [:]) async throws -> [KeyValue] {
        let pod = pod ?? makePod(containers: [container])
        return try await environment(objects ?? self.objects, serviceEnv: serviceEnv, allocatable: allocatable)
            .variables(for: container, pod: pod, podIPs: ["10.88.0.5", "fd00::5"], hostIP: "192.0.2.10")
    }

    func dictionary(_ values: [KeyValue]) -> [String: String] {
        Dictionary(values.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    @Test func literalValuesInOrderWithExpansion() async throws {
        var container = makeContainer()
        container.env = [
            EnvVar(name: "FIRST", value: "one"),
            EnvVar(name: "SECOND", value: "$(FIRST)-two"),
            EnvVar(name: "EARLY", value: "$(LATER)"),
            EnvVar(name: "LATER", value: "late"),
            EnvVar(name: "ESCAPED", value: "$$(FIRST)"),
            EnvVar(name: "EMPTY", value: nil),
            EnvVar(name: "DB", value: "$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)"),
        ]
        let values = try await variables(container, objects: FakeObjects())
        #expect(values.map(\.key) == ["FIRST", "SECOND", "EARLY", "LATER", "ESCAPED", "EMPTY", "DB"])
        let env = dictionary(values)
        #expect(env["SECOND"] == "one-two")
        #expect(env["EARLY"] == "$(LATER)")  // only what came before expands
        #expect(env["ESCAPED"] == "$(FIRST)")
        #expect(env["EMPTY"] == "")
        #expect(env["DB"] == "$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)")  // no services here
    }

    @Test func serviceVariablesComeFirstAndCanBeReferencedOrOverridden() async throws {
        var container = makeContainer()
        container.env = [EnvVar(name: "DB", value: "$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)"), EnvVar(name: "DB_SERVICE_PORT", value: "6432"),
                         EnvVar(name: "API", value: "$(KUBERNETES_SERVICE_HOST)")]
        let values = try await variables(container, serviceEnv: [("KUBERNETES_SERVICE_HOST", "10.96.0.1")])
        #expect(Array(values.map(\.key).prefix(3)) == ["KUBERNETES_SERVICE_HOST", "DB_SERVICE_HOST", "DB_SERVICE_PORT"])
        let env = dictionary(values)
        #expect(env["DB"] == "10.96.0.20:5432")
        #expect(env["DB_SERVICE_PORT"] == "6432")
        #expect(env["API"] == "10.96.0.1")
        #expect(values.filter { $0.key == "DB_SERVICE_PORT" }.count == 1)

        // enableServiceLinks: false leaves the namespace's services out.
        let pod = makePod(containers: [container]) { $0.enableServiceLinks = false }
        let unlinked = dictionary(try await variables(container, pod: pod, serviceEnv: [("KUBERNETES_SERVICE_HOST", "10.96.0.1")]))
        #expect(unlinked["DB_SERVICE_HOST"] == nil && unlinked["KUBERNETES_SERVICE_HOST"] == "10.96.0.1")
    }

    @Test func envFromWithPrefixSkipsInvalidNamesAndEnvOverrides() async throws {
        var container = makeContainer()
        container.envFrom = [
            EnvFromSource(configMapRef: ConfigMapEnvSource(name: "settings")),
            EnvFromSource(prefix: "S_", secretRef: SecretEnvSource(name: "creds")),
        ]
        container.env = [EnvVar(name: "MODE", value: "slow"), EnvVar(name: "LOGIN", value: "$(S_USER)@$(LOG_LEVEL)")]
        let values = try await variables(container, objects: FakeObjects(configMaps: objects.configMaps, secrets: objects.secrets))
        let env = dictionary(values)
        #expect(env["LOG_LEVEL"] == "debug")
        #expect(env["config.yaml"] == "a: 1")
        #expect(env["1BAD"] == nil && env["has space"] == nil)
        #expect(env["S_USER"] == "admin" && env["S_PASSWORD"] == "s3cr3t" && env["USER"] == nil)
        #expect(env["MODE"] == "slow")
        #expect(env["LOGIN"] == "admin@debug")
        #expect(values.count == Set(values.map(\.key)).count)
        // A prefix can make an invalid key valid.
        var prefixed = makeContainer()
        prefixed.envFrom = [EnvFromSource(prefix: "K_", configMapRef: ConfigMapEnvSource(name: "settings"))]
        #expect(dictionary(try await variables(prefixed))["K_1BAD"] == "x")
    }

    @Test func envFromMissingSources() async throws {
        var optional = makeContainer()
        optional.envFrom = [EnvFromSource(configMapRef: ConfigMapEnvSource(name: "absent", optional: true)),
                            EnvFromSource(secretRef: SecretEnvSource(name: "absent", optional: true))]
        optional.env = [EnvVar(name: "A", value: "1")]
        #expect(dictionary(try await variables(optional, objects: FakeObjects())) == ["A": "1"])

        var required = makeContainer()
        required.envFrom = [EnvFromSource(configMapRef: ConfigMapEnvSource(name: "absent"))]
        await #expect(throws: NodeError.self) { _ = try await variables(required) }
        var requiredSecret = makeContainer()
        requiredSecret.envFrom = [EnvFromSource(secretRef: SecretEnvSource(name: "absent"))]
        do {
            _ = try await variables(requiredSecret)
            Issue.record("a missing secret was accepted")
        } catch let error as NodeError {
            #expect(error.kind == .podSpec && error.detail.contains("\"absent\""))
        }
    }

    @Test func configMapAndSecretKeyReferences() async throws {
        var container = makeContainer()
        container.env = [
            EnvVar(name: "LEVEL", valueFrom: EnvVarSource(configMapKeyRef: ConfigMapKeySelector(name: "settings", key: "LOG_LEVEL"))),
            EnvVar(name: "PASS", valueFrom: EnvVarSource(secretKeyRef: SecretKeySelector(name: "creds", key: "PASSWORD"))),
            EnvVar(name: "NO_MAP", valueFrom: EnvVarSource(configMapKeyRef: ConfigMapKeySelector(name: "absent", key: "k", optional: true))),
            EnvVar(name: "NO_KEY", valueFrom: EnvVarSource(configMapKeyRef: ConfigMapKeySelector(name: "settings", key: "k", optional: true))),
            EnvVar(name: "NO_SECRET", valueFrom: EnvVarSource(secretKeyRef: SecretKeySelector(name: "absent", key: "k", optional: true))),
            EnvVar(name: "NO_SECRET_KEY", valueFrom: EnvVarSource(secretKeyRef: SecretKeySelector(name: "creds", key: "k", optional: true))),
            EnvVar(name: "USES", value: "$(LEVEL)/$(PASS)/$(NO_KEY)"),
        ]
        let values = try await variables(container)
        #expect(values.map(\.key).suffix(3) == ["LEVEL", "PASS", "USES"])
        let env = dictionary(values)
        #expect(env["LEVEL"] == "debug" && env["PASS"] == "s3cr3t")
        #expect(env["NO_MAP"] == nil && env["NO_KEY"] == nil && env["NO_SECRET"] == nil && env["NO_SECRET_KEY"] == nil)
        #expect(env["USES"] == "debug/s3cr3t/$(NO_KEY)")
    }

    @Test func missingRequiredKeyReferencesFail() async throws {
        func failure(_ source: EnvVarSource) async -> NodeError? {
            var container = makeContainer()
            container.env = [EnvVar(name: "X", valueFrom: source)]
            do {
                _ = try await variables(container)
                return nil
            } catch {
                return error as? NodeError
            }
        }
        let noKey = await failure(EnvVarSource(configMapKeyRef: ConfigMapKeySelector(name: "settings", key: "nope")))
        #expect(noKey?.kind == .podSpec && noKey?.detail == "couldn't find key nope in ConfigMap ns/settings")
        let noSecretKey = await failure(EnvVarSource(secretKeyRef: SecretKeySelector(name: "creds", key: "nope")))
        #expect(noSecretKey?.detail == "couldn't find key nope in Secret ns/creds")
        let noMap = await failure(EnvVarSource(configMapKeyRef: ConfigMapKeySelector(name: "absent", key: "k")))
        #expect(noMap?.detail.contains("configmap \"absent\" not found") == true)
        let noSecret = await failure(EnvVarSource(secretKeyRef: SecretKeySelector(name: "absent", key: "k")))
        #expect(noSecret?.detail.contains("secret \"absent\" not found") == true)
    }

    @Test func fieldReferences() async throws {
        var container = makeContainer()
        let fields = ["metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels['app']", "metadata.annotations['owner']",
                      "metadata.labels['missing']", "spec.nodeName", "spec.serviceAccountName", "status.podIP", "status.podIPs",
                      "status.hostIP"]
        container.env = fields.enumerated().map { EnvVar(name: "F\($0.offset)", valueFrom: EnvVarSource(fieldRef: ObjectFieldSelector(fieldPath: $0.element))) }
        let pod = makePod(labels: ["app": "web"], annotations: ["owner": "team-a"], containers: [container]) {
            $0.nodeName = "node-a"
            $0.serviceAccountName = "builder"
        }
        let values = try await variables(container, pod: pod, objects: FakeObjects()).map(\.value)
        #expect(values == ["web", "ns", "uid-1", "web", "team-a", "", "node-a", "builder", "10.88.0.5", "10.88.0.5,fd00::5", "192.0.2.10"])

        var bad = makeContainer()
        bad.env = [EnvVar(name: "X", valueFrom: EnvVarSource(fieldRef: ObjectFieldSelector(fieldPath: "spec.containers")))]
        await #expect(throws: NodeError.self) { _ = try await variables(bad) }
    }

    @Test func resourceFieldReferencesWithDivisors() async throws {
        var container = makeContainer("app", requests: ["cpu": "250m", "memory": "100Mi"], limits: ["cpu": "1500m"])
        func ref(_ resource: String, _ divisor: String? = nil, container: String? = nil) -> EnvVarSource {
            EnvVarSource(resourceFieldRef: ResourceFieldSelector(containerName: container, resource: resource, divisor: divisor))
        }
        container.env = [
            EnvVar(name: "CPU_REQUEST", valueFrom: ref("requests.cpu")),  // 250m rounds up to 1
            EnvVar(name: "CPU_REQUEST_M", valueFrom: ref("requests.cpu", "1m")),
            EnvVar(name: "CPU_LIMIT", valueFrom: ref("limits.cpu")),  // 1.5 rounds up to 2
            EnvVar(name: "MEM_REQUEST", valueFrom: ref("requests.memory")),
            EnvVar(name: "MEM_REQUEST_MI", valueFrom: ref("requests.memory", "1Mi")),
            EnvVar(name: "MEM_REQUEST_GI", valueFrom: ref("requests.memory", "1Gi")),  // rounds up
            EnvVar(name: "MEM_LIMIT", valueFrom: ref("limits.memory", "1Mi")),  // none: the node's allocatable
            EnvVar(name: "SIDECAR_CPU", valueFrom: ref("limits.cpu", "1m", container: "sidecar")),
            EnvVar(name: "STORAGE", valueFrom: ref("requests.ephemeral-storage")),
        ]
        let sidecar = makeContainer("sidecar", limits: ["cpu": "300m"])
        let pod = makePod(containers: [container, sidecar])
        let env = dictionary(try await variables(container, pod: pod, allocatable: ["cpu": "2", "memory": "2Gi"]))
        #expect(env["CPU_REQUEST"] == "1")
        #expect(env["CPU_REQUEST_M"] == "250")
        #expect(env["CPU_LIMIT"] == "2")
        #expect(env["MEM_REQUEST"] == "104857600")
        #expect(env["MEM_REQUEST_MI"] == "100")
        #expect(env["MEM_REQUEST_GI"] == "1")
        #expect(env["MEM_LIMIT"] == "2048")
        #expect(env["SIDECAR_CPU"] == "300")
        #expect(env["STORAGE"] == "0")

        var missing = makeContainer()
        missing.env = [EnvVar(name: "X", valueFrom: ref("limits.cpu", container: "nope"))]
        await #expect(throws: NodeError.self) { _ = try await variables(missing) }
    }

    @Test
    func zeroDivisorMeansOne() async throws {
        var container = makeContainer("app", requests: ["memory": "64Mi"], limits: ["cpu": "2", "memory": "128Mi"])
        container.env = [
            EnvVar(name: "CPU", valueFrom: EnvVarSource(resourceFieldRef: ResourceFieldSelector(resource: "limits.cpu", divisor: "0"))),
            EnvVar(name: "MEM", valueFrom: EnvVarSource(resourceFieldRef: ResourceFieldSelector(resource: "limits.memory", divisor: "0"))),
        ]
        let env = dictionary(try await variables(container))
        #expect(env["CPU"] == "2")
        #expect(env["MEM"] == "134217728")
    }
}

@Suite struct DownwardAPITests {
    let pod = makePod(labels: ["b": "2", "a": "1"], annotations: ["note": "say \"hi\""], containers: [makeContainer()])

    @Test func labelsAndAnnotationsAreFormattedSorted() throws {
        #expect(try DownwardAPI.fieldValue("metadata.labels", pod: pod) == "a=\"1\"\nb=\"2\"")
        #expect(try DownwardAPI.fieldValue("metadata.annotations", pod: pod) == #"note="say \"hi\"""#)
        #expect(DownwardAPI.formatMap([:]) == "")
    }

    @Test
    func formatMapQuotesAsGo() {
        #expect(DownwardAPI.formatMap(["k": "a\\b\nc\td"]) == #"k="a\\b\nc\td""#)
    }

    @Test func podFieldsWithoutRuntimeValuesComeFromTheStatus() throws {
        var pod = self.pod
        pod.status = PodStatus(hostIP: "192.0.2.1", podIP: "10.0.0.9", podIPs: [APIPodIP(ip: "10.0.0.9"), APIPodIP(ip: "fd00::9")])
        #expect(try DownwardAPI.fieldValue("status.podIP", pod: pod) == "10.0.0.9")
        #expect(try DownwardAPI.fieldValue("status.podIPs", pod: pod) == "10.0.0.9,fd00::9")
        #expect(try DownwardAPI.fieldValue("status.hostIP", pod: pod) == "192.0.2.1")
        #expect(try DownwardAPI.fieldValue("status.podIP", pod: pod, podIPs: ["10.1.1.1"]) == "10.1.1.1")
        #expect(try DownwardAPI.fieldValue("metadata.namespace", pod: Pod(metadata: ObjectMeta(name: "x"))) == "default")
        #expect(throws: NodeError.self) { try DownwardAPI.fieldValue("status.phase", pod: pod) }
    }

    @Test func volumeItems() throws {
        #expect(try DownwardAPI.value(DownwardAPIVolumeFile(path: "name", fieldRef: ObjectFieldSelector(fieldPath: "metadata.name")), pod: pod) == "web")
        let withLimits = makePod(containers: [makeContainer("app", limits: ["memory": "64Mi"])])
        let file = DownwardAPIVolumeFile(path: "mem", resourceFieldRef: ResourceFieldSelector(containerName: "app", resource: "limits.memory", divisor: "1Mi"))
        #expect(try DownwardAPI.value(file, pod: withLimits) == "64")
        #expect(throws: NodeError.self) { try DownwardAPI.value(DownwardAPIVolumeFile(path: "nothing"), pod: pod) }
        #expect(throws: NodeError.self) {
            try DownwardAPI.resourceValue(ResourceFieldSelector(containerName: "app", resource: "cpu"), pod: withLimits, container: nil)
        }
    }
}

@Suite struct ServiceEnvironmentTests {
    @Test func dockerLinksVariablesAsTheKubelet() {
        let services: [JSONValue] = [
            ["metadata": ["name": "web-api"], "spec": ["clusterIP": "10.96.0.20", "ports": [
                ["name": "http", "port": 80, "protocol": "TCP"], ["name": "dns-udp", "port": 53, "protocol": "UDP"],
            ]]],
            ["metadata": ["name": "headless"], "spec": ["clusterIP": "None", "ports": [["port": 80]]]],
            ["metadata": ["name": "external"], "spec": ["ports": [["port": 80]]]],
            ["metadata": ["name": "db"], "spec": ["clusterIP": "fd00::20", "ports": [["port": 5432]]]],
        ]
        let variables = ServiceEnvironment.variables(services)
        let names = variables.map(\.0)
        #expect(names.count == Set(names).count)
        #expect(!names.contains { $0.hasPrefix("HEADLESS") || $0.hasPrefix("EXTERNAL") })
        let env = Dictionary(variables, uniquingKeysWith: { first, _ in first })
        #expect(env == [
            "DB_SERVICE_HOST": "fd00::20", "DB_SERVICE_PORT": "5432", "DB_PORT": "tcp://[fd00::20]:5432",
            "DB_PORT_5432_TCP": "tcp://[fd00::20]:5432", "DB_PORT_5432_TCP_PROTO": "tcp", "DB_PORT_5432_TCP_PORT": "5432",
            "DB_PORT_5432_TCP_ADDR": "fd00::20",
            "WEB_API_SERVICE_HOST": "10.96.0.20", "WEB_API_SERVICE_PORT": "80", "WEB_API_SERVICE_PORT_HTTP": "80",
            "WEB_API_SERVICE_PORT_DNS_UDP": "53", "WEB_API_PORT": "tcp://10.96.0.20:80",
            "WEB_API_PORT_80_TCP": "tcp://10.96.0.20:80", "WEB_API_PORT_80_TCP_PROTO": "tcp", "WEB_API_PORT_80_TCP_PORT": "80",
            "WEB_API_PORT_80_TCP_ADDR": "10.96.0.20",
            "WEB_API_PORT_53_UDP": "udp://10.96.0.20:53", "WEB_API_PORT_53_UDP_PROTO": "udp", "WEB_API_PORT_53_UDP_PORT": "53",
            "WEB_API_PORT_53_UDP_ADDR": "10.96.0.20",
        ])
        #expect(ServiceEnvironment.variables([]).isEmpty)
    }
}
