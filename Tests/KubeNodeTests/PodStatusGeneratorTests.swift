import CRI
import Foundation
import KubeClient
import Testing
@testable import KubeNode

@Suite struct PodStatusGeneratorTests {
    let probes = ProbeResults(onChange: { _ in })
    let now = Date(timeIntervalSince1970: 1_700_000_500)

    func status(_ pod: Pod, _ state: RuntimeCalls.PodState, memory: PodMemory = PodMemory(firstSeen: Date(timeIntervalSince1970: 1_700_000_000)),
                nodeIP: String = "192.0.2.10") -> PodStatus {
        PodStatusGenerator.status(pod, state: state, memory: memory, probes: probes, nodeIP: nodeIP, now: now)
    }

    func condition(_ status: PodStatus, _ type: String) throws -> PodCondition {
        try #require(status.conditions?.first { $0.type == type })
    }

    func pod(_ policy: String? = nil, containers: [String] = ["app"], initContainers: [String]? = nil) -> Pod {
        makePod(containers: containers.map { makeContainer($0) }, initContainers: initContainers?.map { makeContainer($0) }) {
            $0.restartPolicy = policy
        }
    }

    @Test func aPodWhoseContainersAreNotCreatedYet() throws {
        let status = status(pod(), podState([]))
        #expect(status.phase == "Pending")
        #expect(status.hostIP == "192.0.2.10" && status.podIP == "10.88.0.5" && status.podIPs == [APIPodIP(ip: "10.88.0.5")])
        #expect(status.startTime == KubeTime.time(Date(timeIntervalSince1970: 1_700_000_000)))
        #expect(status.qosClass == "BestEffort")
        #expect(status.initContainerStatuses == nil)
        let app = try #require(status.containerStatuses?.first)
        #expect(app.name == "app" && app.image == "busybox:1.36" && !app.ready && app.restartCount == 0 && app.containerID == nil)
        #expect(app.state?.waiting?.reason == "ContainerCreating")
        #expect(status.conditions?.map(\.type) == ["Initialized", "Ready", "ContainersReady", "PodScheduled"])
        let initialized = try condition(status, "Initialized")
        #expect(initialized.status == "True" && initialized.reason == nil)
        for type in ["Ready", "ContainersReady"] {
            let c = try condition(status, type)
            #expect(c.status == "False" && c.reason == "ContainersNotReady" && c.message == "containers with unready status: [app]", "\(type)")
            #expect(c.lastTransitionTime == KubeTime.time(now))
        }
        #expect(try condition(status, "PodScheduled").status == "True")
    }

    @Test func aRunningPod() throws {
        let state = podState([criStatus("app", state: .containerRunning, startedAt: 1_700_000_100_000_000_000)])
        let status = status(makePod(containers: [makeContainer("app", requests: ["cpu": "100m"])]), state)
        #expect(status.phase == "Running")
        #expect(status.qosClass == "Burstable")
        let app = try #require(status.containerStatuses?.first)
        #expect(app.ready && app.started == true)
        #expect(app.containerID == "swiftlet://app-0" && app.imageID == "sha256:abc")
        #expect(app.state?.running?.startedAt == KubeTime.time(Date(timeIntervalSince1970: 1_700_000_100)))
        #expect(app.lastState == nil)
        for type in ["Initialized", "Ready", "ContainersReady"] {
            let c = try condition(status, type)
            #expect(c.status == "True" && c.reason == nil && c.message == nil, "\(type)")
        }
    }

    @Test func readinessAndStartupProbesGateReadiness() throws {
        var container = makeContainer("app")
        container.readinessProbe = Probe(exec: ExecAction(command: ["true"]))
        container.startupProbe = Probe(exec: ExecAction(command: ["true"]))
        let spec = makePod(containers: [container, makeContainer("side")])
        let state = podState([criStatus("app", state: .containerRunning), criStatus("side", state: .containerRunning)])
        var status = status(spec, state)
        var app = try #require(status.containerStatuses?.first)
        #expect(!app.ready && app.started == false)
        #expect(try condition(status, "Ready").message == "containers with unready status: [app]")
        #expect(status.phase == "Running")

        probes.set(containerID: "app-0", podUID: "uid-1") { $0.started = true }
        status = self.status(spec, state)
        app = try #require(status.containerStatuses?.first)
        #expect(app.started == true && !app.ready)

        probes.set(containerID: "app-0", podUID: "uid-1") { $0.ready = true }
        status = self.status(spec, state)
        #expect(status.containerStatuses?.allSatisfy(\.ready) == true)
        #expect(try condition(status, "Ready").status == "True")
    }

