/// `cgroups/cpuset`: the CPUs and memory nodes a container may use ("0-1,3").
public struct CpusetIsolator: Isolator {
    public var name: String { "cgroups/cpuset" }
    public init() {}

    /// A kernel CPU list: numbers and ranges, comma-separated.
    static func isList(_ text: String) -> Bool {
        text.isEmpty || text.split(separator: ",", omittingEmptySubsequences: false).allSatisfy { part in
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            return (1...2).contains(bounds.count) && bounds.allSatisfy { UInt32($0) != nil }
                && (bounds.count == 1 || UInt32(bounds[0])! <= UInt32(bounds[1])!)
        }
    }

    public func prepare(_ container: IsolationContext, into spec: inout LaunchSpec) throws(ContainerizerError) {
        try update(container, container.config.resources)
    }

    public func update(_ container: IsolationContext, _ limits: ResourceLimits) throws(ContainerizerError) {
        for list in [limits.cpusetCpus, limits.cpusetMems] where !Self.isList(list) {
            throw ContainerizerError(.invalidArgument, context: "container \(container.id)", detail: "cpuset \"\(list)\" is not a list such as 0-1,3")
        }
        try container.cgroup.apply(limits, to: .cpuset)
    }
}
