import ArgumentParser
import Containerizer
import SwiftletConfig
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `swiftlet containers run|list|kill|rm|wait`: the containerizer without the CRI, for
/// operators (like `mesos-containerizer` and `ctr`). Uses the agent's --state and
/// --cgroups-root, so it sees (and may manage) the agent's containers too; containers keep
/// running after the command exits, supervised by their swiftlet-monitor.
struct Containers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run and inspect containers directly (debugging the containerizer).",
        subcommands: [RunContainer.self, ListContainers.self, KillContainer.self, RemoveContainer.self, WaitContainer.self, BenchContainers.self]
    )
}

/// The options every `containers` subcommand shares.
struct ContainerizerOptions: ParsableArguments {
    @Option(name: .long, help: "Runtime state (as swiftlet run). Default: /run/swiftlet.")
    var state: String = "/run/swiftlet"

    @Option(name: .customLong("cgroups-root"), help: "The cgroup holding containers. Default: swiftlet.")
    var cgroupsRoot: String = SwiftletConfiguration().cgroupsRoot

    @Option(name: .long, help: "Isolators, comma-separated (\(Isolators.availableNames.joined(separator: ", "))).")
    var isolation: String = SwiftletConfiguration().isolation.joined(separator: ",")

    @Option(name: .customLong("monitor-path"), help: "The swiftlet-monitor executable. Default: next to swiftlet.")
    var monitorPath: String = Launcher.defaultMonitorPath()

    func containerizer() throws -> Containerizer {
        let names = isolation.split(separator: ",").map { String($0.filter { $0 != " " }) }
        let containerizer = try Containerizer(stateRoot: state + "/containerizer", cgroupsRoot: cgroupsRoot, isolation: names,
                                              monitorPath: monitorPath)
        try containerizer.recover()
        return containerizer
    }
}

struct RunContainer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a container from a root filesystem directory.",
        discussion: "Example: swiftlet containers run --rootfs /srv/busybox --memory 64m --cpus 0.5 demo -- sh -c 'echo hi'")

    @OptionGroup var options: ContainerizerOptions
    @Option(help: "The root filesystem directory.") var rootfs: String
    @Option(help: "Memory limit (bytes, or with k/m/g).") var memory: String?
    @Option(help: "CPU limit in cores (0.5 = half a core).") var cpus: Double?
    @Option(help: "Maximum number of processes.") var pids: Int64?
    @Option(help: "Hostname inside the container.") var hostname: String?
    @Option(name: .customLong("env"), help: "KEY=VALUE, repeatable.") var env: [String] = []
    @Option(name: .customLong("mount"), help: "SOURCE:TARGET[:ro], repeatable.") var mounts: [String] = []
    @Option(help: "The CRI log file for the output.") var log: String?
    @Option(help: "UID[:GID] to run as.") var user: String?
    @Option(help: "RuntimeDefault, unconfined, or a profile path.") var seccomp: String = "RuntimeDefault"
    @Flag(help: "Host network namespace.") var hostNetwork = false
    @Flag(help: "Allocate a pty.") var tty = false
    @Flag(name: .shortAndLong, help: "Return once it runs instead of waiting for its exit.") var detach = false
    @Argument(help: "Container id.") var id: String
    @Argument(parsing: .postTerminator, help: "The command and its arguments.") var command: [String] = []

    func run() async throws {
        guard !command.isEmpty else { throw ValidationError("give the command after --") }
        var config = ContainerConfig(rootfs: rootfs, args: command)
        config.env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + env
        config.hostname = hostname ?? id
        config.logPath = log
        config.tty = tty
        config.noNewPrivileges = true
        config.seccomp = switch seccomp.lowercased() {
        case "runtimedefault": .runtimeDefault
        case "unconfined": .unconfined
        default: .localhost(seccomp)
        }
        if hostNetwork { config.namespaces.network = .host }
        if let memory { config.resources.memoryLimitBytes = try Self.bytes(memory) }
        if let cpus {
            config.resources.cpuPeriod = 100_000
            config.resources.cpuQuota = Int64(cpus * 100_000)
        }
        if let pids { config.resources.pidsLimit = pids }
        if let user {
            let parts = user.split(separator: ":").compactMap { UInt32($0) }
            guard (1...2).contains(parts.count) else { throw ValidationError("--user wants UID or UID:GID") }
            config.user = .init(uid: parts[0], gid: parts.count > 1 ? parts[1] : parts[0])
        }
        for mount in mounts {
            let parts = mount.split(separator: ":").map(String.init)
            guard parts.count >= 2 else { throw ValidationError("--mount wants SOURCE:TARGET[:ro]") }
            config.mounts.append(.init(source: parts[0], target: parts[1], readonly: parts.count > 2 && parts[2] == "ro"))
        }
        let containerizer = try options.containerizer()
        let info = try containerizer.launch(id: id, config: config)
        if detach {
            print(info.pid)
            return
        }
        let exit = try await containerizer.wait(id: id)
        print("exit_code=\(exit.exitCode) reason=\(exit.reason)")
        throw ExitCode(exit.exitCode)
    }

    static func bytes(_ text: String) throws -> Int64 {
        let lower = text.lowercased()
        let units: [(String, Int64)] = [("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)]
        for (suffix, factor) in units where lower.hasSuffix(suffix) || lower.hasSuffix(suffix + "i") || lower.hasSuffix(suffix + "b") {
            let digits = lower.drop { !$0.isNumber }.prefix { $0.isNumber }
            if let value = Int64(digits) { return value * factor }
        }
        guard let value = Int64(text) else { throw ValidationError("\"\(text)\" is not a size such as 64m") }
        return value
    }
}

struct ListContainers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List containers and their state.")
    @OptionGroup var options: ContainerizerOptions
    @Flag(name: .shortAndLong, help: "Ids only.") var quiet = false

    func run() async throws {
        let containers = try options.containerizer().list()
        if quiet {
            for info in containers { print(info.id) }
            return
        }
        print("ID".padding(24) + "PID".padding(9) + "STATE".padding(9) + "EXIT")
        for info in containers {
            let exit = info.exit.map { "\($0.exitCode) (\($0.reason))" } ?? ""
            print(info.id.padding(24) + String(info.pid).padding(9) + info.state.rawValue.padding(9) + exit)
        }
    }
}

