#if canImport(Glibc)
import Glibc
#endif

/// `filesystem/linux`: the container's root (pivot_root into it, a new mount namespace),
/// `/proc`, `/sys`, `/dev`, bind mounts, masked and read-only paths.
///
/// Mount targets resolve inside the root (the monitor opens them with RESOLVE_IN_ROOT), so a
/// symlink in the image cannot point a mount at the host; sources and targets with `..`
/// components are refused outright.
public struct FilesystemIsolator: Isolator {
    public var name: String { "filesystem/linux" }
    public init() {}

    static func hasParentComponent(_ path: String) -> Bool {
        path.split(separator: "/").contains("..")
    }

    public func prepare(_ container: IsolationContext, into spec: inout LaunchSpec) throws(ContainerizerError) {
        let config = container.config
        var info = stat()
        guard config.rootfs.hasPrefix("/"), stat(config.rootfs, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw ContainerizerError(.invalidArgument, context: "container \(container.id)", detail: "rootfs \(config.rootfs) is not a directory")
        }
        spec.add("namespace", "mount")
        spec.add("rootfs", config.rootfs)
        if config.readonlyRootfs { spec.add("rootfs_readonly", "1") }
        if config.privileged { spec.add("dev", "host") }
        for mount in config.mounts {
            guard mount.source.hasPrefix("/"), !Self.hasParentComponent(mount.source) else {
                throw ContainerizerError(.invalidArgument, context: "mount source \(mount.source)", detail: "must be an absolute path without ..")
            }
            guard mount.target.hasPrefix("/"), !Self.hasParentComponent(mount.target) else {
                throw ContainerizerError(.invalidArgument, context: "mount target \(mount.target)", detail: "must be an absolute path without ..")
            }
            guard access(mount.source, F_OK) == 0 else {
                throw ContainerizerError(.invalidArgument, context: "mount source \(mount.source)", errno: errno, detail: "does not exist")
            }
            let mode = mount.recursiveReadonly ? "rro" : mount.readonly ? "ro" : "rw"
            if mount.idmapped ?? false {
                guard config.userNamespace != nil else {
                    throw ContainerizerError(.invalidArgument, context: "mount \(mount.target)", detail: "is idmapped but the container has no user namespace")
                }
                spec.add("bind", mount.source, mount.target, mode, mount.propagation.rawValue, "idmap")
            } else {
                spec.add("bind", mount.source, mount.target, mode, mount.propagation.rawValue)
            }
        }
        for device in config.devices ?? [] where !config.privileged {
            guard device.hostPath.hasPrefix("/"), device.containerPath.hasPrefix("/dev/"),
                  !Self.hasParentComponent(device.hostPath), !Self.hasParentComponent(device.containerPath) else {
                throw ContainerizerError(.invalidArgument, context: "device \(device.hostPath) -> \(device.containerPath)",
                                         detail: "needs absolute paths, the container's under /dev, without ..")
            }
            spec.add("bind", device.hostPath, device.containerPath, device.permissions.contains("w") ? "rw" : "ro", "rprivate")
        }
        if !config.privileged {
            for path in config.maskedPaths { spec.add("mask", path) }
            for path in config.readonlyPaths { spec.add("readonly", path) }
        }
    }
}
