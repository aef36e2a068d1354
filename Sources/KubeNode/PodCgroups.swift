import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The kubelet's pod-level cgroups (`<root>/[burstable|besteffort/]pod<uid>`): the runtime puts
/// a pod's containers under them; the node removes them when the pod is gone.
enum PodCgroups {
    /// The cgroup mounts: each v1 hierarchy under /sys/fs/cgroup, and the unified one.
    static func mounts(base: String = "/sys/fs/cgroup") -> [String] {
        var result: [String] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] {
            var info = stat()
            let path = base + "/" + entry
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { continue }
            result.append(path)
        }
        return result.isEmpty ? [base] : result
    }

    /// Removes the pod's cgroup wherever it exists (children first; a cgroup still holding
    /// processes stays, and is retried on the next cleanup).
    static func remove(root: String, uid: String) {
        for mount in mounts() {
            for level in ["", "burstable/", "besteffort/"] {
                removeTree(mount + "/" + root + "/" + level + "pod" + uid)
            }
        }
    }

    static func removeTree(_ path: String) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
        for entry in entries {
            var info = stat()
            if lstat(path + "/" + entry, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { removeTree(path + "/" + entry) }
        }
        rmdir(path)
    }
}
