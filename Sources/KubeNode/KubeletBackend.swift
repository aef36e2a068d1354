import CRI
import Foundation
import KubeClient
import KubeletServer
import ResourceLedger

/// What the kubelet API serves on this node: pods from the pod workers, logs from the CRI log
/// files, stats from the runtime's CRI stats in the kubelet's summary and Prometheus shapes,
/// exec/attach/port-forward URLs from the runtime's streaming server.
struct KubeletBackend: KubeletAPIBackend {
    let workers: PodWorkers
    let calls: RuntimeCalls
    let identity: NodeIdentity
    let resources: NodeResources
    let podLogsDir: String
    let loopHealthy: @Sendable () -> Bool

    // MARK: Pods

    func pods() async throws -> [UInt8] {
        try Self.podList(workers.pods)
    }

    func runningPods() async throws -> [UInt8] {
        let sandboxes = try await calls.runtime.listPodSandbox(
            ListPodSandboxRequest(filter: PodSandboxFilter(state: PodSandboxStateValue(state: .sandboxReady))),
            context: RuntimeCalls.context("ListPodSandbox")).items
        let containers = try await calls.runtime.listContainers(
            ListContainersRequest(filter: ContainerFilter(state: ContainerStateValue(state: .containerRunning))),
            context: RuntimeCalls.context("ListContainers")).containers
        let pods = sandboxes.map { sandbox in
            let mine = containers.filter { $0.podSandboxId == sandbox.id }
            var pod = Pod(metadata: ObjectMeta(name: sandbox.metadata?.name, namespace: sandbox.metadata?.namespace))
            pod.metadata.uid = sandbox.metadata?.uid
            pod.spec = PodSpec(containers: mine.map { ContainerSpec(name: $0.metadata?.name ?? "", image: $0.image?.image) })
            return pod
        }
        return try Self.podList(pods)
    }

