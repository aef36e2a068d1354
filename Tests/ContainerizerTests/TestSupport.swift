import Foundation
import SwiftletTestSupport
@testable import Containerizer

/// A root filesystem from Debian's busybox-static: /bin/busybox and a link per applet, with
/// /etc/passwd and /etc/group. No network, no image.
func makeBusyboxRootfs(in tree: TemporaryTree) throws -> String {
    let rootfs = try tree.directory("rootfs")
    for directory in ["bin", "etc", "tmp", "proc", "sys", "dev"] { _ = try tree.directory("rootfs/\(directory)") }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"].first { FileManager.default.isExecutableFile(atPath: $0) }
    guard let busybox else { throw POSIXError(.ENOENT) }
    try FileManager.default.copyItem(atPath: busybox, toPath: rootfs + "/bin/busybox")
    let list = Process()
    list.executableURL = URL(fileURLWithPath: busybox)
    list.arguments = ["--list"]
    let pipe = Pipe()
    list.standardOutput = pipe
    try list.run()
    let names = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    list.waitUntilExit()
    for name in names.split(separator: "\n") where name != "busybox" {
        try? FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/\(name)", withDestinationPath: "busybox")
    }
    try tree.write("rootfs/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    try tree.write("rootfs/etc/group", "root:x:0:\nnogroup:x:65534:\n")
    return rootfs
}

/// A containerizer with its own state root and cgroups root, torn down by `finish()`: every
/// container destroyed, the cgroups root removed from every hierarchy, the state deleted.
final class TestContainerizer {
    let tree: TemporaryTree
    let rootfs: String
    let cgroupsRoot: String
    let containerizer: Containerizer
    private static let counter = Counter()

    init(isolation: [String] = Isolators.availableNames) throws {
        tree = try TemporaryTree(prefix: "swiftlet-ctr")
        rootfs = try makeBusyboxRootfs(in: tree)
        cgroupsRoot = "swiftlet-test-\(getpid())-\(Self.counter.next())"
        containerizer = try Containerizer(stateRoot: try tree.directory("state"), cgroupsRoot: cgroupsRoot, isolation: isolation)
    }

    func config(_ script: String) -> ContainerConfig {
        var config = ContainerConfig(rootfs: rootfs, args: ["/bin/sh", "-c", script])
        config.env = ["PATH=/bin"]
        return config
    }

    /// Directories of this test's cgroups root, in every hierarchy.
    var cgroupRootDirectories: [String] {
        let layout = containerizer.layout
        return Array(Set(layout.v1.values)).map { "\($0)/\(cgroupsRoot)" } + (layout.v2Mount.map { ["\($0)/\(cgroupsRoot)"] } ?? [])
    }

    func finish() {
        for info in containerizer.list() { try? containerizer.destroy(id: info.id) }
        for directory in cgroupRootDirectories { rmdir(directory) }
    }

    final class Counter: @unchecked Sendable {
        private var value = 0
        private let lock = NSLock()
        func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
    }
}

func readFile(_ path: String) -> String {
    (FileManager.default.contents(atPath: path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
}

/// Polls `condition` every 50 ms until it holds; gives up (returning) after `limit`.
func waitFor(_ limit: Duration = .seconds(20), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while !condition() && ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(50))
    }
}
