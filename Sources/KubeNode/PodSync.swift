import CRI
import Foundation
import KubeClient
import Logging
import Synchronization

/// What the node keeps in memory about one pod between syncs (the runtime holds the rest).
struct PodMemory: Sendable {
    var firstSeen = Date()
    /// The kubelet's crash-loop backoff per container: when the next start may happen, and the
    /// delay used last (10 s doubling to 5 min; reset after 10 min of running).
    var backoff: [String: (until: ContinuousClock.Instant, delay: Duration)] = [:]
    /// Why a container is waiting, when the last attempt to start it failed.
    var waiting: [String: (reason: String, message: String)] = [:]
    /// Why the sandbox could not be made, when it could not.
    var sandboxError: String?
    /// Admission refusal (reason, message): the pod never runs.
    var rejected: (reason: String, message: String)?
    var volumesReadyAt: ContinuousClock.Instant?
    /// Containers found waiting out their backoff in this sync (a BackOff event each).
    var backingOff: Set<String> = []
}

/// One sync of a pod toward its spec, as the kubelet's `SyncPod`/`computePodActions`: a sandbox,
/// init containers in order, then the containers, restarted per `restartPolicy` with crash-loop
/// backoff, restarted when their spec changed or their liveness probe failed; and the way down
/// (`terminate`): preStop hooks, stops within the grace period, sandbox stop, cleanup.
struct PodSync: Sendable {
    let calls: RuntimeCalls
    let volumes: PodVolumes
    let environment: PodEnvironment
    let probes: ProbeResults
    let nodeIP: String
    let podLogsDir: String
    let memoryCapacity: Int64
    let podCgroupRoot: String
    let events: EventRecorder
    let logger: Logger
    /// Where `Localhost` seccomp profiles live (`<root>/seccomp`).
    var seccompProfileRoot: String = "/var/lib/swiftlet/seccomp"
    /// The user namespaces of `hostUsers: false` pods; nil: such pods use the host's.
    var userNamespaces: PodUserNamespaces? = nil

    static let initialBackoff = Duration.seconds(10)
    static let maxBackoff = Duration.seconds(300)

    func config(_ pod: Pod) -> PodRuntimeConfig {
        PodRuntimeConfig(pod: pod, podLogsDir: podLogsDir, memoryCapacity: memoryCapacity, podCgroupRoot: podCgroupRoot,
                         seccompProfileRoot: seccompProfileRoot, userNamespace: userNamespaces?.mapping(for: pod))
    }

