import CSwiftletSyscalls
import Foundation
import SwiftletTestSupport
import Testing
@testable import Containerizer

/// Real containers, as root, in the machine's cgroups (v1 controllers on these hybrid hosts),
/// verified in the cgroup filesystem and /proc, not only through the containerizer.
@Suite("containerizer", .serialized)
struct ContainerizerTests {
    @Test("a container runs as PID 1 with its hostname, logs in the CRI format, and exits with its code")
    func runsAndExits() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        var config = test.config("echo pid=$$; hostname; echo oops >&2; exit 3")
        config.hostname = "box"
        config.logPath = test.tree.path + "/c1.log"
        try test.containerizer.launch(id: "c1", config: config)
        let exit = try await test.containerizer.wait(id: "c1")
        #expect(exit.exitCode == 3 && exit.signal == 0 && exit.reason == "Error")
        let lines = readFile(test.tree.path + "/c1.log").split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].hasSuffix(" stdout F pid=1"))
        #expect(lines[1].hasSuffix(" stdout F box"))
        #expect(lines[2].hasSuffix(" stderr F oops"))
        #expect(lines[0].split(separator: " ")[0].hasSuffix("Z"))
    }

    @Test("cpu quota, memory limit and pids limit are written to the cgroup, and update changes them live")
    func limits() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        var config = test.config("sleep 30")
        config.resources = ResourceLimits(cpuShares: 512, cpuQuota: 50_000, cpuPeriod: 100_000, memoryLimitBytes: 64 << 20, pidsLimit: 20)
        let info = try test.containerizer.launch(id: "limited", config: config)
        let layout = test.containerizer.layout
        let cpu = "\(layout.v1["cpu"]!)/\(test.cgroupsRoot)/limited"
        let memory = "\(layout.v1["memory"]!)/\(test.cgroupsRoot)/limited"
        let pids = "\(layout.v1["pids"]!)/\(test.cgroupsRoot)/limited"
        #expect(readFile(cpu + "/cpu.cfs_quota_us") == "50000\n")
        #expect(readFile(cpu + "/cpu.shares") == "512\n")
        #expect(readFile(memory + "/memory.limit_in_bytes") == "\(64 << 20)\n")
        #expect(readFile(pids + "/pids.max") == "20\n")
        // The process is in those cgroups, as /proc says.
        let membership = readFile("/proc/\(info.pid)/cgroup")
        #expect(membership.contains(":memory:/\(test.cgroupsRoot)/limited"))
        #expect(membership.contains("pids:/\(test.cgroupsRoot)/limited"))
        try test.containerizer.update(id: "limited", resources: ResourceLimits(cpuQuota: 20_000, memoryLimitBytes: 32 << 20, pidsLimit: 5))
        #expect(readFile(cpu + "/cpu.cfs_quota_us") == "20000\n")
        #expect(readFile(memory + "/memory.limit_in_bytes") == "\(32 << 20)\n")
        #expect(readFile(pids + "/pids.max") == "5\n")
        let usage = try test.containerizer.usage(id: "limited")
        #expect(usage.pids >= 1 && usage.memoryUsageBytes > 0)
        try test.containerizer.kill(id: "limited", signal: SIGKILL)
        let exit = try await test.containerizer.wait(id: "limited")
        #expect(exit.exitCode == 137 && exit.signal == SIGKILL)
    }

    @Test("a memory hog is OOM-killed and reported OOMKilled with exit code 137")
    func oomKilled() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        var config = test.config("tail /dev/zero")
        config.resources.memoryLimitBytes = 16 << 20
        try test.containerizer.launch(id: "hog", config: config)
        let exit = try await test.containerizer.wait(id: "hog")
        #expect(exit.reason == "OOMKilled")
        #expect(exit.exitCode == 137)
    }

    @Test("the pids limit holds against a fork bomb")
    func forkBomb() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        var config = test.config("for i in $(seq 40); do sleep 5 & done 2>/dev/null; sleep 1; echo done")
        config.resources.pidsLimit = 10
        config.logPath = test.tree.path + "/bomb.log"
        try test.containerizer.launch(id: "bomb", config: config)
        try await Task.sleep(for: .milliseconds(500))
        let pids = "\(test.containerizer.layout.v1["pids"]!)/\(test.cgroupsRoot)/bomb"
        #expect((Int(readFile(pids + "/pids.current").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 99) <= 10)
        #expect(Int(readFile(pids + "/pids.events").split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "0")! > 0)
        try test.containerizer.kill(id: "bomb", signal: SIGKILL)
        _ = try await test.containerizer.wait(id: "bomb")
    }

    @Test("masked and read-only paths, capabilities and no_new_privs are as asked")
    func security() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        var config = test.config("""
            wc -c < /proc/timer_list; ls /proc/acpi 2>&1 | wc -l; (echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo writable || echo readonly
            grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status
            """)
        config.capabilities = try Capabilities(names: ["CAP_CHOWN", "CAP_KILL"])
        config.noNewPrivileges = true
        config.logPath = test.tree.path + "/sec.log"
        try test.containerizer.launch(id: "sec", config: config)
        #expect(try await test.containerizer.wait(id: "sec").exitCode == 0)
        let output = readFile(test.tree.path + "/sec.log").split(separator: "\n").map { $0.split(separator: " ", maxSplits: 3).last.map(String.init) ?? "" }
        #expect(output[0] == "0")  // /dev/null over /proc/timer_list
        #expect(output[1] == "0")  // an empty tmpfs over /proc/acpi (or absent)
        #expect(output[2] == "readonly")
        #expect(output.contains("CapEff:\t0000000000000021"))
        #expect(output.contains("CapBnd:\t0000000000000021"))
        #expect(output.contains("NoNewPrivs:\t1"))
    }

    @Test("RuntimeDefault seccomp refuses what it should and allows the rest")
    func seccomp() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        var config = test.config("unshare -U true 2>/dev/null && echo unshare-allowed || echo unshare-refused; echo ok")
        config.seccomp = .runtimeDefault
        config.logPath = test.tree.path + "/seccomp.log"
        try test.containerizer.launch(id: "sc", config: config)
        #expect(try await test.containerizer.wait(id: "sc").exitCode == 0)
        let log = readFile(test.tree.path + "/seccomp.log")
        #expect(log.contains("unshare-refused"))
        #expect(log.contains("F ok"))
    }

    @Test("a local JSON seccomp profile (Docker format) is applied, errno and all")
    func localSeccompProfile() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        let profile = try test.tree.write("profile.json", """
            {"defaultAction": "SCMP_ACT_ALLOW",
             "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                          {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_MODULE"]}}]}
            """)
        var config = test.config("mkdir /tmp/x 2>&1; touch /tmp/f && chmod 600 /tmp/f && echo chmod-ok; cat /proc/self/oom_score_adj")
        config.seccomp = .localhost(profile)
        config.oomScoreAdj = -500  // raised to 0: this host refuses negative values
        config.logPath = test.tree.path + "/profile.log"
        try test.containerizer.launch(id: "profiled", config: config)
        #expect(try await test.containerizer.wait(id: "profiled").exitCode == 0)
        let log = readFile(test.tree.path + "/profile.log")
        #expect(log.contains("Permission denied"))  // errno 13 from the profile
        #expect(log.contains("F chmod-ok"))  // that rule needs a capability the container lacks
        #expect(log.hasSuffix(" stdout F 0\n"))
    }

    @Test("log lines longer than 16 KiB are split into P records, the last part F")
    func longLines() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        var config = test.config("head -c 40000 /dev/zero | tr '\\0' x; echo; echo short")
        config.logPath = test.tree.path + "/long.log"
        try test.containerizer.launch(id: "long", config: config)
        #expect(try await test.containerizer.wait(id: "long").exitCode == 0)
        let records = readFile(test.tree.path + "/long.log").split(separator: "\n").map { $0.split(separator: " ", maxSplits: 3) }
        #expect(records.map { String($0[2]) } == ["P", "P", "F", "F"])
        #expect(records.prefix(3).map { $0.count == 4 ? $0[3].count : 0 } == [16384, 16384, 40000 - 2 * 16384])
        #expect(records.last.map { String($0[3]) } == "short")
    }

    @Test("hardening: no leaked fds, read-only binds keep nosuid/nodev/noexec, clone(CLONE_NEWUSER) refused, a 16 KiB line is one record")
    func hardening() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        // An fd this process leaks without CLOEXEC, at a free number of 100 or more. (Not dup2 onto
        // a fixed number: that would silently close whatever another test running meanwhile has
        // open there, and the close after would close it again.)
        var ends: [Int32] = [0, 0]
        #expect(swl_pipe_cloexec(&ends) == 0)
        let leaked = fcntl(ends[1], F_DUPFD, 100)
        #expect(leaked >= 100)
        defer { close(ends[0]); close(ends[1]); if leaked >= 0 { close(leaked) } }
        // A volume on a nosuid,nodev,noexec tmpfs, bound read-only.
        let volume = try test.tree.directory("volume")
        #expect(mount("tmpfs", volume, "tmpfs", UInt(MS_NOSUID) | UInt(MS_NODEV) | UInt(MS_NOEXEC), "size=1m") == 0)
        defer { umount2(volume, Int32(MNT_DETACH)) }
        // A static program that tries clone(CLONE_NEWUSER) and prints the errno.
        try test.tree.write("clone.c", """
            #define _GNU_SOURCE
            #include <errno.h>
            #include <sched.h>
            #include <signal.h>
            #include <stdio.h>
            #include <sys/syscall.h>
            #include <sys/wait.h>
            #include <unistd.h>
            int main(void) {
              long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
              if (pid == 0) _exit(0);
              if (pid > 0) { waitpid((pid_t)pid, 0, 0); printf("clone-newuser-allowed\\n"); return 0; }
              printf("clone-newuser-errno-%d\\n", errno);
              return 0;
            }
            """)
        let compiler = Process()
        compiler.executableURL = URL(fileURLWithPath: "/usr/bin/cc")
        compiler.arguments = ["-static", "-o", test.rootfs + "/bin/clonetest", test.tree.path + "/clone.c"]
        try compiler.run()
        compiler.waitUntilExit()
        #expect(compiler.terminationStatus == 0)

        var config = test.config("""
            ls /proc/self/fd | tr '\\n' ' '; echo
            grep ' /vol ' /proc/self/mountinfo
            /bin/clonetest
            head -c 16384 /dev/zero | tr '\\0' x; echo
            """)
        config.mounts = [ContainerConfig.Mount(source: volume, target: "/vol", readonly: true)]
        config.seccomp = .runtimeDefault
        config.user = .init(uid: 1000, gid: 1000)
        config.logPath = test.tree.path + "/hardening.log"
        try test.containerizer.launch(id: "hard", config: config)
        #expect(try await test.containerizer.wait(id: "hard").exitCode == 0)
        let records = readFile(test.tree.path + "/hardening.log").split(separator: "\n").map { $0.split(separator: " ", maxSplits: 3) }
        let texts = records.map { $0.count == 4 ? String($0[3]) : "" }
        #expect(!texts[0].split(separator: " ").contains("\(leaked)"), "leaked fd \(leaked) reached the container: \(texts[0])")
        let mountLine = texts[1]
        #expect(mountLine.contains(" ro,") && mountLine.contains("nosuid") && mountLine.contains("nodev") && mountLine.contains("noexec"))
        #expect(texts[2] == "clone-newuser-errno-1")
        #expect(records[3].count == 4 && String(records[3][2]) == "F" && records[3][3].count == 16384)
        #expect(records.count == 4)
    }

    @Test("destroying a running container reaps its monitor (no zombie)")
    func noZombie() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        let info = try test.containerizer.launch(id: "z", config: test.config("sleep 60"))
        try test.containerizer.destroy(id: "z")
        #expect(!FileManager.default.fileExists(atPath: "/proc/\(info.monitorPid)"))
    }

    @Test("a cgroups root that climbs out is refused", arguments: ["../escape", "/abs", "a/../b", ""])
    func cgroupsRoot(root: String) {
        #expect(throws: ContainerizerError.self) { _ = try Containerizer(stateRoot: "/tmp/unused", cgroupsRoot: root) }
    }

    @Test("launch errors are precise: missing binary, exec format error, permission denied", arguments: [
        ("/bin/nonexistent", ENOENT), ("/bin/garbage", ENOEXEC), ("/bin/noexec", EACCES),
    ])
    func launchErrors(path: String, code: Int32) throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        try test.tree.write("rootfs/bin/garbage", "\u{7f}ELF this is not a program", mode: 0o755)
        try test.tree.write("rootfs/bin/noexec", "#!/bin/sh\necho hi\n", mode: 0o644)
        var config = test.config("")
        config.args = [path]
        #expect {
            try test.containerizer.launch(id: "bad", config: config)
        } throws: { error in
            guard let error = error as? ContainerizerError else { return false }
            return error.kind == .launch(stage: "exec") && error.errno == code && error.description.contains(path)
        }
        // Nothing is left of the failed launch.
        #expect(test.containerizer.list().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: "\(test.containerizer.layout.v1["memory"]!)/\(test.cgroupsRoot)/bad"))
    }

    @Test("mount targets cannot escape the rootfs: .. is refused, symlinks resolve inside the root")
    func mountEscapes() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        let source = try test.tree.directory("volume")
        try test.tree.write("volume/marker", "inside\n")
        var config = test.config("true")
        config.mounts = [ContainerConfig.Mount(source: source, target: "/data/../../etc")]
        #expect(throws: ContainerizerError.self) { try test.containerizer.launch(id: "dots", config: config) }
        config.mounts = [ContainerConfig.Mount(source: source + "/../volume", target: "/data")]
        #expect(throws: ContainerizerError.self) { try test.containerizer.launch(id: "dots2", config: config) }

        // An absolute symlink in the image pointing at the host's /etc: the mount lands in the
        // rootfs's /etc, never on the host's.
        try FileManager.default.createSymbolicLink(atPath: test.rootfs + "/escape", withDestinationPath: "/etc")
        config = test.config("cat /escape/marker")
        config.mounts = [ContainerConfig.Mount(source: source, target: "/escape", readonly: true)]
        config.logPath = test.tree.path + "/escape.log"
        try test.containerizer.launch(id: "symlink", config: config)
        #expect(try await test.containerizer.wait(id: "symlink").exitCode == 0)
        #expect(readFile(test.tree.path + "/escape.log").contains("F inside"))
        #expect(!FileManager.default.fileExists(atPath: "/etc/marker"))
        #expect(!readFile("/proc/self/mountinfo").contains(" /etc "))
    }

    @Test("a tty container gets a pty; user, groups, rlimits and a read-only rootfs apply")
    func processSettings() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        var config = test.config("tty; id; ulimit -n; touch /x 2>/dev/null && echo rw || echo ro")
        config.tty = true
        config.user = .init(uid: 65534, gid: 65534, additionalGids: [10, 20])
        config.rlimits = [.init(name: "NOFILE", soft: 333, hard: 444)]
        config.readonlyRootfs = true
        config.logPath = test.tree.path + "/tty.log"
        try test.containerizer.launch(id: "tty", config: config)
        #expect(try await test.containerizer.wait(id: "tty").exitCode == 0)
        let lines = readFile(test.tree.path + "/tty.log").split(separator: "\n").map { $0.split(separator: " ", maxSplits: 3).last.map(String.init) ?? "" }
        #expect(lines.first?.hasPrefix("/dev/pts/") == true)
        #expect(lines.contains { $0.hasPrefix("uid=65534(nobody) gid=65534(nogroup) groups=") && $0.contains("10") && $0.contains("20") })
        #expect(lines.contains("333"))
        #expect(lines.contains("ro"))
    }

    @Test("joining another container's network namespace by path; ReopenContainerLog after rotation")
    func joinAndReopen() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        let first = try test.containerizer.launch(id: "netowner", config: test.config("sleep 60"))
        var config = test.config("while true; do readlink /proc/self/ns/net; sleep 0.1; done")
        config.namespaces.network = .join("/proc/\(first.pid)/ns/net")
        config.logPath = test.tree.path + "/join.log"
        try test.containerizer.launch(id: "joiner", config: config)
        try await Task.sleep(for: .milliseconds(300))
        let owner = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(first.pid)/ns/net")
        #expect(readFile(test.tree.path + "/join.log").contains("F \(owner)"))
        // Rotate: the monitor keeps writing the old file until told to reopen.
        try FileManager.default.moveItem(atPath: test.tree.path + "/join.log", toPath: test.tree.path + "/join.log.1")
        try test.containerizer.reopenLog(id: "joiner")
        try await Task.sleep(for: .milliseconds(300))
        #expect(readFile(test.tree.path + "/join.log").contains("F \(owner)"))
    }

    @Test("a new containerizer over the same state recovers 20 containers, those that exited meanwhile with their codes")
    func recovery() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        for index in 0..<20 {
            let script = index % 4 == 0 ? "sleep 0.3; exit \(index)" : "sleep 60"
            try test.containerizer.launch(id: "r\(index)", config: test.config(script))
        }
        // The "agent" goes away: a new containerizer over the same state and cgroups root,
        // after some containers ended unwatched.
        try await Task.sleep(for: .seconds(1))
        let restarted = try Containerizer(stateRoot: test.containerizer.stateRoot, cgroupsRoot: test.cgroupsRoot,
                                          isolation: Isolators.availableNames)
        let report = try restarted.recover()
        #expect(report.running.count == 15)
        #expect(report.exited.count == 5)
        for index in stride(from: 0, to: 20, by: 4) {
            let exit = try #require(restarted.info(id: "r\(index)")?.exit)
            #expect(exit.exitCode == Int32(index))
        }
        // A recovered running container is supervised again: its exit is seen.
        try restarted.kill(id: "r1", signal: SIGKILL)
        #expect(try await restarted.wait(id: "r1").exitCode == 137)
        for info in restarted.list() { try restarted.destroy(id: info.id) }
        #expect(restarted.list().isEmpty)
    }

    @Test("a half-created container (no launch record) is cleaned up by recovery")
    func halfCreated() throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        let directory = test.containerizer.stateRoot + "/containers/half"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try test.containerizer.cgroup(for: "half").create()
        let report = try test.containerizer.recover()
        #expect(report.removed == ["half"])
        #expect(!FileManager.default.fileExists(atPath: directory))
        #expect(!FileManager.default.fileExists(atPath: "\(test.containerizer.layout.v1["memory"]!)/\(test.cgroupsRoot)/half"))
    }

    @Test("a deferred destroy kills and removes the cgroup at once, frees the id, and deletes the checkpoint in the background")
    func deferredDestroy() async throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        let containers = test.containerizer.stateRoot + "/containers"
        let info = try test.containerizer.launch(id: "d", config: test.config("sleep 60 & sleep 60"))
        let processes = test.containerizer.cgroup(for: "d").processes()
        try test.containerizer.destroy(id: "d", deferRemoval: true)
        for pid in processes { #expect(kill(pid, 0) != 0) }
        #expect(!FileManager.default.fileExists(atPath: "/proc/\(info.monitorPid)"))
        for directory in test.containerizer.cgroup(for: "d").directories { #expect(!FileManager.default.fileExists(atPath: directory)) }
        #expect(!FileManager.default.fileExists(atPath: containers + "/d"))
        #expect(test.containerizer.info(id: "d") == nil)
        // The id is free again at once.
        try test.containerizer.launch(id: "d", config: test.config("sleep 60"))
        try test.containerizer.destroy(id: "d", deferRemoval: true)
        test.containerizer.removals.wait()
        #expect(try FileManager.default.contentsOfDirectory(atPath: containers).isEmpty)
    }

    @Test("recovery deletes checkpoints a deferred destroy moved aside and did not finish deleting")
    func deferredDestroyInterrupted() throws {
        let test = try TestContainerizer()
        defer { test.finish() }
        let aside = test.containerizer.stateRoot + "/containers/.removing-gone-1"
        try FileManager.default.createDirectory(atPath: aside, withIntermediateDirectories: true)
        try "exit_code=0\n".write(toFile: aside + "/exit", atomically: false, encoding: .utf8)
        let report = try test.containerizer.recover()
        #expect(report == Containerizer.RecoveryReport())
        #expect(!FileManager.default.fileExists(atPath: aside))
    }

    @Test("destroy leaves no process, cgroup or mount behind")
    func noLeftovers() async throws {
        let test = try TestContainerizer()
        var config = test.config("sleep 60 & sleep 60 & sleep 60")
        config.mounts = [ContainerConfig.Mount(source: try test.tree.directory("vol"), target: "/vol")]
        let info = try test.containerizer.launch(id: "tidy", config: config)
        let processes = test.containerizer.cgroup(for: "tidy").processes()
        #expect(processes.contains(info.pid))
        try test.containerizer.destroy(id: "tidy")
        for pid in processes { #expect(kill(pid, 0) != 0) }
        for directory in test.containerizer.cgroup(for: "tidy").directories { #expect(!FileManager.default.fileExists(atPath: directory)) }
        #expect(!readFile("/proc/self/mountinfo").contains(test.rootfs))
        test.finish()
        for directory in test.cgroupRootDirectories { #expect(!FileManager.default.fileExists(atPath: directory)) }
    }
}
