import CRI
import Foundation
import KubeClient

/// The API status of a pod from what the runtime has, as the kubelet's
/// `generateAPIPodStatus`/`getPhase`: phase, conditions (Initialized, ContainersReady, Ready,
/// PodScheduled kept), IPs, start time, QoS class and each container's state, last state,
/// restart count, readiness, image and image ID.
enum PodStatusGenerator {
    static func status(_ pod: Pod, state: RuntimeCalls.PodState, memory: PodMemory, probes: ProbeResults, nodeIP: String,
                       now: Date = Date()) -> PodStatus {
        var status = PodStatus()
        let previous = pod.status
        status.hostIP = nodeIP
        status.startTime = previous?.startTime ?? KubeTime.time(memory.firstSeen)
        status.qosClass = QOSClass.of(pod).rawValue
        if let rejected = memory.rejected {
            status.phase = "Failed"
            status.reason = rejected.reason
            status.message = rejected.message
            return status
        }
        let ips = state.podIPs
        if pod.spec?.hostNetwork == true {
            status.podIP = nodeIP
            status.podIPs = [APIPodIP(ip: nodeIP)]
        } else if !ips.isEmpty {
            status.podIP = ips[0]
            status.podIPs = ips.map { APIPodIP(ip: $0) }
        }
        let initSpecs = pod.spec?.initContainers ?? []
        let specs = pod.spec?.containers ?? []
        status.initContainerStatuses = initSpecs.isEmpty ? nil
            : initSpecs.map { containerStatus($0, state: state, memory: memory, probes: probes, isInit: true, previous: previous?.initContainerStatuses) }
        let initialized = initSpecs.allSatisfy { spec in
            state.current(spec.name).map { $0.state == .containerExited && $0.exitCode == 0 } ?? false
        }
        status.containerStatuses = specs.map {
            containerStatus($0, state: state, memory: memory, probes: probes, isInit: false, initializing: !initialized,
                            previous: previous?.containerStatuses)
        }
        status.phase = phase(pod, initialized: initialized, statuses: status.containerStatuses ?? [], initStatuses: status.initContainerStatuses ?? [])
        // A terminal phase the API server holds is never left (the kubelet's rule).
        if let held = previous?.phase, held == "Succeeded" || held == "Failed" { status.phase = held }
        let containersReady = (status.containerStatuses ?? []).allSatisfy(\.ready)
        func condition(_ type: String, _ isTrue: Bool, reason: String?, message: String?) -> PodCondition {
            let value = isTrue ? "True" : "False"
            let old = previous?.conditions?.first { $0.type == type }
            let transition = old?.status == value ? (old?.lastTransitionTime ?? KubeTime.time(now)) : KubeTime.time(now)
            return PodCondition(type: type, status: value, lastTransitionTime: transition, reason: isTrue ? nil : reason,
                                message: isTrue ? nil : message)
        }
        let unready = (status.containerStatuses ?? []).filter { !$0.ready }.map(\.name)
        let unreadyMessage = "containers with unready status: [\(unready.joined(separator: " "))]"
        let succeeded = status.phase == "Succeeded"
        let failedInit = initSpecs.contains { spec in
            state.current(spec.name).map { $0.state == .containerExited && $0.exitCode != 0 } ?? false
        }
        let pendingInit = initSpecs.filter { spec in !(state.current(spec.name).map { $0.state == .containerExited && $0.exitCode == 0 } ?? false) }
        // Readiness gates (GeneratePodReadyCondition): each gate's condition must be True.
        var gateMessages: [String] = []
        for gate in pod.spec?.readinessGates ?? [] {
            guard let gateCondition = previous?.conditions?.first(where: { $0.type == gate.conditionType }) else {
                gateMessages.append("corresponding condition of pod readiness gate \"\(gate.conditionType)\" does not exist.")
                continue
            }
            if gateCondition.status != "True" {
                gateMessages.append("the status of pod readiness gate \"\(gate.conditionType)\" is not \"True\", but \(gateCondition.status)")
            }
        }
        // Initialized: True once every init container succeeded (PodCompleted when the pod has).
        var initializedCondition = condition("Initialized", (initialized || succeeded) && !failedInit, reason: "ContainersNotInitialized",
                                             message: "containers with incomplete status: [\(pendingInit.map(\.name).joined(separator: " "))]")
        if succeeded { initializedCondition.reason = "PodCompleted" }
        let containersReadyCondition = condition("ContainersReady", containersReady && !succeeded,
                                                 reason: succeeded ? "PodCompleted" : "ContainersNotReady",
                                                 message: succeeded ? nil : unreadyMessage)
        var readyCondition: PodCondition
        if succeeded || !containersReady {
            readyCondition = condition("Ready", false, reason: succeeded ? "PodCompleted" : "ContainersNotReady",
                                       message: succeeded ? nil : unreadyMessage)
        } else {
            readyCondition = condition("Ready", gateMessages.isEmpty, reason: "ReadinessGatesNotReady",
                                       message: gateMessages.joined(separator: ", "))
        }
        var conditions = [initializedCondition, readyCondition, containersReadyCondition]
        // Conditions others own (PodScheduled, readiness gates) are kept as they are.
        for old in previous?.conditions ?? [] where !["Initialized", "Ready", "ContainersReady"].contains(old.type) {
            conditions.append(old)
        }
        if !conditions.contains(where: { $0.type == "PodScheduled" }) {
            conditions.append(PodCondition(type: "PodScheduled", status: "True", lastTransitionTime: status.startTime))
        }
        status.conditions = conditions
        if let error = memory.sandboxError, state.readySandbox == nil, status.phase != "Succeeded", status.phase != "Failed" {
            status.message = error
        }
        return status
    }

