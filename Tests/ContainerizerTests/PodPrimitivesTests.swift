import CSwiftletSyscalls
import Foundation
import SwiftletTestSupport
import Testing
@testable import Containerizer

/// What pod sandboxes are built from: pinned namespaces, a pid-namespace holder, cgroup
/// parents, and exec into a running container.
@Suite("pod primitives", .serialized)
struct PodPrimitivesTests {
    @Test("exec runs in the container's namespaces, cgroups and root, with its own stdio and exit code")
    func execSync() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        var config = test.config("echo hi > /tmp/marker; sleep 30")
        config.hostname = "inside"
        let info = try test.containerizer.launch(id: "target", config: config)
        try await Task.sleep(for: .milliseconds(200))
        let result = try test.containerizer.execSync(
            id: "target", args: ["/bin/sh", "-c", "cat /tmp/marker; hostname; echo $$ >&2; cat /proc/self/cgroup | grep memory; exit 7"],
            timeout: .seconds(10))
        let out = String(decoding: result.stdout, as: UTF8.self)
        #expect(result.exitCode == 7 && !result.timedOut)
        #expect(out.hasPrefix("hi\ninside\n"))
        #expect(out.contains("/\(test.cgroupsRoot)/target"))
        // In the container's pid namespace: not pid 1 (that is the container), but small.
        let pid = Int(String(decoding: result.stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(pid > 1 && pid < 100)
        #expect(test.containerizer.info(id: "target")?.state == .running)
        _ = info
    }

    @Test("an exec that outlives its timeout is killed; the container goes on")
    func execTimeout() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        try test.containerizer.launch(id: "slow", config: test.config("sleep 30"))
        let result = try test.containerizer.execSync(id: "slow", args: ["sleep", "20"], timeout: .milliseconds(300))
        #expect(result.timedOut)
        #expect(result.exitCode == 137)
        #expect(test.containerizer.info(id: "slow")?.state == .running)
        let after = try test.containerizer.execSync(id: "slow", args: ["true"], timeout: .seconds(10))
        #expect(after.exitCode == 0)
    }

