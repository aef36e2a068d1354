/// One isolation concern of a container, with the Mesos containerizer's hooks.
///
/// `prepare` runs before launch and adds to the monitor's spec; `isolate` runs once the
/// process exists (placed in its cgroups, not yet past exec); `update` changes a running
/// container; `usage` reports; `cleanup` undoes what `prepare` did; `recover` sees the
/// containers found at start.
public protocol Isolator: Sendable {
    /// The name `--isolation` uses: `cgroups/cpu`, `namespaces/pid`, `filesystem/linux`, …
    var name: String { get }
    func recover(_ containers: [ContainerInfo]) throws(ContainerizerError)
    func prepare(_ container: IsolationContext, into spec: inout LaunchSpec) throws(ContainerizerError)
    func isolate(_ container: IsolationContext, pid: Int32) throws(ContainerizerError)
    func update(_ container: IsolationContext, _ limits: ResourceLimits) throws(ContainerizerError)
    func usage(_ container: IsolationContext, into usage: inout CgroupUsage) throws(ContainerizerError)
    func cleanup(_ container: IsolationContext) throws(ContainerizerError)
}

extension Isolator {
    public func recover(_ containers: [ContainerInfo]) throws(ContainerizerError) {}
    public func isolate(_ container: IsolationContext, pid: Int32) throws(ContainerizerError) {}
    public func update(_ container: IsolationContext, _ limits: ResourceLimits) throws(ContainerizerError) {}
    public func usage(_ container: IsolationContext, into usage: inout CgroupUsage) throws(ContainerizerError) {}
    public func cleanup(_ container: IsolationContext) throws(ContainerizerError) {}
}

/// What an isolator knows of the container it works on.
public struct IsolationContext: Sendable {
    public var id: String
    public var config: ContainerConfig
    /// The container's cgroup (created before `prepare`).
    public var cgroup: any ContainerCgroup
}

/// The isolators by name, as `--isolation` lists them.
public enum Isolators {
    /// Mesos' `--isolation` default spirit: cgroups for cpu, memory and pids, a pid namespace,
    /// and the Linux filesystem isolator (rootfs, mounts, masked paths).
    public static let defaultNames = ["cgroups/cpu", "cgroups/mem", "cgroups/pids", "namespaces/pid", "filesystem/linux"]

    /// Every isolator this build has.
    public static let availableNames = [
        "cgroups/cpu", "cgroups/mem", "cgroups/pids", "cgroups/cpuset", "cgroups/hugetlb", "namespaces/pid", "filesystem/linux",
    ]

    /// The isolators for names (`cgroups/cpu,cgroups/mem`); unknown names are errors.
    public static func named(_ names: [String]) throws(ContainerizerError) -> [any Isolator] {
        var isolators: [any Isolator] = []
        for name in names {
            switch name {
            case "cgroups/cpu": isolators.append(CPUIsolator())
            case "cgroups/mem": isolators.append(MemoryIsolator())
            case "cgroups/pids": isolators.append(PidsIsolator())
            case "cgroups/cpuset": isolators.append(CpusetIsolator())
            case "cgroups/hugetlb": isolators.append(HugetlbIsolator())
            case "namespaces/pid": isolators.append(PIDNamespaceIsolator())
            case "filesystem/linux": isolators.append(FilesystemIsolator())
            default:
                throw ContainerizerError(.invalidArgument, context: "isolator \(name)",
                                         detail: "unknown; available: \(availableNames.joined(separator: ", "))")
            }
        }
        if !names.contains("filesystem/linux") {
            throw ContainerizerError(.invalidArgument, context: "--isolation", detail: "filesystem/linux is required (containers need a root)")
        }
        return isolators
    }
}
