import CRI
import Logging
import SwiftletConfig
import Testing
@testable import SwiftletRuntime

@Suite("runtime service handler")
struct RuntimeServiceHandlerTests {
    func handler(_ configuration: SwiftletConfiguration = SwiftletConfiguration()) -> RuntimeServiceHandler {
        RuntimeServiceHandler(configuration: configuration, readiness: ReadinessProbe(configuration: configuration),
                              logger: Logger(label: "test"))
    }

    func context(_ version: APIVersion, _ method: String) -> CallContext {
        CallContext(apiVersion: version, method: "/\(version.package).RuntimeService/\(method)")
    }

    @Test("Version answers with the API version the client called", arguments: APIVersion.allCases)
    func version(api: APIVersion) async throws {
        let response = try await handler().version(VersionRequest(version: "0.1.0"), context: context(api, "Version"))
        #expect(response.runtimeName == "swiftlet")
        #expect(response.runtimeApiVersion == api.rawValue)
        #expect(response.version == "0.1.0")
        #expect(response.runtimeVersion == BuildInfo.version)
    }

    @Test("RuntimeConfig reports the configured cgroup driver")
    func runtimeConfig() async throws {
        #expect(try await handler().runtimeConfig(RuntimeConfigRequest(), context: context(.v1, "RuntimeConfig")).linux?.cgroupDriver == .cgroupfs)
        var systemd = SwiftletConfiguration()
        systemd.cgroupDriver = .systemd
        #expect(try await handler(systemd).runtimeConfig(RuntimeConfigRequest(), context: context(.v1, "RuntimeConfig")).linux?.cgroupDriver == .systemd)
    }

    @Test("UpdateRuntimeConfig keeps valid pod CIDRs (dual stack too) and rejects bad ones")
    func podCIDR() async throws {
        let service = handler()
        func update(_ cidr: String) async throws {
            _ = try await service.updateRuntimeConfig(
                UpdateRuntimeConfigRequest(runtimeConfig: RuntimeConfig(networkConfig: NetworkConfig(podCidr: cidr))),
                context: context(.v1, "UpdateRuntimeConfig"))
        }
        try await update("10.244.1.0/24,fd00:10:244:1::/64")
        #expect(service.podCIDR == ["10.244.1.0/24", "fd00:10:244:1::/64"])
        try await update("")  // the kubelet's "not known yet": nothing changes
        #expect(service.podCIDR == ["10.244.1.0/24", "fd00:10:244:1::/64"])
        for bad in ["10.244.1.0", "10.244.1.0/33", "banana/8", "fd00::/129"] {
            await #expect(throws: CRIError.self) { try await update(bad) }
        }
        #expect(service.podCIDR == ["10.244.1.0/24", "fd00:10:244:1::/64"])
    }

    @Test("methods not implemented answer UNIMPLEMENTED naming the method called")
    func unimplemented() async {
        await #expect(throws: CRIError.unimplemented("/runtime.v1alpha2.RuntimeService/CheckpointContainer")) {
            _ = try await handler().checkpointContainer(CheckpointContainerRequest(), context: context(.v1alpha2, "CheckpointContainer"))
        }
    }

    @Test("without a pod runtime, pod methods answer UNAVAILABLE after checking the request")
    func withoutPods() async {
        await #expect(throws: CRIError.invalidArgument("RunPodSandbox needs a config")) {
            _ = try await handler().runPodSandbox(RunPodSandboxRequest(), context: context(.v1, "RunPodSandbox"))
        }
        await #expect(throws: CRIError(.unavailable, "this swiftlet runs without a container runtime")) {
            _ = try await handler().listContainers(ListContainersRequest(), context: context(.v1, "ListContainers"))
        }
    }

    @Test("GetContainerEvents streams published events until cancelled")
    func events() async throws {
        let service = handler()
        let received = AsyncStream.makeStream(of: ContainerEventResponse.self)
        let stream = Task {
            try await service.getContainerEvents(GetEventsRequest(), context: context(.v1, "GetContainerEvents"),
                                                 responses: ResponseStream { received.continuation.yield($0) })
        }
        while service.events.subscriberCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
        service.events.publish(ContainerEventResponse(containerId: "c1", containerEventType: .containerStartedEvent))
        var iterator = received.stream.makeAsyncIterator()
        #expect(await iterator.next()?.containerId == "c1")
        stream.cancel()
        await #expect(throws: CancellationError.self) { try await stream.value }
        #expect(service.events.subscriberCount == 0)
    }
}