    @Test(arguments: [
        // policy, exit codes of the (exited) containers, phase
        ("Always", [0, 0], "Running"),
        ("Always", [1, 0], "Running"),
        ("OnFailure", [0, 0], "Succeeded"),
        ("OnFailure", [0, 1], "Running"),
        ("Never", [0, 0], "Succeeded"),
        ("Never", [0, 2], "Failed"),
    ] as [(String, [Int32], String)])
    func phaseOfExitedContainers(_ policy: String, _ exitCodes: [Int32], _ phase: String) {
        let names = exitCodes.indices.map { "c\($0)" }
        let state = podState(zip(names, exitCodes).map { criStatus($0, state: .containerExited, exitCode: $1) })
        #expect(status(pod(policy, containers: names), state).phase == phase)
    }

    @Test func phaseOfMixedStates() {
        let names = ["a", "b"]
        let runningAndExited = podState([criStatus("a", state: .containerRunning), criStatus("b", state: .containerExited, exitCode: 1)])
        for policy in ["Always", "OnFailure", "Never"] {
            #expect(status(pod(policy, containers: names), runningAndExited).phase == "Running", "\(policy)")
        }
        let runningAndNotStarted = podState([criStatus("a", state: .containerRunning)])
        #expect(status(pod("Never", containers: names), runningAndNotStarted).phase == "Pending")
        let created = podState([criStatus("a", state: .containerRunning), criStatus("b", state: .containerCreated)])
        #expect(status(pod("Always", containers: names), created).phase == "Pending")
        // A container waiting to restart after it exited counts as stopped, not waiting.
        var memory = PodMemory()
        memory.waiting["b"] = ("CrashLoopBackOff", "back-off 10s restarting failed container")
        let crashing = podState([criStatus("a", state: .containerExited), criStatus("b", state: .containerExited, exitCode: 1)])
        #expect(status(pod("Always", containers: names), crashing, memory: memory).phase == "Running")
    }

    @Test func crashLoopBackOffShowsTheLastTermination() throws {
        var memory = PodMemory()
        memory.waiting["app"] = ("CrashLoopBackOff", "back-off 20s restarting failed container")
        let state = podState([criStatus("app", attempt: 1, state: .containerExited, exitCode: 137, reason: "OOMKilled", message: "killed"),
                              criStatus("app", attempt: 0, state: .containerExited, exitCode: 1)])
        let app = try #require(status(pod(), state, memory: memory).containerStatuses?.first)
        #expect(app.state?.waiting == ContainerStateWaiting(reason: "CrashLoopBackOff", message: "back-off 20s restarting failed container"))
        let last = try #require(app.lastState?.terminated)
        #expect(last.exitCode == 137 && last.reason == "OOMKilled" && last.message == "killed" && last.containerID == "swiftlet://app-1")
        #expect(app.restartCount == 1 && !app.ready && app.started == false)
    }

    @Test func lastStateAndRestartCountFromInstances() throws {
        let state = podState([criStatus("app", attempt: 2, state: .containerRunning),
                              criStatus("app", attempt: 0, state: .containerExited, exitCode: 3),
                              criStatus("app", attempt: 1, state: .containerExited, exitCode: 0, startedAt: 1_700_000_010_000_000_000,
                                        finishedAt: 1_700_000_020_000_000_000)])
        let app = try #require(status(pod(), state).containerStatuses?.first)
        #expect(app.restartCount == 2)
        #expect(app.containerID == "swiftlet://app-2" && app.state?.running != nil)
        let last = try #require(app.lastState?.terminated)
        #expect(last.exitCode == 0 && last.reason == "Completed")
        #expect(last.startedAt == KubeTime.time(Date(timeIntervalSince1970: 1_700_000_010)))
        #expect(last.finishedAt == KubeTime.time(Date(timeIntervalSince1970: 1_700_000_020)))
    }

    @Test func terminatedReasons() throws {
        let state = podState([criStatus("a", state: .containerExited, exitCode: 0), criStatus("b", state: .containerExited, exitCode: 2),
                              criStatus("c", state: .containerExited, exitCode: 137, reason: "OOMKilled")])
        let statuses = try #require(status(pod("Never", containers: ["a", "b", "c"]), state).containerStatuses)
        #expect(statuses.map { $0.state?.terminated?.reason } == ["Completed", "Error", "OOMKilled"])
        #expect(statuses.map { $0.state?.terminated?.exitCode } == [0, 2, 137])
        #expect(statuses[0].state?.terminated?.message == nil)
    }

    @Test func waitingReasonsFromTheLastAttempt() throws {
        var memory = PodMemory()
        memory.waiting["app"] = ("ErrImagePull", "failed to pull image \"nope\": not found")
        let app = try #require(status(pod(), podState([]), memory: memory).containerStatuses?.first)
        #expect(app.state?.waiting == ContainerStateWaiting(reason: "ErrImagePull", message: "failed to pull image \"nope\": not found"))
    }

