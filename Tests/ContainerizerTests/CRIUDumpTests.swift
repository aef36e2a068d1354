import Foundation
import SwiftletTestSupport
import Testing
@testable import Containerizer

/// A CRIU that `criu check` accepts (bookworm's 3.17 does not on recent kernels), if any.
private let workingCRIU: CRIU? = {
    guard let criu = CRIU.locate() else { return nil }
    let scratch = NSTemporaryDirectory() + "swiftlet-criu-check-\(getpid())"
    defer { unlink(scratch) }
    return ToolProcess.run(criu.path, ["check"], output: scratch, timeout: .seconds(60)) == .exited(0) ? criu : nil
}()

/// Real CRIU dumps of real containers (root, the machine's cgroups); skipped without a
/// working criu (hack/install-criu.sh installs one).
@Suite("criu dump", .serialized, .enabled(if: workingCRIU != nil, "no criu that passes `criu check` (run hack/install-criu.sh)"))
struct CRIUDumpTests {
    @Test("a running container is dumped and runs on: its process tree, external bind, pipes and /dev/null are recorded")
    func dumpLeavesItRunning() async throws {
        let criu = try #require(workingCRIU)
        let test = try TestContainerizer()
        defer { test.finish() }
        let volume = try test.tree.directory("volume")
        var config = test.config("i=0; while :; do i=$((i+1)); echo tick $i; echo $i > /data/count; sleep 0.1; done")
        config.mounts = [ContainerConfig.Mount(source: volume, target: "/data")]
        config.logPath = test.tree.path + "/counter.log"
        let info = try test.containerizer.launch(id: "counter", config: config)
        try await waitFor { readFile(config.logPath!).contains("tick 3") }

        let images = try test.tree.directory("images")
        let dump = try test.containerizer.dump(id: "counter", into: images, criu: criu)
        for image in ["pstree.img", "inventory.img", "core-1.img", "mm-1.img", "dump.log", ContainerDump.fileName] {
            #expect(FileManager.default.fileExists(atPath: images + "/" + image), "\(image) missing")
        }
        #expect(dump.pid == info.pid)
        #expect(dump.mounts.contains { $0.mountpoint == "/data" && $0.source == volume })
        #expect(dump.pipes.map(\.fd) == [1, 2])
        #expect(dump.files.contains { $0.path == "/dev/null" && $0.fd == 0 })
        #expect(dump.arguments.contains("--leave-running"))
        let recorded = try JSONDecoder().decode(ContainerDump.self, from: Data(contentsOf: URL(fileURLWithPath: images + "/" + ContainerDump.fileName)))
        #expect(recorded == dump)

        // It runs on, thawed: the same process, still counting.
        #expect(test.containerizer.state(id: "counter") == .running)
        #expect(kill(info.pid, 0) == 0)
        let lines = readFile(config.logPath!).split(separator: "\n").count
        try await waitFor { readFile(config.logPath!).split(separator: "\n").count > lines + 2 }
        #expect(readFile(test.containerizer.cgroup(for: "counter").directories.first { $0.contains("/freezer/") }.map { $0 + "/freezer.state" } ?? "/dev/null")
                    .trimmingCharacters(in: .whitespacesAndNewlines) != "FROZEN")
    }

    @Test("unknown, exited, a missing directory and a missing criu are told apart")
    func errors() async throws {
        let criu = try #require(workingCRIU)
        let test = try TestContainerizer()
        defer { test.finish() }
        let images = try test.tree.directory("images")
        #expect(throws: ContainerDumpError(.notFound, context: "nope")) { try test.containerizer.dump(id: "nope", into: images, criu: criu) }
        try test.containerizer.launch(id: "done", config: test.config("exit 0"))
        _ = try await test.containerizer.wait(id: "done")
        #expect(throws: ContainerDumpError(.notRunning, context: "done")) { try test.containerizer.dump(id: "done", into: images, criu: criu) }
        try test.containerizer.launch(id: "sleeper", config: test.config("sleep 1000"))
        do {
            try test.containerizer.dump(id: "sleeper", into: test.tree.path + "/no-such-dir", criu: criu)
            Issue.record("a missing images directory was accepted")
        } catch {
            #expect(error.kind == .invalidArgument)
        }
        do {
            try test.containerizer.dump(id: "sleeper", into: images, criu: CRIU(path: test.tree.path + "/no-criu"))
            Issue.record("a missing criu was accepted")
        } catch {
            #expect(error.kind == .criuMissing)
        }
        #expect(test.containerizer.state(id: "sleeper") == .running)
    }

    @Test("mountinfo escapes are undone")
    func unescape() {
        #expect(CgroupLayout.unescapeMountPath("/a\\040b\\011c") == "/a b\tc")
        #expect(CgroupLayout.unescapeMountPath("/plain") == "/plain")
        #expect(CgroupLayout.unescapeMountPath("/end\\04") == "/end\\04")
    }

    private func waitFor(_ condition: () -> Bool) async throws {
        for _ in 0..<1000 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("condition not met within 20 s")
    }
}