    @Test("a cancelled exec is killed at once; the container goes on")
    func execCancelled() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        try test.containerizer.launch(id: "busy", config: test.config("sleep 30"))
        let cancellation = ExecCancellation()
        let containerizer = test.containerizer
        async let result = Task.detached {
            try containerizer.execSync(id: "busy", args: ["sh", "-c", "echo started; sleep 20"], timeout: nil, cancellation: cancellation)
        }.value
        try await Task.sleep(for: .milliseconds(300))
        cancellation.cancel()
        cancellation.cancel()  // idempotent
        let output = try await result
        #expect(output.cancelled && !output.timedOut)
        #expect(output.exitCode == 137, "killed, not waited out")
        #expect(test.containerizer.info(id: "busy")?.state == .running)
        let ps = try test.containerizer.execSync(id: "busy", args: ["ps", "-o", "args"], timeout: .seconds(10))
        #expect(!String(decoding: ps.stdout, as: UTF8.self).contains("sleep 20"), "the exec's process is gone")
    }

    @Test("exec in an unknown or exited container fails with a clear error")
    func execRefused() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        #expect(throws: ContainerizerError.self) { try test.containerizer.execSync(id: "nope", args: ["true"], timeout: nil) }
        try test.containerizer.launch(id: "done", config: test.config("exit 0"))
        _ = try await test.containerizer.wait(id: "done")
        do {
            _ = try test.containerizer.execSync(id: "done", args: ["true"], timeout: nil)
            Issue.record("exec into an exited container succeeded")
        } catch {
            #expect(error.description.contains("not running"))
        }
        try test.containerizer.launch(id: "live", config: test.config("sleep 30"))
        do {
            _ = try test.containerizer.execSync(id: "live", args: ["/no/such/binary"], timeout: nil)
            Issue.record("exec of a missing binary succeeded")
        } catch {
            #expect(error.description.contains("no/such/binary"))
        }
    }

    @Test("pinned namespaces outlive their creator and are shared by the containers that join them")
    func pinnedNamespaces() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        let pins = NamespacePins(directory: test.tree.path + "/pod/ns")
        try pins.create([.net, .ipc, .uts], hostname: "podhost", sysctls: [("net.ipv4.ip_unprivileged_port_start", "80"), ("kernel.shmmni", "1234")],
                        monitorPath: Launcher.defaultMonitorPath())
        defer { pins.remove() }
        #expect(pins.isPinned(.net) && pins.isPinned(.ipc) && pins.isPinned(.uts))
        var config = test.config("hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni; ip link show lo | grep -c UP; readlink /proc/self/ns/net")
        config.namespaces.network = .join(pins.path(.net))
        config.namespaces.ipc = .join(pins.path(.ipc))
        config.namespaces.uts = .join(pins.path(.uts))
        config.logPath = test.tree.path + "/joined.log"
        try test.containerizer.launch(id: "joined", config: config)
        _ = try await test.containerizer.wait(id: "joined")
        let lines = readFile(config.logPath!).split(separator: "\n").map { $0.split(separator: " ", maxSplits: 3).last.map(String.init) ?? "" }
        #expect(lines.prefix(4) == ["podhost", "80", "1234", "1"])
        // The host's namespaces are untouched.
        #expect(readFile("/proc/sys/kernel/shmmni") != "1234\n")
        pins.remove()
        #expect(!FileManager.default.fileExists(atPath: pins.path(.net)))
    }

    @Test("a pinned user namespace owns the pod's namespaces; a container joins it as its root after its mounts")
    func pinnedUserNamespace() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        let pins = NamespacePins(directory: test.tree.path + "/pod/ns")
        let map = NamespacePins.IDMap(containerID: 0, hostID: 200_000, length: 65536)
        try pins.create([.net, .ipc, .uts, .user], hostname: "mapped", sysctls: [("kernel.shmmni", "321")], uidMap: [map], gidMap: [map],
                        monitorPath: Launcher.defaultMonitorPath())
        defer { pins.remove() }
        #expect(NamespacePins.Kind.allCases.allSatisfy(pins.isPinned))
        // A volume seen through the namespace: the host's 0 is the container's root.
        let volume = try test.tree.directory("volume")
        FileManager.default.createFile(atPath: volume + "/data", contents: Data("x".utf8))
        var config = test.config("""
            cat /proc/self/uid_map; id -u; hostname; cat /proc/sys/kernel/shmmni; stat -c %u /volume/data /plain/data /dev/null; \
            echo written > /volume/new; sleep 30
            """)
        config.namespaces.network = .join(pins.path(.net))
        config.namespaces.ipc = .join(pins.path(.ipc))
        config.namespaces.uts = .join(pins.path(.uts))
        config.userNamespace = ContainerConfig.UserNamespace(path: pins.path(.user), rootUID: 200_000, rootGID: 200_000)
        config.mounts = [ContainerConfig.Mount(source: volume, target: "/volume", idmapped: true),
                         ContainerConfig.Mount(source: volume, target: "/plain")]
        config.logPath = test.tree.path + "/mapped.log"
        let info = try test.containerizer.launch(id: "mapped", config: config)
        try await waitFor { FileManager.default.fileExists(atPath: volume + "/new") }
        let lines = readFile(config.logPath!).split(separator: "\n").map { $0.split(separator: " ", maxSplits: 3).last.map(String.init) ?? "" }
        #expect(lines.first?.split(separator: " ").map(String.init) == ["0", "200000", "65536"])
        #expect(Array(lines.dropFirst().prefix(6)) == ["0", "mapped", "321", "0", "65534", "0"])
        // On the host: the process is the mapped id; what it wrote through the idmapped mount is the host's 0.
        #expect(readFile("/proc/\(info.pid)/status").contains("Uid:\t200000\t200000\t200000\t200000"))
        var written = stat()
        #expect(stat(volume + "/new", &written) == 0 && written.st_uid == 0)
        // exec joins the namespace too.
        let exec = try test.containerizer.execSync(id: "mapped", args: ["cat", "/proc/self/uid_map"], timeout: .seconds(10))
        #expect(String(decoding: exec.stdout, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: true).first == "0")
        #expect(String(decoding: exec.stdout, as: UTF8.self).contains("200000"))
    }

    @Test("an idmapped mount without a user namespace is refused before launch")
    func idmappedMountNeedsUserNamespace() throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        var config = test.config("true")
        config.mounts = [ContainerConfig.Mount(source: test.tree.path, target: "/volume", idmapped: true)]
        #expect(throws: ContainerizerError.self) { try test.containerizer.launch(id: "refused", config: config) }
    }

    @Test("unpinning ends the pins and leaves the files for the directory's removal")
    func unpin() throws {
        let tree = try TemporaryTree(prefix: "swiftlet-pin")
        let pins = NamespacePins(directory: tree.path + "/ns")
        try pins.create([.net, .ipc, .uts], hostname: "h", sysctls: [], monitorPath: Launcher.defaultMonitorPath())
        defer { pins.remove() }
        #expect(pins.isPinned(.net) && pins.isPinned(.ipc) && pins.isPinned(.uts))
        pins.unpin()
        pins.unpin()  // idempotent
        for kind in [NamespacePins.Kind.net, .ipc, .uts] {
            #expect(!pins.isPinned(kind))
            #expect(FileManager.default.fileExists(atPath: pins.path(kind)))
            #expect(!readFile("/proc/self/mountinfo").contains(pins.path(kind)))
        }
    }

    @Test("a sysctl the namespace does not have fails the pin and leaves nothing pinned")
    func badSysctl() throws {
        let tree = try TemporaryTree(prefix: "swiftlet-pin")
        let pins = NamespacePins(directory: tree.path + "/ns")
        #expect(throws: ContainerizerError.self) {
            try pins.create([.net], hostname: nil, sysctls: [("net.no.such.key", "1")], monitorPath: Launcher.defaultMonitorPath())
        }
        #expect(!FileManager.default.fileExists(atPath: pins.path(.net)))
    }

    @Test("a pid-namespace holder lets later containers see each other's processes, under a cgroup parent")
    func sharedPIDNamespace() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        let parent = test.cgroupsRoot + "/podA"
        let emptyRoot = try test.tree.directory("pause-root")
        var holder = ContainerConfig(rootfs: emptyRoot, args: [])
        holder.holdsPIDNamespace = true
        holder.cgroupParent = "/" + parent
        let pause = try test.containerizer.launch(id: "pause", config: holder)
        var first = test.config("sleep 30")
        first.namespaces.pid = .join("/proc/\(pause.pid)/ns/pid")
        first.cgroupParent = parent
        try test.containerizer.launch(id: "first", config: first)
        var second = test.config("ps -o pid,comm; sleep 30")
        second.namespaces.pid = .join("/proc/\(pause.pid)/ns/pid")
        second.cgroupParent = parent
        let secondInfo = try test.containerizer.launch(id: "second", config: second)
        let result = try test.containerizer.execSync(id: "second", args: ["ps", "-o", "pid,comm"], timeout: .seconds(10))
        let ps = String(decoding: result.stdout, as: UTF8.self)
        #expect(ps.contains("swiftlet-pause") || ps.contains("1 "))
        #expect(ps.contains("sleep"))
        #expect(readFile("/proc/\(secondInfo.pid)/cgroup").contains(":memory:/\(parent)/second"))
        for id in ["second", "first", "pause"] { try test.containerizer.destroy(id: id) }
        for hierarchy in Set(test.containerizer.layout.v1.values) { rmdir("\(hierarchy)/\(parent)") }
    }

    @Test("attach feeds the container's stdin and streams its output; stdin_once ends its input with the client's")
    func attach() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        var config = test.config("while read line; do echo got:$line; echo err:$line >&2; done; echo bye")
        config.stdin = true
        config.stdinOnce = true
        config.logPath = test.tree.path + "/attach.log"
        try test.containerizer.launch(id: "reader", config: config)
        let session = try test.containerizer.attach(id: "reader")
        var out: [Int32] = [0, 0], err: [Int32] = [0, 0]
        // Close-on-exec: a process another test spawns meanwhile must not hold a write end, or
        // reading to the end below would wait for that process to exit.
        #expect(swl_pipe_cloexec(&out) == 0 && swl_pipe_cloexec(&err) == 0)
        session.sendStdin(ArraySlice(Array("one\ntwo\n".utf8)))
        session.sendStdin([])
        session.pumpOutput(stdout: out[1], stderr: err[1])  // returns when the container exits
        close(out[1]); close(err[1])
        let stdout = FileHandle(fileDescriptor: out[0], closeOnDealloc: true).readDataToEndOfFile()
        let stderr = FileHandle(fileDescriptor: err[0], closeOnDealloc: true).readDataToEndOfFile()
        #expect(String(decoding: stdout, as: UTF8.self) == "got:one\ngot:two\nbye\n")
        #expect(String(decoding: stderr, as: UTF8.self) == "err:one\nerr:two\n")
        let exit = try await test.containerizer.wait(id: "reader")
        #expect(exit.exitCode == 0)
        #expect(readFile(config.logPath!).contains("stdout F got:two"))
    }

    @Test("a container without stdin reads EOF, and attach from another state root cannot reach it")
    func attachIsolation() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        try test.containerizer.launch(id: "quiet", config: test.config("cat; sleep 30"))
        let other = try Containerizer(stateRoot: try test.tree.directory("other-state"), cgroupsRoot: test.cgroupsRoot + "-other")
        #expect(throws: ContainerizerError.self) { _ = try other.attach(id: "quiet") }
        let session = try test.containerizer.attach(id: "quiet")
        session.close()
    }

    @Test("a host device given to the container is bound into its /dev and allowed in its devices cgroup")
    func devices() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        guard FileManager.default.fileExists(atPath: "/dev/fuse"), FileManager.default.fileExists(atPath: "/dev/loop-control") else { return }
        var config = test.config("exec 3<>/dev/myfuse && echo opened; exec 4<>/dev/loop-control && echo unlisted")
        config.devices = [ContainerConfig.Device(hostPath: "/dev/fuse", containerPath: "/dev/myfuse", permissions: "rw")]
        config.mounts = [ContainerConfig.Mount(source: "/dev/loop-control", target: "/dev/loop-control")]
        config.logPath = test.tree.path + "/devices.log"
        try test.containerizer.launch(id: "dev", config: config)
        _ = try await test.containerizer.wait(id: "dev")
        let log = readFile(config.logPath!)
        #expect(log.contains("stdout F opened"))
        // A node bound without a device entry: the devices cgroup refuses it.
        #expect(!log.contains("unlisted") && log.contains("Operation not permitted"))
        let rules = readFile("\(test.containerizer.layout.v1["devices"]!)/\(test.cgroupsRoot)/dev/devices.list")
        #expect(rules.contains("c 10:229 rw"))
    }

    @Test("attach input to a container busy writing output neither blocks the monitor nor loses the output")
    func attachBackpressure() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        var config = test.config("head -c 4000000 /dev/zero | od | tail -1; cat > /dev/null; echo done")
        config.stdin = true
        config.stdinOnce = true
        config.logPath = test.tree.path + "/busy.log"
        try test.containerizer.launch(id: "busy", config: config)
        let session = try test.containerizer.attach(id: "busy")
        let input = [UInt8](repeating: 0x61, count: 60_000)
        let sender = Thread {
            for _ in 0..<20 { session.sendStdin(input[...]) }
            session.sendStdin([])
        }
        sender.start()
        session.pumpOutput(stdout: nil, stderr: nil)
        let exit = try await test.containerizer.wait(id: "busy")
        #expect(exit.exitCode == 0)
        #expect(readFile(config.logPath!).contains("stdout F done"))
    }
}
