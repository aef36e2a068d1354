import Synchronization

/// Who holds resources on the node: a pod (by UID) admitted through the Kubernetes face, a container
/// launched through the Mesos face, or any other side's work, by id.
public struct Consumer: Sendable, Hashable, CustomStringConvertible {
    /// Which face admitted the work.
    public struct Side: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        /// The side's name.
        public var rawValue: String
        /// A side by name.
        public init(rawValue: String) { self.rawValue = rawValue }
        /// Pods; each counts against the `pods` capacity.
        public static let kubernetes = Side(rawValue: "kubernetes")
        /// Mesos containers.
        public static let mesos = Side(rawValue: "mesos")
        public var description: String { rawValue }
    }

    /// Which face admitted it.
    public var side: Side
    /// The pod UID, container ID or other id, unique on its side.
    public var id: String

    /// A consumer on `side` known by `id`.
    public init(side: Side, id: String) {
        self.side = side
        self.id = id
    }

    /// A pod, by UID.
    public static func kubernetes(_ podUID: String) -> Consumer { Consumer(side: .kubernetes, id: podUID) }
    /// A Mesos container, by container ID.
    public static func mesos(_ containerID: String) -> Consumer { Consumer(side: .mesos, id: containerID) }

    public var description: String { "\(side)/\(id)" }
}

/// A resource that did not fit, as the scheduler's InsufficientResourceError (cpu in millicores,
/// the rest in whole units; `capacity` is the allocatable amount).
public struct InsufficientResource: Sendable, Hashable {
    /// The resource name.
    public var resource: String
    /// What the consumer asked for.
    public var requested: Int64
    /// What the others hold.
    public var used: Int64
    /// What is allocatable.
    public var capacity: Int64

    /// kubelet's pod rejection reason: `OutOfcpu`, `OutOfmemory`, `OutOfpods`, `OutOfephemeral-storage`, `OutOfhugepages-2Mi`.
    public var reason: String { "OutOf" + resource }
    /// `Node didn't have enough resource: cpu, requested: 2000, used: 500, capacity: 1900`.
    public var message: String {
        "Node didn't have enough resource: \(resource), requested: \(requested), used: \(used), capacity: \(capacity)"
    }
}

/// What admission decided.
public struct AdmissionResult: Sendable, Hashable {
    /// Every resource that did not fit, in kubelet's order (pods, cpu, memory, ephemeral-storage, then by name).
    public var insufficient: [InsufficientResource]

    /// Whether the consumer was admitted (and its requests recorded).
    public var isAdmitted: Bool { insufficient.isEmpty }
    /// The first refusal's reason, as kubelet reports it on the pod (nil when admitted).
    public var reason: String? { insufficient.first?.reason }
    /// The first refusal's message (nil when admitted).
    public var message: String? { insufficient.first?.message }
}

/// A snapshot of what each consumer holds.
public struct LedgerUsage: Sendable, Hashable {
    /// Each consumer's requests; a Kubernetes consumer also holds `pods: 1`.
    public var consumers: [Consumer: ResourceList]

    /// Everything held, summed.
    public var total: ResourceList { consumers.values.reduce([:]) { $0.adding($1) } }
    /// What one side holds, summed.
    public func used(by side: Consumer.Side) -> ResourceList {
        consumers.filter { $0.key.side == side }.values.reduce([:]) { $0.adding($1) }
    }
}

/// One account of the node's resources: capacity, reservations, hard eviction thresholds,
/// allocatable, and what each side (Kubernetes pods, Mesos containers) has been admitted with,
/// so each side sees the other's usage. Thread-safe.
public final class ResourceLedger: Sendable {
    private struct State {
        var capacity: ResourceList
        var kubeReserved: ResourceList
        var systemReserved: ResourceList
        var evictionHard: [EvictionThreshold]
        var allocatable: ResourceList
        var consumers: [Consumer: ResourceList] = [:]

        mutating func recompute() {
            allocatable = NodeAllocatable.allocatable(capacity: capacity, kubeReserved: kubeReserved,
                                                      systemReserved: systemReserved, evictionHard: evictionHard)
        }
    }

    private let state: Mutex<State>

    /// A ledger for a node of `capacity` (e.g. `MachineCapacity.detect().resources`).
    public init(capacity: ResourceList, kubeReserved: ResourceList = [:], systemReserved: ResourceList = [:],
                evictionHard: [EvictionThreshold] = EvictionThreshold.kubeletDefaults) {
        var initial = State(capacity: capacity, kubeReserved: kubeReserved, systemReserved: systemReserved,
                            evictionHard: evictionHard, allocatable: [:])
        initial.recompute()
        state = Mutex(initial)
    }

