import CRI
import CRIProtobufC
import Containerizer
import Foundation
import StreamingServer

/// The pod sandbox, container, exec and stats methods: translations onto ``PodRuntime``. The
/// list calls are also answered encoded (the CRI server's way, see ``EncodedListResponses``).
extension RuntimeServiceHandler: EncodedListResponses {
    private func runtime() throws(CRIError) -> PodRuntime {
        guard let pods else { throw CRIError(.unavailable, "this swiftlet runs without a container runtime") }
        return pods
    }

    // MARK: Pod sandboxes

    public func runPodSandbox(_ request: RunPodSandboxRequest, context: CallContext) async throws -> RunPodSandboxResponse {
        guard let config = request.config else { throw CRIError.invalidArgument("RunPodSandbox needs a config") }
        let id = try await runtime().runPodSandbox(config, runtimeHandler: request.runtimeHandler)
        return RunPodSandboxResponse(podSandboxId: id)
    }

    public func stopPodSandbox(_ request: StopPodSandboxRequest, context: CallContext) async throws -> StopPodSandboxResponse {
        try await runtime().stopPodSandbox(try Self.required(request.podSandboxId, "pod sandbox id"))
        return StopPodSandboxResponse()
    }

    public func removePodSandbox(_ request: RemovePodSandboxRequest, context: CallContext) async throws -> RemovePodSandboxResponse {
        try await runtime().removePodSandbox(try Self.required(request.podSandboxId, "pod sandbox id"))
        return RemovePodSandboxResponse()
    }

    public func podSandboxStatus(_ request: PodSandboxStatusRequest, context: CallContext) async throws -> PodSandboxStatusResponse {
        let pods = try runtime()
        let sandbox = try pods.sandbox(try Self.required(request.podSandboxId, "pod sandbox id"))
        var response = PodSandboxStatusResponse(status: pods.status(of: sandbox))
        if request.verbose { response.info = pods.verboseInfo(of: sandbox) }
        if context.apiVersion == .v1 {
            let containers = pods.state.withLock { $0.containers.values.filter { $0.sandboxID == sandbox.id } }
            response.containersStatuses = containers.map(pods.status(of:))
            response.timestamp = nowNanoseconds()
        }
        return response
    }

    public func listPodSandbox(_ request: ListPodSandboxRequest, context: CallContext) async throws -> ListPodSandboxResponse {
        ListPodSandboxResponse(items: try runtime().listSandboxes(request.filter))
    }

    // MARK: Containers

    public func createContainer(_ request: CreateContainerRequest, context: CallContext) async throws -> CreateContainerResponse {
        guard let config = request.config else { throw CRIError.invalidArgument("CreateContainer needs a config") }
        let id = try await runtime().createContainer(sandboxID: try Self.required(request.podSandboxId, "pod sandbox id"), config: config)
        return CreateContainerResponse(containerId: id)
    }

    public func startContainer(_ request: StartContainerRequest, context: CallContext) async throws -> StartContainerResponse {
        try await runtime().startContainer(try Self.required(request.containerId, "container id"))
        return StartContainerResponse()
    }

    public func stopContainer(_ request: StopContainerRequest, context: CallContext) async throws -> StopContainerResponse {
        try await runtime().stopContainer(try Self.required(request.containerId, "container id"), timeout: request.timeout)
        return StopContainerResponse()
    }

    public func removeContainer(_ request: RemoveContainerRequest, context: CallContext) async throws -> RemoveContainerResponse {
        try await runtime().removeContainer(try Self.required(request.containerId, "container id"))
        return RemoveContainerResponse()
    }

    public func listContainers(_ request: ListContainersRequest, context: CallContext) async throws -> ListContainersResponse {
        ListContainersResponse(containers: try runtime().listContainers(request.filter))
    }

    public func listContainersEncoded(_ request: ListContainersRequest, context: CallContext) async throws -> [UInt8] {
        try runtime().listContainersEncoded(request.filter)
    }

    public func listPodSandboxEncoded(_ request: ListPodSandboxRequest, context: CallContext) async throws -> [UInt8] {
        try runtime().listSandboxesEncoded(request.filter)
    }

    public func containerStatus(_ request: ContainerStatusRequest, context: CallContext) async throws -> ContainerStatusResponse {
        let pods = try runtime()
        let record = try pods.container(try Self.required(request.containerId, "container id"))
        var response = ContainerStatusResponse(status: pods.status(of: record))
        if request.verbose { response.info = pods.verboseInfo(of: record) }
        return response
    }

    public func updateContainerResources(_ request: UpdateContainerResourcesRequest, context: CallContext) async throws -> UpdateContainerResourcesResponse {
        let id = try Self.required(request.containerId, "container id")
        guard let resources = request.linux else {
            throw CRIError.invalidArgument("UpdateContainerResources needs linux resources")
        }
        try await runtime().updateResources(id, resources)
        return UpdateContainerResourcesResponse()
    }

    public func reopenContainerLog(_ request: ReopenContainerLogRequest, context: CallContext) async throws -> ReopenContainerLogResponse {
        try await runtime().reopenLog(try Self.required(request.containerId, "container id"))
        return ReopenContainerLogResponse()
    }

