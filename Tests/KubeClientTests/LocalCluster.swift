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
    }

    /// Starts a cluster in a new directory under /tmp; on failure the directory is taken down too.
    static func up(nodeName: String) async throws -> LocalCluster {
        var template = Array("/tmp/kubeclient-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw Failure(description: "mkdtemp failed") }
        let base = String(cString: made)
        let directory = base + "/cluster"
        let (status, output) = await run([script, "up", "--dir", directory, "--node-name", nodeName], log: base + "/up.log")
        guard status == 0 else {
            let tails = ["kube-apiserver", "etcd"].map { name in
                let log = (try? String(contentsOfFile: "\(directory)/\(name).log", encoding: .utf8)) ?? ""
                return "--- \(name).log\n" + log.split(separator: "\n").suffix(20).joined(separator: "\n")
            }.joined(separator: "\n")
            _ = await run([script, "down", "--dir", directory], log: base + "/down.log")
            try? FileManager.default.removeItem(atPath: base)
            throw Failure(description: "local-up-cluster.sh up exited \(status):\n\(output)\n\(tails)")
        }
        var env: [String: String] = [:]
        for line in try String(contentsOfFile: directory + "/env", encoding: .utf8).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            env[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return LocalCluster(directory: directory, env: env, nodeName: nodeName)
    }

    /// Stops every component and removes the directory.
    func down() async {
        let base = (directory as NSString).deletingLastPathComponent
        let (status, output) = await Self.run([Self.script, "down", "--dir", directory], log: base + "/down.log")
        if status != 0 { print("local-up-cluster.sh down exited \(status): \(output)") }
        try? FileManager.default.removeItem(atPath: base)
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