    @Test func restartCountSurvivesANewSandbox() throws {
        var spec = pod()
        let terminated = APIContainerState(terminated: ContainerStateTerminated(exitCode: 1, reason: "Error"))
        spec.status = PodStatus(containerStatuses: [APIContainerStatus(name: "app", lastState: terminated, restartCount: 4, image: "busybox:1.36")])
        let app = try #require(status(spec, podState([])).containerStatuses?.first)
        #expect(app.restartCount == 4 && app.lastState == terminated)
        #expect(app.state?.waiting?.reason == "ContainerCreating")
    }

    @Test func initContainers() throws {
        let spec = pod("Always", containers: ["app"], initContainers: ["setup", "migrate"])
        // The first init container runs.
        let running = status(spec, podState([criStatus("setup", state: .containerRunning)]))
        #expect(running.phase == "Pending")
        let initialized = try condition(running, "Initialized")
        #expect(initialized.status == "False" && initialized.reason == "ContainersNotInitialized")
        #expect(initialized.message == "containers with incomplete status: [setup migrate]")
        #expect(running.initContainerStatuses?.map(\.name) == ["setup", "migrate"])
        #expect(running.initContainerStatuses?.first?.state?.running != nil)
        #expect(running.initContainerStatuses?.first?.ready == false)
        #expect(running.initContainerStatuses?.last?.state?.waiting?.reason == "PodInitializing")
        #expect(running.containerStatuses?.first?.state?.waiting?.reason == "PodInitializing")

        // One done, the next pending.
        let half = status(spec, podState([criStatus("setup", state: .containerExited, exitCode: 0)]))
        #expect(try condition(half, "Initialized").message == "containers with incomplete status: [migrate]")

        // All done: initialized, the app runs.
        let done = status(spec, podState([criStatus("setup", state: .containerExited), criStatus("migrate", state: .containerExited),
                                          criStatus("app", state: .containerRunning)]))
        #expect(done.phase == "Running")
        #expect(try condition(done, "Initialized").status == "True")
        #expect(try condition(done, "Ready").status == "True")
        #expect(done.initContainerStatuses?.allSatisfy { $0.state?.terminated?.reason == "Completed" } == true)
    }

    @Test func aFailedInitContainer() {
        let failed = podState([criStatus("setup", state: .containerExited, exitCode: 1)])
        #expect(status(pod("Never", initContainers: ["setup"]), failed).phase == "Failed")
        #expect(status(pod("OnFailure", initContainers: ["setup"]), failed).phase == "Pending")
        #expect(status(pod("Always", initContainers: ["setup"]), failed).phase == "Pending")
    }

    @Test
    func succeededInitContainersAreReady() throws {
        let spec = pod("Always", containers: ["app"], initContainers: ["setup"])
        let done = status(spec, podState([criStatus("setup", state: .containerExited), criStatus("app", state: .containerRunning)]))
        #expect(done.initContainerStatuses?.first?.ready == true)
    }

    @Test func completedPodConditions() throws {
        let succeeded = status(pod("Never"), podState([criStatus("app", state: .containerExited)]))
        #expect(succeeded.phase == "Succeeded")
        for type in ["Ready", "ContainersReady"] {
            let c = try condition(succeeded, type)
            #expect(c.status == "False" && c.reason == "PodCompleted" && c.message == nil, "\(type)")
        }
        #expect(try condition(succeeded, "Initialized").status == "True")
    }

    @Test
    func failedPodConditionsAsTheKubelet() throws {
        let failed = status(pod("Never"), podState([criStatus("app", state: .containerExited, exitCode: 1)]))
        #expect(failed.phase == "Failed")
        let ready = try condition(failed, "ContainersReady")
        #expect(ready.reason == "ContainersNotReady" && ready.message == "containers with unready status: [app]")
        #expect(try condition(failed, "Ready").reason == "ContainersNotReady")

        let initFailed = status(pod("Never", initContainers: ["setup"]), podState([criStatus("setup", state: .containerExited, exitCode: 1)]))
        #expect(initFailed.phase == "Failed")
        let initialized = try condition(initFailed, "Initialized")
        #expect(initialized.status == "False" && initialized.reason == "ContainersNotInitialized")

        let succeeded = status(pod("Never"), podState([criStatus("app", state: .containerExited)]))
        #expect(try condition(succeeded, "Initialized").reason == "PodCompleted")
    }

    @Test
    func aTerminalPhaseIsKept() {
        var spec = pod("Never")
        spec.status = PodStatus(phase: "Succeeded")
        #expect(status(spec, podState([])).phase == "Succeeded")
        spec.status = PodStatus(phase: "Failed")
        #expect(status(spec, podState([criStatus("app", state: .containerRunning)])).phase == "Failed")
    }

