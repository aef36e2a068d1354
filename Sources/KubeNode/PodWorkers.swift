import CRI
import Foundation
import KubeClient
import Logging
import ResourceLedger
import Synchronization

/// Where a pod came from.
public enum PodSource: String, Sendable {
    /// Bound to this node in the API server.
    case api
    /// A static pod from the manifest directory.
    case file
}

/// Per-pod workers, as the kubelet's `podWorkers`: one task per pod UID, owned by `run()`'s
/// task group, syncing the pod whenever its spec changes, its containers change state (PLEG),
/// a probe result changes, or every resync period; terminating it (grace period, preStop
/// hooks) when it is deleted; cleaning up its runtime objects, volumes and cgroups when it is gone.
final class PodWorkers: Sendable {
    struct Slot: Sendable {
        var pod: Pod?
        var source: PodSource
        var wake = WakeSignal()
        var status: PodStatus?
        var containerIDs: [String] = []
    }

    let sync: PodSync
    let probes: ProbeManager
    let statuses: PodStatusPoster
    let admission: PodAdmission
    let nodeIP: String
    let logger: Logger
    private let slots = Mutex<[String: Slot]>([:])
    private let spawns: AsyncStream<String>
    private let spawnSink: AsyncStream<String>.Continuation
    /// How often a pod is synced with nothing happening (the kubelet's resync, 10 s here).
    let resyncPeriod: Duration

    init(sync: PodSync, probes: ProbeManager, statuses: PodStatusPoster, admission: PodAdmission, nodeIP: String,
         resyncPeriod: Duration = .seconds(10), logger: Logger) {
        self.sync = sync
        self.probes = probes
        self.statuses = statuses
        self.admission = admission
        self.nodeIP = nodeIP
        self.resyncPeriod = resyncPeriod
        self.logger = logger
        (spawns, spawnSink) = AsyncStream.makeStream(of: String.self)
    }

    /// The complete current set of pods from `source`: new ones get a worker, changed ones a
    /// sync, and those no longer listed are torn down.
    func update(_ pods: [Pod], from source: PodSource) {
        var toSpawn: [String] = []
        var toWake: [WakeSignal] = []
        let listed = Dictionary(pods.map { ($0.uid, $0) }, uniquingKeysWith: { _, last in last })
        slots.withLock { slots in
            for (uid, pod) in listed {
                if var slot = slots[uid] {
                    if slot.pod != pod {
                        slot.pod = pod
                        slots[uid] = slot
                        toWake.append(slot.wake)
                    }
                } else {
                    slots[uid] = Slot(pod: pod, source: source)
                    toSpawn.append(uid)
                }
            }
            for (uid, slot) in slots where slot.source == source && listed[uid] == nil && slot.pod != nil {
                slots[uid]?.pod = nil
                toWake.append(slot.wake)
            }
        }
        for uid in toSpawn { spawnSink.yield(uid) }
        for wake in toWake { wake.signal() }
    }

    /// Wakes the worker of a pod (a container event, a probe result).
    func wake(podUID: String) {
        slots.withLock { $0[podUID]?.wake }?.signal()
    }

    /// Wakes the worker owning a container.
    func wake(containerID: String) {
        let wake = slots.withLock { slots in slots.values.first { $0.containerIDs.contains(containerID) }?.wake }
        wake?.signal()
    }

    /// The pods with workers, with their last generated status (the kubelet API's `/pods`).
    var pods: [Pod] {
        slots.withLock { slots in
            slots.values.compactMap { slot in
                guard var pod = slot.pod else { return nil }
                if let status = slot.status { pod.status = status }
                return pod
            }
        }
    }

    func hasWorker(_ uid: String) -> Bool { slots.withLock { $0[uid] != nil } }

    /// Cleans up a pod the runtime has but no source wants (an orphan after a restart).
    func adoptOrphan(uid: String) {
        let isNew = slots.withLock { slots -> Bool in
            guard slots[uid] == nil else { return false }
            slots[uid] = Slot(pod: nil, source: .api)
            return true
        }
        if isNew { spawnSink.yield(uid) }
    }

