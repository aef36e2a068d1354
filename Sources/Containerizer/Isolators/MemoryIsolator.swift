/// `cgroups/mem`: the memory limit with swap off, the working set, and OOM kills (a
/// container SIGKILLed while its cgroup counted an OOM kill exited `OOMKilled`, 137).
public struct MemoryIsolator: Isolator {
    public var name: String { "cgroups/mem" }
    public init() {}

    /// Below this the kernel cannot even start a process (the kubelet refuses < 6 MiB).
    public static let minimumLimit: Int64 = 4 << 20

    static func validate(_ limits: ResourceLimits, id: String) throws(ContainerizerError) {
        if limits.memoryLimitBytes != 0 && limits.memoryLimitBytes < minimumLimit {
            throw ContainerizerError(.invalidArgument, context: "container \(id)",
                                     detail: "memory limit \(limits.memoryLimitBytes) bytes is below the minimum of 4 MiB")
        }
    }

    public func prepare(_ container: IsolationContext, into spec: inout LaunchSpec) throws(ContainerizerError) {
        try Self.validate(container.config.resources, id: container.id)
        try container.cgroup.apply(container.config.resources, to: .memory)
    }

    public func update(_ container: IsolationContext, _ limits: ResourceLimits) throws(ContainerizerError) {
        try Self.validate(limits, id: container.id)
        try container.cgroup.apply(limits, to: .memory)
    }

    public func usage(_ container: IsolationContext, into usage: inout CgroupUsage) throws(ContainerizerError) {
        let read = try container.cgroup.usage(of: .memory)
        usage.memoryUsageBytes = read.memoryUsageBytes
        usage.memoryWorkingSetBytes = read.memoryWorkingSetBytes
        usage.oomKills = read.oomKills
    }
}
