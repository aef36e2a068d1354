/// `namespaces/pid`: the container's first process is PID 1 of a new pid namespace, or
/// joins one (a pod's shared namespace), or stays in the host's.
public struct PIDNamespaceIsolator: Isolator {
    public var name: String { "namespaces/pid" }
    public init() {}

    public func prepare(_ container: IsolationContext, into spec: inout LaunchSpec) throws(ContainerizerError) {
        switch container.config.namespaces.pid {
        case .new: spec.add("namespace", "pid")
        case .host: break
        case .join(let path): spec.add("join", "pid", path)
        }
    }
}
