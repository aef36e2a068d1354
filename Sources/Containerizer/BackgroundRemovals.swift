import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Deletes what nothing refers to any more — a destroyed container's checkpoint moved aside,
/// a removed pod's directory — on a background queue, one at a time, so the call that made
/// them garbage does not wait for the file system (on a busy disk each unlink and rmdir can
/// take milliseconds). Whatever is pending when the process ends is found again by recovery
/// (``Containerizer/recover()`` removes moved-aside checkpoints; the pod runtime removes pod
/// directories no record names).
public final class BackgroundRemovals: Sendable {
    private let queue = DispatchQueue(label: "swiftlet.background-removals", qos: .utility)
    private let group = DispatchGroup()

    public init() {}

    /// Runs `work` after everything queued before it.
    public func run(_ work: @escaping @Sendable () -> Void) {
        queue.async(group: group, execute: work)
    }

    /// Removes the tree at `path` (best effort).
    public func remove(_ path: String) {
        run { Self.removeTree(path) }
    }

    /// Waits until everything queued so far is done (tests, shutdown).
    public func wait() {
        group.wait()
    }

    /// Removes a directory tree (or a file) without following symbolic links; best effort.
    public static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
