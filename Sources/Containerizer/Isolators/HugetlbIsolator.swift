#if canImport(Glibc)
import Glibc
#endif

/// `cgroups/hugetlb`: limits per huge page size ("2MB", "1GB").
public struct HugetlbIsolator: Isolator {
    public var name: String { "cgroups/hugetlb" }
    public init() {}

    static func validate(_ limits: ResourceLimits, id: String) throws(ContainerizerError) {
        for (size, bytes) in limits.hugepageLimits {
            let valid = size.hasSuffix("KB") || size.hasSuffix("MB") || size.hasSuffix("GB")
            guard valid, Int(size.dropLast(2)) != nil, bytes >= 0 else {
                throw ContainerizerError(.invalidArgument, context: "container \(id)", detail: "huge page limit \(size)=\(bytes) (want e.g. 2MB=0)")
            }
        }
    }

    public func prepare(_ container: IsolationContext, into spec: inout LaunchSpec) throws(ContainerizerError) {
        try update(container, container.config.resources)
    }

    public func update(_ container: IsolationContext, _ limits: ResourceLimits) throws(ContainerizerError) {
        try Self.validate(limits, id: container.id)
        try container.cgroup.apply(limits, to: .hugetlb)
    }
}
