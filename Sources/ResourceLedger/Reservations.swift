/// The signals kubelet's eviction manager observes (pkg/kubelet/eviction/api).
public enum EvictionSignal: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case memoryAvailable = "memory.available"
    case allocatableMemoryAvailable = "allocatableMemory.available"
    case nodeFsAvailable = "nodefs.available"
    case nodeFsInodesFree = "nodefs.inodesFree"
    case imageFsAvailable = "imagefs.available"
    case imageFsInodesFree = "imagefs.inodesFree"
    case containerFsAvailable = "containerfs.available"
    case containerFsInodesFree = "containerfs.inodesFree"
    case pidAvailable = "pid.available"

    /// The node condition a met threshold on this signal raises.
    public enum Condition: Sendable, Hashable { case memoryPressure, diskPressure, pidPressure }

    /// MemoryPressure, DiskPressure or PIDPressure, as kubelet's signalToNodeCondition.
    public var condition: Condition {
        switch self {
        case .memoryAvailable, .allocatableMemoryAvailable: return .memoryPressure
        case .pidAvailable: return .pidPressure
        default: return .diskPressure
        }
    }

    public var description: String { rawValue }
}

/// A hard eviction threshold: `signal < value`, where the value is a quantity or a fraction of capacity.
public struct EvictionThreshold: Sendable, Hashable, CustomStringConvertible {
    /// A quantity, or a fraction (0…1, float32 as kubelet keeps it) of the signal's capacity.
    public enum Value: Sendable, Hashable {
        case quantity(Quantity)
        case percentage(Float)
    }

    /// The signal compared.
    public var signal: EvictionSignal
    /// What it must not fall below.
    public var value: Value

    /// Makes a threshold.
    public init(signal: EvictionSignal, value: Value) {
        self.signal = signal
        self.value = value
    }

    /// kubelet's Linux defaults: memory.available<100Mi, nodefs.available<10%, nodefs.inodesFree<5%,
    /// imagefs.available<15%.
    public static let kubeletDefaults: [EvictionThreshold] = [
        EvictionThreshold(signal: .memoryAvailable, value: .quantity(.bytes(100 << 20))),
        EvictionThreshold(signal: .nodeFsAvailable, value: .percentage(Float(10) / 100)),
        EvictionThreshold(signal: .nodeFsInodesFree, value: .percentage(Float(5) / 100)),
        EvictionThreshold(signal: .imageFsAvailable, value: .percentage(Float(15) / 100)),
    ]

    /// The threshold as an amount of `capacity`, as kubelet's GetThresholdQuantity (percentages
    /// truncate `capacity.value × fraction` computed in float64).
    public func quantity(capacity: Quantity) -> Quantity {
        switch value {
        case .quantity(let q): return q
        case .percentage(let fraction): return .bytes(Int64(Double(capacity.value) * Double(fraction)))
        }
    }

    public var description: String {
        switch value {
        case .quantity(let q): return "\(signal)<\(q)"
        case .percentage(let fraction):
            let percent = (Double(fraction) * 1_000_000).rounded() / 10_000  // float32 noise off: 15%, not 15.000001%
            return "\(signal)<" + (percent == percent.rounded() ? String(Int(percent)) : String(percent)) + "%"
        }
    }
}

/// kubelet's flag syntax for reservations and eviction thresholds.
public enum KubeletFlags {
    /// Parses `--kube-reserved` / `--system-reserved` (`cpu=100m,memory=100Mi,ephemeral-storage=1Gi,pid=1000`):
    /// only cpu, memory, ephemeral-storage and pid may be reserved, none negative.
    public static func parseReserved(_ flag: String, flagName: String = "kube-reserved") throws(ResourceLedgerError) -> ResourceList {
        var reserved: ResourceList = [:]
        for (name, text) in try pairs(flag, separator: "=", flagName: flagName) {
            guard [ResourceName.cpu, ResourceName.memory, ResourceName.ephemeralStorage, ResourceName.pid].contains(name) else {
                throw ResourceLedgerError(.invalidReservation, context: name, detail: "only cpu, memory, ephemeral-storage and pid can be reserved")
            }
            let amount = try Quantity(parsing: text)
            guard amount >= .zero else {
                throw ResourceLedgerError(.invalidReservation, context: name, detail: "quantity cannot be negative: \(text)")
            }
            reserved[name] = amount
        }
        return reserved
    }

