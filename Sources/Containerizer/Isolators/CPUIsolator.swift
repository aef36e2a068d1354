/// `cgroups/cpu`: CPU shares (weight on v2) and the CFS quota and period.
public struct CPUIsolator: Isolator {
    public var name: String { "cgroups/cpu" }
    public init() {}

    static func validate(_ limits: ResourceLimits, id: String) throws(ContainerizerError) {
        if limits.cpuShares != 0 && !(2...262_144).contains(limits.cpuShares) {
            throw ContainerizerError(.invalidArgument, context: "container \(id)", detail: "cpu shares \(limits.cpuShares) not in 2…262144")
        }
        if limits.cpuPeriod != 0 && !(1000...1_000_000).contains(limits.cpuPeriod) {
            throw ContainerizerError(.invalidArgument, context: "container \(id)", detail: "cpu period \(limits.cpuPeriod) µs not in 1000…1000000")
        }
        if limits.cpuQuota > 0 && limits.cpuQuota < 1000 {
            throw ContainerizerError(.invalidArgument, context: "container \(id)", detail: "cpu quota \(limits.cpuQuota) µs is below the kernel's 1000")
        }
    }

    public func prepare(_ container: IsolationContext, into spec: inout LaunchSpec) throws(ContainerizerError) {
        try Self.validate(container.config.resources, id: container.id)
        try container.cgroup.apply(container.config.resources, to: .cpu)
    }

    public func update(_ container: IsolationContext, _ limits: ResourceLimits) throws(ContainerizerError) {
        try Self.validate(limits, id: container.id)
        try container.cgroup.apply(limits, to: .cpu)
    }

    public func usage(_ container: IsolationContext, into usage: inout CgroupUsage) throws(ContainerizerError) {
        usage.cpuNanoseconds = try container.cgroup.usage(of: .cpu).cpuNanoseconds
    }
}