    @Test func transitionTimesAndOtherConditionsAreKept() throws {
        let earlier = "2023-11-14T22:00:00Z"
        var spec = makePod(containers: [makeContainer()]) { $0.readinessGates = [PodReadinessGate(conditionType: "example.com/lb")] }
        spec.status = PodStatus(conditions: [
            PodCondition(type: "PodScheduled", status: "True", lastTransitionTime: earlier),
            PodCondition(type: "example.com/lb", status: "True", lastTransitionTime: earlier),
            PodCondition(type: "Ready", status: "True", lastTransitionTime: earlier),
            PodCondition(type: "ContainersReady", status: "False", lastTransitionTime: earlier),
            PodCondition(type: "Initialized", status: "True", lastTransitionTime: earlier),
        ], startTime: earlier)
        let status = status(spec, podState([criStatus("app", state: .containerRunning)]))
        #expect(status.startTime == earlier)
        #expect(try condition(status, "Ready").lastTransitionTime == earlier)  // still True
        #expect(try condition(status, "Initialized").lastTransitionTime == earlier)
        let containersReady = try condition(status, "ContainersReady")
        #expect(containersReady.status == "True" && containersReady.lastTransitionTime == KubeTime.time(now))  // changed
        #expect(try condition(status, "PodScheduled") == PodCondition(type: "PodScheduled", status: "True", lastTransitionTime: earlier))
        #expect(try condition(status, "example.com/lb").status == "True")
        #expect(status.conditions?.filter { $0.type == "PodScheduled" }.count == 1)
    }

    @Test func readinessGatesHoldReadyBack() throws {
        var spec = makePod(containers: [makeContainer()]) { $0.readinessGates = [PodReadinessGate(conditionType: "example.com/lb")] }
        let state = podState([criStatus("app", state: .containerRunning)])
        let missing = status(spec, state)
        #expect(try condition(missing, "Ready").status == "False")
        #expect(try condition(missing, "ContainersReady").status == "True")
        spec.status = PodStatus(conditions: [PodCondition(type: "example.com/lb", status: "False")])
        #expect(try condition(status(spec, state), "Ready").status == "False")
        spec.status = PodStatus(conditions: [PodCondition(type: "example.com/lb", status: "True")])
        #expect(try condition(status(spec, state), "Ready").status == "True")
    }

    @Test
    func readinessGateReasonAndMessage() throws {
        var spec = makePod(containers: [makeContainer()]) { $0.readinessGates = [PodReadinessGate(conditionType: "example.com/lb")] }
        let state = podState([criStatus("app", state: .containerRunning)])
        let missing = try condition(status(spec, state), "Ready")
        #expect(missing.reason == "ReadinessGatesNotReady")
        #expect(missing.message == "corresponding condition of pod readiness gate \"example.com/lb\" does not exist.")
        spec.status = PodStatus(conditions: [PodCondition(type: "example.com/lb", status: "False")])
        #expect(try condition(status(spec, state), "Ready").message == "the status of pod readiness gate \"example.com/lb\" is not \"True\", but False")
    }

    @Test func hostNetworkPodsHaveTheNodesIP() {
        let spec = makePod(containers: [makeContainer()]) { $0.hostNetwork = true }
        let status = status(spec, podState([criStatus("app", state: .containerRunning)], ip: ""), nodeIP: "192.0.2.44")
        #expect(status.podIP == "192.0.2.44" && status.podIPs == [APIPodIP(ip: "192.0.2.44")] && status.hostIP == "192.0.2.44")
    }

    @Test func dualStackPodIPs() {
        var state = podState([criStatus("app", state: .containerRunning)])
        state.sandboxStatus?.network?.additionalIps = [CRI.PodIP(ip: "fd00::5")]
        #expect(status(pod(), state).podIPs == [APIPodIP(ip: "10.88.0.5"), APIPodIP(ip: "fd00::5")])
        #expect(status(pod(), RuntimeCalls.PodState()).podIP == nil)
    }

    @Test func rejectedPodsFailWithTheReason() {
        var memory = PodMemory()
        memory.rejected = ("OutOfcpu", "Pod Node didn't have enough resource: cpu, requested: 4000, used: 0, capacity: 2000")
        let status = status(pod(), podState([]), memory: memory)
        #expect(status.phase == "Failed" && status.reason == "OutOfcpu")
        #expect(status.message == "Pod Node didn't have enough resource: cpu, requested: 4000, used: 0, capacity: 2000")
        #expect(status.containerStatuses == nil && status.conditions == nil)
    }

    @Test func sandboxErrorsAreTheMessageUntilASandboxIsReady() {
        var memory = PodMemory()
        memory.sandboxError = "Failed to create pod sandbox: no network"
        #expect(status(pod(), RuntimeCalls.PodState(), memory: memory).message == "Failed to create pod sandbox: no network")
        #expect(status(pod(), podState([]), memory: memory).message == nil)
    }
}