    /// Parses `--eviction-hard` (`memory.available<100Mi,nodefs.available<10%`). As kubelet, naming
    /// any signal drops the defaults for the others unless `mergeDefaults` (mergeDefaultEvictionSettings);
    /// `0%` and `100%` disable a signal; an empty flag means no hard thresholds.
    public static func parseEvictionHard(_ flag: String, mergeDefaults: Bool = false) throws(ResourceLedgerError) -> [EvictionThreshold] {
        var thresholds: [EvictionThreshold] = []
        var named: Set<EvictionSignal> = []
        for (name, text) in try pairs(flag, separator: "<", flagName: "eviction-hard") {
            guard let signal = EvictionSignal(rawValue: name) else { throw ResourceLedgerError(.unknownSignal, context: name) }
            named.insert(signal)
            thresholds.removeAll { $0.signal == signal }
            if let threshold = try threshold(signal, text) { thresholds.append(threshold) }
        }
        if mergeDefaults {
            thresholds += EvictionThreshold.kubeletDefaults.filter { !named.contains($0.signal) }
        }
        return thresholds
    }

    /// One `signal<value` statement's value, as kubelet's parseThresholdStatement.
    static func threshold(_ signal: EvictionSignal, _ text: String) throws(ResourceLedgerError) -> EvictionThreshold? {
        if text.hasSuffix("%") {
            if text == "0%" || text == "100%" { return nil }
            var digits = Substring(text)
            while digits.last == "%" { digits = digits.dropLast() }
            guard let percent = Float(digits) else {
                throw ResourceLedgerError(.invalidThreshold, context: signal.rawValue, detail: "not a percentage: \(text)")
            }
            let fraction = percent / 100
            guard fraction >= 0 else { throw ResourceLedgerError(.invalidThreshold, context: signal.rawValue, detail: "percentage must be >= 0%: \(text)") }
            guard fraction <= 1 else { throw ResourceLedgerError(.invalidThreshold, context: signal.rawValue, detail: "percentage must be <= 100%: \(text)") }
            return EvictionThreshold(signal: signal, value: .percentage(fraction))
        }
        let amount = try Quantity(parsing: text)
        guard amount > .zero else { throw ResourceLedgerError(.invalidThreshold, context: signal.rawValue, detail: "must be positive: \(text)") }
        return EvictionThreshold(signal: signal, value: .quantity(amount))
    }

    /// Items of a comma-separated map flag, split at the first `separator`, trimmed, in order.
    static func pairs(_ flag: String, separator: Character, flagName: String) throws(ResourceLedgerError) -> [(String, String)] {
        var result: [(String, String)] = []
        for item in flag.split(separator: ",", omittingEmptySubsequences: true) {
            guard let cut = item.firstIndex(of: separator) else {
                if separator == "<" && item.contains(where: { "<>=!".contains($0) }) {
                    throw ResourceLedgerError(.invalidOperator, context: String(item))
                }
                throw ResourceLedgerError(.malformedFlag(flag: flagName), context: String(item), detail: "expected name\(separator)value")
            }
            let value = item[item.index(after: cut)...].trimmingWhitespace
            if separator == "<" && value.first == "=" { throw ResourceLedgerError(.invalidOperator, context: String(item)) }
            result.append((item[..<cut].trimmingWhitespace, value))
        }
        return result
    }
}

/// kubelet's allocatable arithmetic (node_container_manager_linux.go and nodestatus/setters.go).
public enum NodeAllocatable {
    /// What is held back from each capacity resource: system-reserved + kube-reserved + the hard
    /// eviction threshold (memory.available of memory, nodefs.available of ephemeral-storage), as
    /// GetNodeAllocatableReservation; zero amounts left out.
    public static func reservation(capacity: ResourceList, kubeReserved: ResourceList, systemReserved: ResourceList,
                                   evictionHard: [EvictionThreshold]) -> ResourceList {
        var eviction: ResourceList = [:]
        for threshold in evictionHard {
            switch threshold.signal {
            case .memoryAvailable:
                eviction[ResourceName.memory] = threshold.quantity(capacity: capacity[ResourceName.memory] ?? .zero)
            case .nodeFsAvailable:
                eviction[ResourceName.ephemeralStorage] = threshold.quantity(capacity: capacity[ResourceName.ephemeralStorage] ?? .zero)
            default: break
            }
        }
        var result: ResourceList = [:]
        for name in capacity.keys {
            let total = [systemReserved[name], kubeReserved[name], eviction[name]].reduce(Quantity.zero) { $0 + ($1 ?? .zero) }
            if !total.isZero { result[name] = total }
        }
        return result
    }

    /// Capacity less the reservation, clamped at zero, with every hugepages capacity also taken
    /// from memory, as the kubelet's MachineInfo setter computes Node.status.allocatable.
    public static func allocatable(capacity: ResourceList, kubeReserved: ResourceList = [:], systemReserved: ResourceList = [:],
                                   evictionHard: [EvictionThreshold] = EvictionThreshold.kubeletDefaults) -> ResourceList {
        let reserved = reservation(capacity: capacity, kubeReserved: kubeReserved, systemReserved: systemReserved, evictionHard: evictionHard)
        var result = capacity.subtractingClamped(reserved)
        for (name, pages) in capacity where ResourceName.isHugePages(name) {
            if let memory = result[ResourceName.memory] { result[ResourceName.memory] = (memory - pages).clampedAtZero }
        }
        return result
    }
}