    /// Node.status.capacity.
    public var capacity: ResourceList { state.withLock { $0.capacity } }
    /// Node.status.allocatable: capacity − kube-reserved − system-reserved − hard eviction − hugepages (from memory).
    public var allocatable: ResourceList { state.withLock { $0.allocatable } }
    /// The hard eviction thresholds.
    public var evictionHard: [EvictionThreshold] { state.withLock { $0.evictionHard } }
    /// kube-reserved and system-reserved.
    public var reservations: (kube: ResourceList, system: ResourceList) { state.withLock { ($0.kubeReserved, $0.systemReserved) } }

    /// Replaces the capacity (hugepages or a cgroup limit changed); admitted consumers stay.
    public func update(capacity: ResourceList) {
        state.withLock { $0.capacity = capacity; $0.recompute() }
    }

    /// Allocatable less what the other sides hold, clamped at zero: what `side` may still plan with
    /// (Kubernetes sees Mesos work as reduced allocatable, and the other way round).
    public func allocatable(availableTo side: Consumer.Side) -> ResourceList {
        state.withLock { state in
            let others = state.consumers.filter { $0.key.side != side }.values.reduce([:]) { $0.adding($1) }
            return state.allocatable.subtractingClamped(others)
        }
    }

    /// Admits `consumer` with `requests` when they fit in allocatable less what everyone else holds,
    /// as kubelet's resource admission: one pod per Kubernetes consumer against `pods`, then each
    /// requested cpu (millicores), memory, ephemeral-storage and hugepages amount; extended resources
    /// the node does not list are ignored. Admitting an admitted consumer again replaces its requests.
    public func admit(_ consumer: Consumer, requests: ResourceList) -> AdmissionResult {
        var held = requests.filter { $0.key != ResourceName.pods && $0.value > .zero }
        if consumer.side == .kubernetes { held[ResourceName.pods] = Quantity(1) }
        return state.withLock { state in
            let others = state.consumers.filter { $0.key != consumer }
            var insufficient: [InsufficientResource] = []
            if consumer.side == .kubernetes {
                let pods = Int64(others.keys.filter { $0.side == .kubernetes }.count)
                let allowed = state.allocatable[ResourceName.pods]?.value ?? 0
                if pods + 1 > allowed {
                    insufficient.append(InsufficientResource(resource: ResourceName.pods, requested: 1, used: pods, capacity: allowed))
                }
            }
            let standard = [ResourceName.cpu, ResourceName.memory, ResourceName.ephemeralStorage]
            let names = standard + held.keys.filter { !standard.contains($0) && $0 != ResourceName.pods }.sorted()
            for name in names {
                guard let request = held[name], request > .zero else { continue }
                guard standard.contains(name) || ResourceName.isHugePages(name) || state.allocatable[name] != nil else { continue }
                let units: (Quantity) -> Int64 = name == ResourceName.cpu ? { $0.milliValue } : { $0.value }
                let used = others.values.reduce(Int64(0)) { $0.addingClamped($1[name].map(units) ?? 0) }
                let allocatable = state.allocatable[name].map(units) ?? 0
                let requested = units(request)
                if requested > allocatable - used {
                    insufficient.append(InsufficientResource(resource: name, requested: requested, used: used, capacity: allocatable))
                }
            }
            if insufficient.isEmpty { state.consumers[consumer] = held }
            return AdmissionResult(insufficient: insufficient)
        }
    }

    /// Forgets `consumer`; returns what it held, or nil if it held nothing.
    @discardableResult
    public func release(_ consumer: Consumer) -> ResourceList? {
        state.withLock { $0.consumers.removeValue(forKey: consumer) }
    }

    /// What one side holds (a Kubernetes side's list includes its pod count).
    public func used(by side: Consumer.Side) -> ResourceList { usage.used(by: side) }

    /// A snapshot of every consumer's holdings.
    public var usage: LedgerUsage { LedgerUsage(consumers: state.withLock { $0.consumers }) }

    /// Which pressure conditions the signals show against the hard eviction thresholds.
    public func pressure(_ signals: NodeSignals) -> NodePressure {
        NodePressure(thresholds: evictionHard, signals: signals)
    }
}

extension Int64 {
    fileprivate func addingClamped(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}
