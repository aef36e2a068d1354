import Dispatch
import Foundation

/// A real etcd + kube-apiserver 1.20 (plus controller manager and scheduler) on loopback, started
/// by `hack/local-up-cluster.sh up` in a fresh directory and stopped (directory removed) by
/// ``down()``. The first `up` on a fresh machine builds the binaries (minutes; cached).
final class LocalCluster: Sendable {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let script = repository + "/hack/local-up-cluster.sh"

    /// The directory `up` filled (state, logs, pki, kubeconfigs).
    let directory: String
    /// The script's DIR/env: SERVER, ADMIN_KUBECONFIG, NODE_KUBECONFIG, CA_CERT, ….
    let env: [String: String]
    let nodeName: String

    private init(directory: String, env: [String: String], nodeName: String) {
        self.directory = directory
        self.env = env
        self.nodeName = nodeName
    }

    var server: String { env["SERVER"]! }
    var adminKubeconfig: String { env["ADMIN_KUBECONFIG"]! }
    var nodeKubeconfig: String { env["NODE_KUBECONFIG"]! }
    var caCertificate: String { env["CA_CERT"]! }
    var pki: String { directory + "/pki" }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        /// A component could not bind the port `up` had chosen for it.
        var portTaken = false
    }

    /// Starts a cluster in a new directory under /tmp; on failure the directory is taken down too.
    ///
    /// `up` picks its five ports by binding port 0 and releasing them, in the ephemeral range:
    /// until a component binds its port (seconds later, one after the other), any outgoing
    /// connection on the machine (another cluster's, another test's, another build's) may take
    /// it, and that component then exits with "bind: address already in use". That is not this
    /// cluster failing: it starts again on new ports (a few times).
    static func up(nodeName: String) async throws -> LocalCluster {
        await downClustersOfDeadProcesses()
        var attempt = 1
        while true {
            do {
                return try await upOnce(nodeName: nodeName)
            } catch let failure as Failure where failure.portTaken && attempt < 4 {
                print("local-up-cluster.sh up: a port it chose was taken meanwhile; again on other ports (attempt \(attempt + 1))")
                attempt += 1
            }
        }
    }

    private static func upOnce(nodeName: String) async throws -> LocalCluster {
        var template = Array("/tmp/kubeclient-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw Failure(description: "mkdtemp failed") }
        let base = String(cString: made)
        let directory = base + "/cluster"
        try owner(pid: getpid()).write(toFile: base + "/owner", atomically: true, encoding: .utf8)
        let (status, output) = await run([script, "up", "--dir", directory, "--node-name", nodeName], log: base + "/up.log")
        guard status == 0 else {
            let names = ["kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler"]
            let logs = names.map { name in (name, (try? String(contentsOfFile: "\(directory)/\(name).log", encoding: .utf8)) ?? "") }
            let tails = logs.prefix(2).map { name, log in
                "--- \(name).log\n" + log.split(separator: "\n").suffix(20).joined(separator: "\n")
            }.joined(separator: "\n")
            let portTaken = ([output] + logs.map(\.1)).contains { $0.contains("address already in use") }
            _ = await run([script, "down", "--dir", directory], log: base + "/down.log")
            try? FileManager.default.removeItem(atPath: base)
            throw Failure(description: "local-up-cluster.sh up exited \(status):\n\(output)\n\(tails)", portTaken: portTaken)
        }
        var env: [String: String] = [:]
        for line in try String(contentsOfFile: directory + "/env", encoding: .utf8).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            env[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return LocalCluster(directory: directory, env: env, nodeName: nodeName)
    }

    /// "<pid> <start time>" of a process (empty once it is gone): the start time tells a
    /// reused pid apart.
    private static func owner(pid: pid_t) -> String {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return "" }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? "\(pid) \(fields[19])" : ""
    }

    /// A test process that died (killed by a timeout, a crash) never took its clusters down,
    /// and their daemons (setsid) live on, holding memory, CPU and ports: the clusters whose
    /// owner file names a process that is gone are taken down. (Another test process's
    /// clusters, alive, are left alone, as are directories without an owner file.)
    private static func downClustersOfDeadProcesses() async {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []
        for entry in entries where entry.hasPrefix("kubeclient-test-") {
            let base = "/tmp/" + entry
            guard let recorded = try? String(contentsOfFile: base + "/owner", encoding: .utf8),
                  let pid = recorded.split(separator: " ").first.flatMap({ pid_t($0) }),
                  owner(pid: pid) != recorded else { continue }
            print("local-up-cluster.sh: \(base) was left by a process that is gone; taking it down")
            _ = await run([script, "down", "--dir", base + "/cluster"], log: "/dev/null")
            try? FileManager.default.removeItem(atPath: base)
        }
    }

    /// Stops every component and removes the directory.
    func down() async {
        let base = (directory as NSString).deletingLastPathComponent
        let (status, output) = await Self.run([Self.script, "down", "--dir", directory], log: base + "/down.log")
        if status != 0 { print("local-up-cluster.sh down exited \(status): \(output)") }
        try? FileManager.default.removeItem(atPath: base)
    }

    /// This process's open descriptors.
    static func openDescriptors() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
    }

    /// Runs a command to completion (posix_spawn, then waitpid on a dispatch thread, not the
    /// cooperative pool; Foundation's Process did not reap the script here); its output goes to
    /// `log`, whose last lines are returned.
    static func run(_ arguments: [String], log: String) async -> (Int32, String) {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let output = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                let input = open("/dev/null", O_RDONLY | O_CLOEXEC)
                defer {
                    close(output)
                    close(input)
                }
                var actions = posix_spawn_file_actions_t()
                posix_spawn_file_actions_init(&actions)
                defer { posix_spawn_file_actions_destroy(&actions) }
                posix_spawn_file_actions_adddup2(&actions, input, 0)
                posix_spawn_file_actions_adddup2(&actions, output, 1)
                posix_spawn_file_actions_adddup2(&actions, output, 2)
                // Nothing else of this process reaches the script and the daemons it leaves running:
                // descriptors without close-on-exec (Foundation's Pipe makes them so) that another
                // test has open — the write end of a pipe it reads to the end, say — would stay
                // open in etcd and the API server until the cluster goes down. (A number closed
                // meanwhile is skipped by posix_spawn.)
                for fd in Self.openDescriptors() where fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
                var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
                defer { for pointer in argv { free(pointer) } }
                var pid: pid_t = 0
                let spawned = posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ)
                guard spawned == 0 else {
                    continuation.resume(returning: (-1, "cannot run \(arguments[0]): errno \(spawned)"))
                    return
                }
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                continuation.resume(returning: (code, text.split(separator: "\n").suffix(40).joined(separator: "\n")))
            }
        }
    }
}