    /// Runs the workers until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await uid in spawns {
                group.addTask { await self.work(uid) }
            }
        }
    }

    func shutdown() { spawnSink.finish() }

    private func work(_ uid: String) async {
        var memory = PodMemory()
        var lastPod: Pod?
        var terminated = false
        var admitted = false
        while !Task.isCancelled {
            guard let slot = slots.withLock({ $0[uid] }) else { return }
            guard let pod = slot.pod else {
                // Gone from its source: stop what runs (with the pod's grace period when known),
                // then remove everything.
                if let lastPod, !terminated {
                    _ = await sync.terminate(lastPod, grace: lastPod.metadata.deletionTimestamp == nil ? lastPod.spec?.terminationGracePeriodSeconds : 0)
                }
                await sync.cleanUp(uid: uid)
                admission.release(uid)
                if let lastPod { statuses.forget(lastPod) }
                let reappeared = slots.withLock { slots -> Bool in
                    if slots[uid]?.pod != nil { return true }
                    slots[uid] = nil
                    return false
                }
                if reappeared { continue }
                if lastPod != nil { logger.info("pod removed", metadata: ["uid": "\(uid)", "pod": "\(lastPod?.fullName ?? "")"]) }
                return
            }
            lastPod = pod
            var state: RuntimeCalls.PodState
            if pod.metadata.deletionTimestamp != nil {
                if !terminated {
                    logger.info("pod is being deleted; stopping it", metadata: [
                        "pod": "\(pod.fullName)", "gracePeriod": "\(pod.metadata.deletionGracePeriodSeconds ?? 30)",
                    ])
                    state = await sync.terminate(pod, grace: pod.metadata.deletionGracePeriodSeconds)
                    terminated = true
                } else {
                    state = (try? await sync.calls.podState(uid: uid)) ?? RuntimeCalls.PodState()
                }
                probes.stop(containerIDs: state.containers.map(\.id))
                let status = PodStatusGenerator.status(pod, state: state, memory: memory, probes: sync.probes, nodeIP: nodeIP)
                store(uid, status: status, state: state)
                if state.running.isEmpty {
                    await statuses.post(pod, status: status, source: slot.source)
                    if slot.source == .api { await statuses.deleteFinished(pod) }
                }
                await slot.wake.wait(timeout: .seconds(2))
                continue
            }
            if !admitted {
                if let refusal = admission.admit(pod) {
                    memory.rejected = refusal
                    sync.events.pod(pod, "Warning", reason: refusal.reason, refusal.message)
                    logger.warning("pod rejected", metadata: ["pod": "\(pod.fullName)", "reason": "\(refusal.reason)", "message": "\(refusal.message)"])
                }
                admitted = true
            }
            if memory.rejected == nil {
                state = await sync.sync(pod, memory: &memory)
                probes.update(pod, state: state, nodeIP: nodeIP)
            } else {
                state = RuntimeCalls.PodState()
            }
            let status = PodStatusGenerator.status(pod, state: state, memory: memory, probes: sync.probes, nodeIP: nodeIP)
            store(uid, status: status, state: state)
            await statuses.post(pod, status: status, source: slot.source)
            await slot.wake.wait(timeout: nextWake(memory: memory, status: status))
        }
    }

    /// Sooner than the resync when something is pending: a backoff that ends, a container
    /// being created.
    private func nextWake(memory: PodMemory, status: PodStatus) -> Duration {
        var wait = resyncPeriod
        let now = ContinuousClock.now
        for entry in memory.backoff.values where entry.until > now { wait = min(wait, entry.until - now + .milliseconds(50)) }
        if status.phase == "Pending" || memory.sandboxError != nil { wait = min(wait, .seconds(1)) }
        return wait
    }

    private func store(_ uid: String, status: PodStatus, state: RuntimeCalls.PodState) {
        slots.withLock { slots in
            slots[uid]?.status = status
            slots[uid]?.containerIDs = state.containers.map(\.id)
        }
    }
}