    /// Brings the runtime toward `pod`'s spec. Returns the runtime state after the sync.
    func sync(_ pod: Pod, memory: inout PodMemory) async -> RuntimeCalls.PodState {
        memory.backingOff = []
        defer {
            for name in memory.backingOff.sorted() {
                let isInit = pod.spec?.initContainers?.contains { $0.name == name } ?? false
                events.pod(pod, container: name, isInit: isInit, "Warning", reason: "BackOff", "Back-off restarting failed container")
            }
        }
        var state = (try? await calls.podState(uid: pod.uid)) ?? RuntimeCalls.PodState()
        let restartPolicy = pod.spec?.restartPolicy ?? "Always"
        // Volumes: made once, config maps/secrets/tokens refreshed every minute.
        if memory.volumesReadyAt.map({ ContinuousClock.now - $0 > .seconds(60) }) ?? true {
            do {
                try await volumes.prepare(pod)
                memory.volumesReadyAt = .now
                memory.sandboxError = nil
            } catch {
                if memory.sandboxError != error.description { events.pod(pod, "Warning", reason: "FailedMount", error.description) }
                memory.sandboxError = error.description
                logger.warning("unable to prepare the pod's volumes", metadata: ["pod": "\(pod.fullName)", "error": "\(error)"])
                if state.readySandbox == nil { return state }
            }
        }
        // The sandbox: a new one when there is none ready — unless the pod is done for good.
        if state.readySandbox == nil {
            if !state.sandboxes.isEmpty, podFinished(pod, state: state) { return state }
            if !state.running.isEmpty { await killContainers(pod, state.running, grace: 2, reason: "sandbox changed") }
            for old in state.sandboxes {
                _ = try? await calls.runtime.stopPodSandbox(StopPodSandboxRequest(podSandboxId: old.id), context: RuntimeCalls.context("StopPodSandbox"))
            }
            let attempt = UInt32(state.sandboxes.count)
            do {
                try userNamespaces?.allocate(for: pod)
                let response = try await calls.runtime.runPodSandbox(
                    RunPodSandboxRequest(config: config(pod).sandboxConfig(attempt: attempt)), context: RuntimeCalls.context("RunPodSandbox"))
                logger.info("created pod sandbox", metadata: ["pod": "\(pod.fullName)", "sandbox": "\(response.podSandboxId)"])
                memory.sandboxError = nil
            } catch {
                memory.sandboxError = "Failed to create pod sandbox: \(error)"
                events.pod(pod, "Warning", reason: "FailedCreatePodSandBox", "Failed to create pod sandbox: \(error)")
                logger.warning("failed to create pod sandbox", metadata: ["pod": "\(pod.fullName)", "error": "\(error)"])
                return state
            }
            state = (try? await calls.podState(uid: pod.uid)) ?? state
            // Containers of older sandboxes are gone with them; the new sandbox starts afresh.
        }
        guard let sandbox = state.readySandbox else { return state }

        // Init containers, in order: each must succeed before the next starts.
        for spec in pod.spec?.initContainers ?? [] {
            let latest = state.current(spec.name)
            if let latest, latest.state == .containerExited, latest.exitCode == 0 { continue }
            if let latest, latest.state == .containerRunning || latest.state == .containerCreated { return state }
            if let latest, latest.state == .containerExited {
                if restartPolicy == "Never" { return state }  // the pod fails
                guard backoffPassed(spec.name, finishedAt: latest.finishedAt, memory: &memory) else { return state }
            }
            await start(spec, pod: pod, sandbox: sandbox, state: state, memory: &memory, isInit: true)
            return (try? await calls.podState(uid: pod.uid)) ?? state
        }

        // The containers.
        var changed = false
        for spec in pod.spec?.containers ?? [] {
            let latest = state.current(spec.name)
            let hash = PodRuntimeConfig.hash(spec)
            if let latest, latest.state == .containerRunning {
                if latest.annotations[PodLabels.containerHash] != hash {
                    logger.info("container spec changed, will be restarted", metadata: ["pod": "\(pod.fullName)", "container": "\(spec.name)"])
                    await killContainers(pod, [latest], grace: nil, reason: "spec changed")
                    memory.backoff.removeValue(forKey: spec.name)
                    changed = true
                } else if probes.livenessFailed(containerID: latest.id) {
                    logger.info("container failed liveness probe, will be restarted", metadata: [
                        "pod": "\(pod.fullName)", "container": "\(spec.name)",
                    ])
                    events.pod(pod, container: spec.name, reason: "Killing", "Container \(spec.name) failed liveness probe, will be restarted")
                    await killContainers(pod, [latest], grace: spec.livenessProbe?.terminationGracePeriodSeconds, reason: "liveness probe failed")
                    changed = true
                } else {
                    // Running long enough: the backoff resets (the kubelet's 10 minutes).
                    if latest.startedAt > 0, Date().timeIntervalSince1970 - Double(latest.startedAt) / 1e9 > 600 {
                        memory.backoff.removeValue(forKey: spec.name)
                    }
                    memory.waiting.removeValue(forKey: spec.name)
                }
                continue
            }
            if let latest, latest.state == .containerCreated {
                _ = try? await calls.runtime.startContainer(StartContainerRequest(containerId: latest.id), context: RuntimeCalls.context("StartContainer"))
                changed = true
                continue
            }
            if let latest, latest.state == .containerExited {
                let restart = restartPolicy == "Always" || (restartPolicy == "OnFailure" && latest.exitCode != 0)
                guard restart else { continue }
                guard backoffPassed(spec.name, finishedAt: latest.finishedAt, memory: &memory) else { continue }
            }
            await start(spec, pod: pod, sandbox: sandbox, state: state, memory: &memory)
            changed = true
        }
        if changed { state = (try? await calls.podState(uid: pod.uid)) ?? state }
        await removeOldInstances(state)
        return state
    }

    /// Whether the pod has nothing left to run: restartPolicy Never or OnFailure with every
    /// container exited (successfully, for OnFailure).
    func podFinished(_ pod: Pod, state: RuntimeCalls.PodState) -> Bool {
        let policy = pod.spec?.restartPolicy ?? "Always"
        guard policy != "Always" else { return false }
        return (pod.spec?.containers ?? []).allSatisfy { spec in
            guard let latest = state.current(spec.name), latest.state == .containerExited else { return false }
            return policy == "Never" || latest.exitCode == 0
        }
    }