    /// v1 only (runtime.v1alpha2 has no such method): a CRIU dump into an archive; the
    /// container runs on.
    public func checkpointContainer(_ request: CheckpointContainerRequest, context: CallContext) async throws -> CheckpointContainerResponse {
        guard context.apiVersion == .v1 else { throw CRIError.unimplemented(context.method) }
        try await runtime().checkpointContainer(try Self.required(request.containerId, "container id"), location: request.location,
                                                timeout: request.timeout)
        return CheckpointContainerResponse()
    }

    public func execSync(_ request: ExecSyncRequest, context: CallContext) async throws -> ExecSyncResponse {
        let result = try await runtime().execSync(try Self.required(request.containerId, "container id"), command: request.cmd, timeout: request.timeout)
        return ExecSyncResponse(stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode)
    }

    // MARK: Streaming

    private func streamingServer() throws(CRIError) -> StreamingServer {
        guard let streaming else { throw CRIError(.unavailable, "this swiftlet runs without a streaming server") }
        return streaming
    }

    /// Checks the container exists and runs before a URL is handed out (containerd does too).
    private func runningContainer(_ id: String) throws(CRIError) -> ContainerRecord {
        let pods = try runtime()
        let record = try pods.container(try Self.required(id, "container id"))
        guard pods.containerState(record) == .containerRunning else {
            throw CRIError(.failedPrecondition, "container \(id) is not running")
        }
        return record
    }

    private static func validateStreams(tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) throws(CRIError) {
        do {
            try StreamingServer.validate(tty: tty, stdin: stdin, stdout: stdout, stderr: stderr)
        } catch {
            throw CRIError.invalidArgument(error.message)
        }
    }

    public func exec(_ request: ExecRequest, context: CallContext) async throws -> ExecResponse {
        _ = try runningContainer(request.containerId)
        guard !request.cmd.isEmpty else { throw CRIError.invalidArgument("exec needs a command") }
        try Self.validateStreams(tty: request.tty, stdin: request.stdin, stdout: request.stdout, stderr: request.stderr)
        return ExecResponse(url: try streamingServer().execURL(containerID: request.containerId, command: request.cmd, tty: request.tty,
                                                               stdin: request.stdin, stdout: request.stdout, stderr: request.stderr))
    }

    public func attach(_ request: AttachRequest, context: CallContext) async throws -> AttachResponse {
        let record = try runningContainer(request.containerId)
        try Self.validateStreams(tty: request.tty, stdin: request.stdin, stdout: request.stdout, stderr: request.stderr)
        if request.stdin && !(record.launch.stdin ?? false) {
            throw CRIError.invalidArgument("container \(request.containerId) was not created with stdin")
        }
        return AttachResponse(url: try streamingServer().attachURL(containerID: request.containerId, tty: record.launch.tty,
                                                                   stdin: request.stdin, stdout: request.stdout, stderr: request.stderr))
    }

    public func portForward(_ request: PortForwardRequest, context: CallContext) async throws -> PortForwardResponse {
        let pods = try runtime()
        let sandbox = try pods.sandbox(try Self.required(request.podSandboxId, "pod sandbox id"))
        guard sandbox.state == .ready else { throw CRIError(.failedPrecondition, "pod sandbox \(sandbox.id) is not ready") }
        for port in request.port where !(1...65535).contains(port) {
            throw CRIError.invalidArgument("port \(port) is out of range")
        }
        return PortForwardResponse(url: try streamingServer().portForwardURL(podSandboxID: sandbox.id, port: request.port.first))
    }

    // MARK: Stats

    public func containerStats(_ request: ContainerStatsRequest, context: CallContext) async throws -> ContainerStatsResponse {
        let pods = try runtime()
        let record = try pods.container(try Self.required(request.containerId, "container id"))
        return ContainerStatsResponse(stats: await Offload.run { pods.stats(of: record) })
    }

    public func listContainerStats(_ request: ListContainerStatsRequest, context: CallContext) async throws -> ListContainerStatsResponse {
        let pods = try runtime()
        let filter = request.filter
        return ListContainerStatsResponse(stats: await Offload.run { pods.listStats(filter) })
    }

    public func podSandboxStats(_ request: PodSandboxStatsRequest, context: CallContext) async throws -> PodSandboxStatsResponse {
        let pods = try runtime()
        let sandbox = try pods.sandbox(try Self.required(request.podSandboxId, "pod sandbox id"))
        return PodSandboxStatsResponse(stats: await Offload.run { pods.stats(of: sandbox) })
    }

    public func listPodSandboxStats(_ request: ListPodSandboxStatsRequest, context: CallContext) async throws -> ListPodSandboxStatsResponse {
        let pods = try runtime()
        let filter = request.filter
        return ListPodSandboxStatsResponse(stats: await Offload.run { pods.listSandboxStats(filter) })
    }

    public func listMetricDescriptors(_ request: ListMetricDescriptorsRequest, context: CallContext) async throws -> ListMetricDescriptorsResponse {
        ListMetricDescriptorsResponse(descriptors: try runtime().listMetricDescriptors())
    }

    public func listPodSandboxMetrics(_ request: ListPodSandboxMetricsRequest, context: CallContext) async throws -> ListPodSandboxMetricsResponse {
        let pods = try runtime()
        return ListPodSandboxMetricsResponse(podMetrics: await Offload.run { pods.listPodSandboxMetrics() })
    }

    static func required(_ value: String, _ what: String) throws(CRIError) -> String {
        guard !value.isEmpty else { throw CRIError.invalidArgument("\(what) is required") }
        return value
    }
}