    static func podList(_ pods: [Pod]) throws -> [UInt8] {
        struct PodList: Encodable {
            var kind = "PodList"
            var apiVersion = "v1"
            var metadata: [String: String] = [:]
            var items: [Pod]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array(try encoder.encode(PodList(items: pods.sorted { $0.fullName < $1.fullName })))
    }

    /// The pod named so, or the kubelet's 404.
    func pod(_ namespace: String, _ name: String, uid: String? = nil) throws(KubeletAPIError) -> Pod {
        guard let pod = workers.pods.first(where: { $0.metadata.namespace == namespace && $0.metadata.name == name }),
              uid == nil || uid == pod.uid else {
            throw KubeletAPIError.notFound("pod \"\(name)\" not found")
        }
        return pod
    }

    /// The runtime's container of `container` in the pod (newest instance, or the one before for `previous`).
    func containerID(_ pod: Pod, _ container: String, previous: Bool = false) async throws -> CRI.ContainerStatus {
        let state = try await calls.podState(uid: pod.uid)
        let instances = state.instances(of: container)
        guard let found = previous ? (instances.count > 1 ? instances[1] : nil) : instances.first else {
            if previous {
                throw KubeletAPIError.badRequest("previous terminated container \"\(container)\" in pod \"\(pod.metadata.name ?? "")\" not found")
            }
            throw KubeletAPIError.badRequest("container \"\(container)\" in pod \"\(pod.metadata.name ?? "")\" is waiting to start: ContainerCreating")
        }
        return found
    }

    // MARK: Logs

    func containerLogs(_ request: ContainerLogsRequest) async throws -> AsyncThrowingStream<[UInt8], any Error> {
        let pod = try pod(request.namespace, request.pod)
        guard pod.spec?.containers.contains(where: { $0.name == request.container }) == true
            || pod.spec?.initContainers?.contains(where: { $0.name == request.container }) == true else {
            throw KubeletAPIError.badRequest("container \(request.container) is not valid for pod \(request.pod)")
        }
        let status = try await containerID(pod, request.container, previous: request.previous)
        let path = "\(podLogsDir)/\(request.namespace)_\(request.pod)_\(pod.uid)/\(request.container)/\(status.metadata?.attempt ?? 0).log"
        let id = status.id
        let calls = calls
        let reader = ContainerLogReader(path: status.logPath.isEmpty ? path : status.logPath, request: request) {
            let current = try? await calls.runtime.containerStatus(ContainerStatusRequest(containerId: id),
                                                                   context: RuntimeCalls.context("ContainerStatus")).status
            return current?.state == .containerRunning
        }
        return reader.stream()
    }

    // MARK: Streaming

    func exec(_ request: ContainerStreamRequest) async throws -> String {
        let pod = try pod(request.namespace, request.pod, uid: request.uid)
        let container = try await containerID(pod, request.container)
        return try await calls.runtime.exec(
            ExecRequest(containerId: container.id, cmd: request.command, tty: request.tty, stdin: request.stdin, stdout: request.stdout,
                        stderr: request.stderr), context: RuntimeCalls.context("Exec")).url
    }

    func attach(_ request: ContainerStreamRequest) async throws -> String {
        let pod = try pod(request.namespace, request.pod, uid: request.uid)
        let container = try await containerID(pod, request.container)
        return try await calls.runtime.attach(
            AttachRequest(containerId: container.id, stdin: request.stdin, tty: request.tty, stdout: request.stdout, stderr: request.stderr),
            context: RuntimeCalls.context("Attach")).url
    }

    func portForward(_ request: KubeletServer.PortForwardRequest) async throws -> String {
        let pod = try pod(request.namespace, request.pod, uid: request.uid)
        let state = try await calls.podState(uid: pod.uid)
        guard let sandbox = state.readySandbox else { throw KubeletAPIError.notFound("pod not found (\"\(request.pod)_\(request.namespace)\")") }
        return try await calls.runtime.portForward(CRI.PortForwardRequest(podSandboxId: sandbox.id, port: request.ports),
                                                   context: RuntimeCalls.context("PortForward")).url
    }

    func run(_ request: RunInContainerRequest) async throws -> [UInt8] {
        let pod = try pod(request.namespace, request.pod, uid: request.uid)
        let container = try await containerID(pod, request.container)
        let response = try await calls.runtime.execSync(ExecSyncRequest(containerId: container.id, cmd: request.command, timeout: 0),
                                                        context: RuntimeCalls.context("ExecSync"))
        return response.stdout + response.stderr
    }

    // MARK: Stats

    func statsSummary(onlyCPUAndMemory: Bool) async throws -> [UInt8] {
        let stats = try await calls.runtime.listPodSandboxStats(ListPodSandboxStatsRequest(), context: RuntimeCalls.context("ListPodSandboxStats")).stats
        let now = KubeTime.time(Date())
        func cpu(_ usage: CpuUsage?) -> JSONValue {
            .object(["time": .string(now), "usageNanoCores": .int(Int64(usage?.usageNanoCores?.value ?? 0)),
                     "usageCoreNanoSeconds": .int(Int64(usage?.usageCoreNanoSeconds?.value ?? 0))])
        }
        func memory(_ usage: MemoryUsage?) -> JSONValue {
            var fields: [String: JSONValue] = ["time": .string(now), "workingSetBytes": .int(Int64(usage?.workingSetBytes?.value ?? 0)),
                                               "usageBytes": .int(Int64(usage?.usageBytes?.value ?? 0)),
                                               "rssBytes": .int(Int64(usage?.rssBytes?.value ?? 0)),
                                               "pageFaults": .int(Int64(usage?.pageFaults?.value ?? 0)),
                                               "majorPageFaults": .int(Int64(usage?.majorPageFaults?.value ?? 0))]
            if let available = usage?.availableBytes { fields["availableBytes"] = .int(Int64(available.value)) }
            return .object(fields)
        }
        let pods: [JSONValue] = stats.map { pod in
            let metadata = pod.attributes?.metadata
            var entry: [String: JSONValue] = [
                "podRef": .object(["name": .string(metadata?.name ?? ""), "namespace": .string(metadata?.namespace ?? ""),
                                   "uid": .string(metadata?.uid ?? "")]),
                "startTime": .string(now),
                "cpu": cpu(pod.linux?.cpu), "memory": memory(pod.linux?.memory),
                "containers": .array((pod.linux?.containers ?? []).map { container in
                    .object(["name": .string(container.attributes?.metadata?.name ?? ""), "startTime": .string(now),
                             "cpu": cpu(container.cpu), "memory": memory(container.memory)])
                }),
            ]
            if !onlyCPUAndMemory, let network = pod.linux?.network?.defaultInterface {
                entry["network"] = .object(["time": .string(now), "name": .string(network.name),
                                            "rxBytes": .int(Int64(network.rxBytes?.value ?? 0)), "txBytes": .int(Int64(network.txBytes?.value ?? 0)),
                                            "rxErrors": .int(Int64(network.rxErrors?.value ?? 0)), "txErrors": .int(Int64(network.txErrors?.value ?? 0))])
            }
            return .object(entry)
        }
        let nodeCPU = pods.reduce(Int64(0)) { $0 + ($1["cpu"]?["usageNanoCores"]?.intValue ?? 0) }
        let nodeMemory = NodeMemory.read()
        let summary: JSONValue = [
            "node": .object([
                "nodeName": .string(identity.name), "startTime": .string(now),
                "cpu": .object(["time": .string(now), "usageNanoCores": .int(nodeCPU), "usageCoreNanoSeconds": .int(NodeMemory.cpuNanoseconds())]),
                "memory": .object(["time": .string(now), "availableBytes": .int(nodeMemory.available),
                                   "workingSetBytes": .int(nodeMemory.total - nodeMemory.available),
                                   "usageBytes": .int(nodeMemory.total - nodeMemory.free)]),
            ]),
            "pods": .array(pods),
        ]
        return Array(try JSONEncoder().encode(summary))
    }

    func metrics(_ endpoint: KubeletMetricsEndpoint) async throws -> [UInt8] {
        var text = ""
        let pods = workers.pods
        switch endpoint {
        case .resource, .cadvisor:
            let stats = try await calls.runtime.listContainerStats(ListContainerStatsRequest(), context: RuntimeCalls.context("ListContainerStats")).stats
            text += "# HELP container_cpu_usage_seconds_total [ALPHA] Cumulative cpu time consumed by the container in core-seconds\n"
            text += "# TYPE container_cpu_usage_seconds_total counter\n"
            for stat in stats {
                text += "container_cpu_usage_seconds_total{\(Self.labels(stat.attributes))} \(Double(stat.cpu?.usageCoreNanoSeconds?.value ?? 0) / 1e9)\n"
            }
            text += "# HELP container_memory_working_set_bytes [ALPHA] Current working set of the container in bytes\n"
            text += "# TYPE container_memory_working_set_bytes gauge\n"
            for stat in stats {
                text += "container_memory_working_set_bytes{\(Self.labels(stat.attributes))} \(stat.memory?.workingSetBytes?.value ?? 0)\n"
            }
            let memory = NodeMemory.read()
            text += "# HELP node_cpu_usage_seconds_total [ALPHA] Cumulative cpu time consumed by the node in core-seconds\n"
            text += "# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total \(Double(NodeMemory.cpuNanoseconds()) / 1e9)\n"
            text += "# HELP node_memory_working_set_bytes [ALPHA] Current working set of the node in bytes\n"
            text += "# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes \(memory.total - memory.available)\n"
        case .probes:
            text += "# HELP prober_probe_total [ALPHA] Cumulative number of a liveness, readiness or startup probe for a container by result.\n"
            text += "# TYPE prober_probe_total counter\n"
        case .metrics:
            let running = pods.filter { $0.status?.phase == "Running" }
            let containers = running.flatMap { $0.status?.containerStatuses ?? [] }.filter { $0.state?.running != nil }
            text += "# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox\n"
            text += "# TYPE kubelet_running_pods gauge\nkubelet_running_pods \(running.count)\n"
            text += "# HELP kubelet_running_containers [ALPHA] Number of containers currently running\n"
            text += "# TYPE kubelet_running_containers gauge\nkubelet_running_containers{container_state=\"running\"} \(containers.count)\n"
            text += "# HELP kubelet_node_name [ALPHA] The node's name. The count is always 1.\n"
            text += "# TYPE kubelet_node_name gauge\nkubelet_node_name{node=\"\(identity.name)\"} 1\n"
        }
        return Array(text.utf8)
    }

    static func labels(_ attributes: ContainerAttributes?) -> String {
        let labels = attributes?.labels ?? [:]
        return "container=\"\(attributes?.metadata?.name ?? "")\",namespace=\"\(labels[PodLabels.podNamespace] ?? "")\",pod=\"\(labels[PodLabels.podName] ?? "")\""
    }

    func spec() async throws -> [UInt8] {
        let info: JSONValue = [
            "num_cores": .int(Int64(ProcessInfo.processInfo.activeProcessorCount)),
            "memory_capacity": .int(resources.memoryCapacity),
            "machine_id": .string(identity.systemInfo.machineID), "system_uuid": .string(identity.systemInfo.systemUUID),
            "boot_id": .string(identity.systemInfo.bootID),
        ]
        return Array(try JSONEncoder().encode(info))
    }

    var healthChecks: [KubeletHealthCheck] {
        let healthy = loopHealthy
        return [KubeletHealthCheck(name: "syncloop") {
            guard healthy() else { throw KubeletAPIError.internalError("the pod loop has not run for 3 minutes") }
        }]
    }
}

/// The machine's memory and CPU time from /proc (the node part of the summary).
enum NodeMemory {
    static func read() -> (total: Int64, free: Int64, available: Int64) {
        var values: [String: Int64] = [:]
        if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " })
                if parts.count >= 2, let value = Int64(parts[1]) { values[String(parts[0])] = value * 1024 }
            }
        }
        return (values["MemTotal"] ?? 0, values["MemFree"] ?? 0, values["MemAvailable"] ?? 0)
    }

    static func cpuNanoseconds() -> Int64 {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return 0 }
        let fields = line.split(separator: " ").dropFirst().compactMap { Int64($0) }
        guard fields.count >= 3 else { return 0 }
        let busy = fields[0] + fields[1] + fields[2] + (fields.count > 5 ? fields[5] + fields[6] : 0) + (fields.count > 7 ? fields[7] : 0)
        return busy * 10_000_000  // USER_HZ 100
    }
}