    /// The crash-loop backoff: a container that exited may start again once its delay has
    /// passed since it finished; each restart doubles the delay (10 s to 5 min).
    func backoffPassed(_ name: String, finishedAt: Int64, memory: inout PodMemory) -> Bool {
        if let entry = memory.backoff[name] {
            if ContinuousClock.now < entry.until {
                memory.waiting[name] = ("CrashLoopBackOff", "back-off \(Self.seconds(entry.delay)) restarting failed container")
                memory.backingOff.insert(name)
                return false
            }
            return true
        }
        return true
    }

    static func seconds(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        return seconds >= 60 && seconds % 60 == 0 ? "\(seconds / 60)m0s" : "\(seconds)s"
    }

    private func noteStarted(_ name: String, memory: inout PodMemory, restarting: Bool) {
        guard restarting else { return }
        let delay = memory.backoff[name].map { min($0.delay * 2, Self.maxBackoff) } ?? Self.initialBackoff
        memory.backoff[name] = (ContinuousClock.now + delay, delay)
    }

    /// Pulls (per `imagePullPolicy`), creates and starts one container; failures become the
    /// container's waiting reason (ErrImagePull, ErrImageNeverPull, CreateContainerConfigError,
    /// CreateContainerError, RunContainerError).
    func start(_ spec: ContainerSpec, pod: Pod, sandbox: PodSandbox, state: RuntimeCalls.PodState, memory: inout PodMemory,
               isInit: Bool = false) async {
        let instances = state.instances(of: spec.name)
        let restartCount = instances.first.map { Int($0.metadata?.attempt ?? 0) + 1 } ?? 0
        let image = spec.image ?? ""
        let imageRef: String
        do {
            imageRef = try await ensureImage(image, policy: spec.imagePullPolicy ?? (image.hasSuffix(":latest") || !image.contains(":") ? "Always" : "IfNotPresent"),
                                             pod: pod, container: spec.name, isInit: isInit)
        } catch let error as NodeError {
            let neverPull = error.detail.contains("ErrImageNeverPull")
            let message = error.detail.replacingOccurrences(of: "ErrImageNeverPull: ", with: "")
            memory.waiting[spec.name] = (neverPull ? "ErrImageNeverPull" : "ErrImagePull", message)
            events.pod(pod, container: spec.name, isInit: isInit, "Warning", reason: neverPull ? "ErrImageNeverPull" : "Failed", message)
            return
        } catch {
            memory.waiting[spec.name] = ("ErrImagePull", "\(error)")
            events.pod(pod, container: spec.name, isInit: isInit, "Warning", reason: "Failed", "Error: ErrImagePull")
            return
        }
        let env: [KeyValue]
        let mounts: [CRI.Mount]
        do {
            env = try await environment.variables(for: spec, pod: pod, podIPs: state.podIPs, hostIP: nodeIP)
            try await verifyRunAsNonRoot(spec, pod: pod, imageRef: imageRef)
            mounts = try volumes.mounts(for: spec, pod: pod, restartCount: restartCount,
                                        environment: Dictionary(env.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }))
        } catch {
            memory.waiting[spec.name] = ("CreateContainerConfigError", error.description)
            events.pod(pod, container: spec.name, isInit: isInit, "Warning", reason: "Failed", "Error: \(error.description)")
            return
        }
        let containerConfig = config(pod).containerConfig(spec, restartCount: restartCount, imageRef: imageRef, env: env, mounts: mounts,
                                                          hash: PodRuntimeConfig.hash(spec))
        let sandboxConfig = config(pod).sandboxConfig(attempt: sandbox.metadata?.attempt ?? 0)
        let id: String
        do {
            id = try await calls.runtime.createContainer(
                CreateContainerRequest(podSandboxId: sandbox.id, config: containerConfig, sandboxConfig: sandboxConfig),
                context: RuntimeCalls.context("CreateContainer")).containerId
        } catch {
            memory.waiting[spec.name] = ("CreateContainerError", "\(error)")
            events.pod(pod, container: spec.name, isInit: isInit, "Warning", reason: "Failed", "Error: \(error)")
            return
        }
        events.pod(pod, container: spec.name, isInit: isInit, reason: "Created", "Created container \(spec.name)")
        do {
            _ = try await calls.runtime.startContainer(StartContainerRequest(containerId: id), context: RuntimeCalls.context("StartContainer"))
            memory.waiting.removeValue(forKey: spec.name)
            noteStarted(spec.name, memory: &memory, restarting: restartCount > 0)
            events.pod(pod, container: spec.name, isInit: isInit, reason: "Started", "Started container \(spec.name)")
            logger.info("started container", metadata: ["pod": "\(pod.fullName)", "container": "\(spec.name)", "id": "\(id)",
                                                        "restartCount": "\(restartCount)"])
        } catch {
            memory.waiting[spec.name] = ("RunContainerError", "\(error)")
            events.pod(pod, container: spec.name, isInit: isInit, "Warning", reason: "Failed", "Error: \(error)")
            noteStarted(spec.name, memory: &memory, restarting: true)
            return
        }
        if let hook = spec.lifecycle?.postStart {
            let podIP = pod.spec?.hostNetwork == true ? nodeIP : (state.podIPs.first ?? "")
            let result = await LifecycleHooks.run(hook, containerID: id, podIP: podIP, calls: calls, timeout: 30)
            if let failure = result {
                logger.warning("postStart hook failed; killing the container", metadata: [
                    "pod": "\(pod.fullName)", "container": "\(spec.name)", "error": "\(failure)",
                ])
                _ = try? await calls.runtime.stopContainer(StopContainerRequest(containerId: id, timeout: 0), context: RuntimeCalls.context("StopContainer"))
                memory.waiting[spec.name] = ("PostStartHookError", failure)
                events.pod(pod, container: spec.name, isInit: isInit, "Warning", reason: "FailedPostStartHook", failure)
            }
        }
    }

    /// The kubelet's `verifyRunAsNonRoot`: with `runAsNonRoot`, a container that would run as
    /// UID 0 (its `runAsUser`, else the image's user) is refused (CreateContainerConfigError).
    func verifyRunAsNonRoot(_ spec: ContainerSpec, pod: Pod, imageRef: String) async throws(NodeError) {
        let podContext = pod.spec?.securityContext
        guard (spec.securityContext?.runAsNonRoot ?? podContext?.runAsNonRoot) == true else { return }
        let where_ = "(pod: \"\(pod.kubeletName)\", container: \(spec.name))"
        if let user = spec.securityContext?.runAsUser ?? podContext?.runAsUser {
            if user == 0 { throw NodeError(.podSpec, detail: "container's runAsUser breaks non-root policy \(where_)") }
            return
        }
        let image = try? await calls.images.imageStatus(ImageStatusRequest(image: ImageSpec(image: imageRef)),
                                                        context: RuntimeCalls.context("ImageStatus", service: "ImageService")).image
        if let uid = image?.uid {
            if uid.value == 0 { throw NodeError(.podSpec, detail: "container has runAsNonRoot and image will run as root \(where_)") }
            return
        }
        if let name = image?.username, !name.isEmpty {
            throw NodeError(.podSpec, detail: "container has runAsNonRoot and image has non-numeric user (\(name)), cannot verify user is non-root \(where_)")
        }
        throw NodeError(.podSpec, detail: "container has runAsNonRoot and image will run as root \(where_)")
    }

    /// The image's reference in the store, pulled per the policy.
    func ensureImage(_ image: String, policy: String, pod: Pod, container: String, isInit: Bool) async throws -> String {
        let spec = ImageSpec(image: image)
        let present = try? await calls.images.imageStatus(ImageStatusRequest(image: spec), context: RuntimeCalls.context("ImageStatus", service: "ImageService")).image
        if let present, policy != "Always" {
            events.pod(pod, container: container, isInit: isInit, reason: "Pulled", "Container image \"\(image)\" already present on machine")
            return present.id
        }
        if policy == "Never" {
            throw NodeError(.podSpec, detail: "ErrImageNeverPull: Container image \"\(image)\" is not present with pull policy of Never")
        }
        do {
            events.pod(pod, container: container, isInit: isInit, reason: "Pulling", "Pulling image \"\(image)\"")
            let started = ContinuousClock.now
            let ref = try await calls.images.pullImage(PullImageRequest(image: spec), context: RuntimeCalls.context("PullImage", service: "ImageService")).imageRef
            events.pod(pod, container: container, isInit: isInit, reason: "Pulled",
                       "Successfully pulled image \"\(image)\" in \(ContinuousClock.now - started)")
            return ref
        } catch {
            // "Always" with the image present and the registry unreachable: run what is here.
            if let present { return present.id }
            throw NodeError(.runtime, detail: "failed to pull image \"\(image)\": \(error)")
        }
    }

    /// Stops containers in parallel: each runs its preStop hook, then gets the rest of the
    /// grace period (at least 2 s, as the kubelet's `minimumGracePeriodInSeconds`) to stop.
    func killContainers(_ pod: Pod, _ containers: [CRI.ContainerStatus], grace: Int64?, reason: String) async {
        let specs = (pod.spec?.containers ?? []) + (pod.spec?.initContainers ?? [])
        let period = grace ?? pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30
        await withTaskGroup(of: Void.self) { group in
            for container in containers where container.state == .containerRunning || container.state == .containerCreated {
                let spec = specs.first { $0.name == container.metadata?.name }
                group.addTask {
                    let started = ContinuousClock.now
                    if let hook = spec?.lifecycle?.preStop, container.state == .containerRunning {
                        let podIP = pod.spec?.hostNetwork == true ? nodeIP : (pod.status?.podIP ?? "")
                        if let failure = await LifecycleHooks.run(hook, containerID: container.id, podIP: podIP, calls: calls, timeout: Int(period)) {
                            logger.warning("preStop hook failed", metadata: ["pod": "\(pod.fullName)", "container": "\(spec?.name ?? "")", "error": "\(failure)"])
                        }
                    }
                    let spent = (ContinuousClock.now - started).components.seconds
                    let remaining = max(period - spent, 2)
                    if reason != "liveness probe failed" {
                        events.pod(pod, container: container.metadata?.name, reason: "Killing", "Stopping container \(container.metadata?.name ?? "")")
                    }
                    logger.info("killing container", metadata: [
                        "pod": "\(pod.fullName)", "container": "\(container.metadata?.name ?? "")", "gracePeriod": "\(remaining)", "reason": "\(reason)",
                    ])
                    _ = try? await calls.runtime.stopContainer(StopContainerRequest(containerId: container.id, timeout: remaining),
                                                               context: RuntimeCalls.context("StopContainer"))
                }
            }
        }
    }

    /// Keeps the newest exited instance of each container (for `logs --previous`), removes older ones.
    func removeOldInstances(_ state: RuntimeCalls.PodState) async {
        let names = Set(state.containers.compactMap { $0.metadata?.name })
        for name in names {
            for old in state.instances(of: name).dropFirst(2) where old.state == .containerExited {
                _ = try? await calls.runtime.removeContainer(RemoveContainerRequest(containerId: old.id), context: RuntimeCalls.context("RemoveContainer"))
            }
        }
    }

    /// Stops everything of the pod (hooks and grace period honoured) and its sandboxes.
    func terminate(_ pod: Pod, grace: Int64?) async -> RuntimeCalls.PodState {
        guard let state = try? await calls.podState(uid: pod.uid) else { return RuntimeCalls.PodState() }
        await killContainers(pod, state.running + state.containers.filter { $0.state == .containerCreated }, grace: grace, reason: "pod deleted")
        for sandbox in state.sandboxes where sandbox.state == .sandboxReady {
            _ = try? await calls.runtime.stopPodSandbox(StopPodSandboxRequest(podSandboxId: sandbox.id), context: RuntimeCalls.context("StopPodSandbox"))
        }
        return (try? await calls.podState(uid: pod.uid)) ?? state
    }

    /// Removes every runtime object, volume and cgroup of a pod that is gone.
    func cleanUp(uid: String) async {
        if let state = try? await calls.podState(uid: uid) {
            for container in state.containers {
                _ = try? await calls.runtime.removeContainer(RemoveContainerRequest(containerId: container.id), context: RuntimeCalls.context("RemoveContainer"))
            }
            for sandbox in state.sandboxes {
                _ = try? await calls.runtime.stopPodSandbox(StopPodSandboxRequest(podSandboxId: sandbox.id), context: RuntimeCalls.context("StopPodSandbox"))
                _ = try? await calls.runtime.removePodSandbox(RemovePodSandboxRequest(podSandboxId: sandbox.id), context: RuntimeCalls.context("RemovePodSandbox"))
            }
        }
        volumes.tearDown(podUID: uid)
        PodCgroups.remove(root: podCgroupRoot, uid: uid)
        probes.forget(podUID: uid)
    }
}
