/// `cgroups/pids`: the process limit (fork bombs stop at it) and the process count.
public struct PidsIsolator: Isolator {
    public var name: String { "cgroups/pids" }
    public init() {}

    public func prepare(_ container: IsolationContext, into spec: inout LaunchSpec) throws(ContainerizerError) {
        try update(container, container.config.resources)
    }

    public func update(_ container: IsolationContext, _ limits: ResourceLimits) throws(ContainerizerError) {
        if limits.pidsLimit < 0 {
            throw ContainerizerError(.invalidArgument, context: "container \(container.id)", detail: "pids limit \(limits.pidsLimit) is negative")
        }
        try container.cgroup.apply(limits, to: .pids)
    }

    public func usage(_ container: IsolationContext, into usage: inout CgroupUsage) throws(ContainerizerError) {
        usage.pids = try container.cgroup.usage(of: .pids).pids
    }
}