    /// The kubelet's `getPhase`.
    static func phase(_ pod: Pod, initialized: Bool, statuses: [APIContainerStatus], initStatuses: [APIContainerStatus]) -> String {
        let policy = pod.spec?.restartPolicy ?? "Always"
        if !initialized {
            let failedInit = initStatuses.contains { ($0.state?.terminated?.exitCode ?? 0) != 0 && $0.state?.terminated != nil }
            return failedInit && policy == "Never" ? "Failed" : "Pending"
        }
        var waiting = 0, running = 0, stopped = 0, succeeded = 0
        for status in statuses {
            if status.state?.running != nil {
                running += 1
            } else if let terminated = status.state?.terminated {
                stopped += 1
                if terminated.exitCode == 0 { succeeded += 1 }
            } else if status.state?.waiting != nil {
                if status.lastState?.terminated != nil { stopped += 1 } else { waiting += 1 }
            } else {
                waiting += 1
            }
        }
        let total = statuses.count
        if waiting > 0 { return "Pending" }
        if running > 0 { return "Running" }
        if running == 0, stopped > 0, stopped == total {
            if policy == "Always" { return "Running" }
            if succeeded == stopped { return "Succeeded" }
            return policy == "Never" ? "Failed" : "Running"
        }
        return "Pending"
    }

    static func containerStatus(_ spec: ContainerSpec, state: RuntimeCalls.PodState, memory: PodMemory, probes: ProbeResults,
                                isInit: Bool, initializing: Bool = false, previous: [APIContainerStatus]?) -> APIContainerStatus {
        let instances = state.instances(of: spec.name)
        let latest = instances.first
        var status = APIContainerStatus(name: spec.name, ready: false, restartCount: Int32(latest?.metadata?.attempt ?? 0),
                                        image: spec.image ?? "", imageID: "")
        if let latest {
            status.containerID = "swiftlet://\(latest.id)"
            status.imageID = latest.imageRef
            status.state = apiState(latest)
            if instances.count > 1 { status.lastState = apiState(instances[1]) }
            if latest.state == .containerRunning {
                let started = spec.startupProbe == nil || probes.started(containerID: latest.id) == true
                status.started = started
                status.ready = !isInit && started && (spec.readinessProbe == nil ? true : probes.ready(containerID: latest.id) == true)
            } else {
                status.started = false
                // An init container that succeeded is ready (the prober manager's rule).
                if isInit, latest.state == .containerExited, latest.exitCode == 0 { status.ready = true }
            }
            if latest.state == .containerExited, let waiting = memory.waiting[spec.name] {
                status.lastState = status.state
                status.state = APIContainerState(waiting: ContainerStateWaiting(reason: waiting.reason, message: waiting.message))
            }
        } else {
            let waiting = memory.waiting[spec.name]
            let defaultReason = isInit || initializing ? "PodInitializing" : "ContainerCreating"
            status.state = APIContainerState(waiting: ContainerStateWaiting(reason: waiting?.reason ?? defaultReason, message: waiting?.message))
            // Carry the restart count and last state of a container whose runtime record is
            // gone (a new sandbox), so counts do not go back to 0.
            if let old = previous?.first(where: { $0.name == spec.name }) {
                status.restartCount = old.restartCount
                status.lastState = old.lastState
            }
        }
        return status
    }

    static func apiState(_ status: CRI.ContainerStatus) -> APIContainerState {
        func time(_ nanoseconds: Int64) -> String? {
            nanoseconds > 0 ? KubeTime.time(Date(timeIntervalSince1970: Double(nanoseconds) / 1e9)) : nil
        }
        switch status.state {
        case .containerRunning:
            return APIContainerState(running: ContainerStateRunning(startedAt: time(status.startedAt)))
        case .containerExited:
            let reason = status.reason.isEmpty ? (status.exitCode == 0 ? "Completed" : "Error") : status.reason
            return APIContainerState(terminated: ContainerStateTerminated(
                exitCode: status.exitCode, reason: reason, message: status.message.isEmpty ? nil : status.message,
                startedAt: time(status.startedAt), finishedAt: time(status.finishedAt), containerID: "swiftlet://\(status.id)"))
        default:
            return APIContainerState(waiting: ContainerStateWaiting(reason: "ContainerCreating"))
        }
    }
}