struct KillContainer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Signal a container (KILL kills its whole cgroup).")
    @OptionGroup var options: ContainerizerOptions
    @Option(name: .shortAndLong, help: "Signal name or number. Default: TERM.") var signal: String = "TERM"
    @Argument var id: String

    func run() async throws {
        let names: [String: Int32] = ["TERM": SIGTERM, "KILL": SIGKILL, "INT": SIGINT, "HUP": SIGHUP, "USR1": SIGUSR1, "USR2": SIGUSR2, "QUIT": SIGQUIT]
        let upper = signal.uppercased()
        guard let number = names[upper.hasPrefix("SIG") ? String(upper.dropFirst(3)) : upper] ?? Int32(signal) else {
            throw ValidationError("unknown signal \(signal)")
        }
        try options.containerizer().kill(id: id, signal: number)
    }
}

struct RemoveContainer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove containers (killing what still runs).")
    @OptionGroup var options: ContainerizerOptions
    @Argument var ids: [String]

    func run() async throws {
        let containerizer = try options.containerizer()
        for id in ids { try containerizer.destroy(id: id) }
    }
}

struct WaitContainer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wait", abstract: "Wait for a container to exit; print its exit.")
    @OptionGroup var options: ContainerizerOptions
    @Argument var id: String

    func run() async throws {
        let exit = try await options.containerizer().wait(id: id)
        print("exit_code=\(exit.exitCode) reason=\(exit.reason)")
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}

/// `swiftlet containers bench`: launch latency and supervision memory, measured in-process
/// (hack/bench-containerizer.sh runs it beside runc and containerd).
struct BenchContainers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Launch N idle containers; print launch latency and monitor memory as JSON.")
    @OptionGroup var options: ContainerizerOptions
    @Option(help: "The root filesystem directory.") var rootfs: String
    @Option(help: "How many containers.") var count: Int = 20

    func run() async throws {
        let containerizer = try options.containerizer()
        var latencies: [Double] = []
        var monitors: [Int32] = []
        let prefix = "bench-\(getpid())"
        defer {
            for index in 0..<count { try? containerizer.destroy(id: "\(prefix)-\(index)") }
        }
        for index in 0..<count {
            var config = ContainerConfig(rootfs: rootfs, args: ["sleep", "3600"])
            config.env = ["PATH=/bin"]
            let started = ContinuousClock.now
            let info = try containerizer.launch(id: "\(prefix)-\(index)", config: config)
            let elapsed = ContinuousClock.now - started
            latencies.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
            monitors.append(info.monitorPid)
        }
        usleep(300_000)
        var pss = 0, rss = 0
        for pid in monitors {
            let rollup = CgroupLayout.readFile("/proc/\(pid)/smaps_rollup") ?? ""
            for line in rollup.split(separator: "\n") {
                let parts = line.split(separator: " ", omittingEmptySubsequences: true)
                if parts.first == "Pss:", let value = Int(parts[1]) { pss += value }
                if parts.first == "Rss:", let value = Int(parts[1]) { rss += value }
            }
        }
        let sorted = latencies.sorted()
        let p50 = sorted[sorted.count / 2], p99 = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
        let mean = latencies.reduce(0, +) / Double(latencies.count)
        print("{\"count\": \(count), \"launch_ms_mean\": \(mean), \"launch_ms_p50\": \(p50), \"launch_ms_p99\": \(p99), "
              + "\"pss_kib_per_container\": \(pss / count), \"rss_kib_per_container\": \(rss / count)}")
    }
}
