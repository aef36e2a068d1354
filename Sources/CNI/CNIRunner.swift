import CSwiftletSyscalls
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Why a CNI operation failed.
public struct CNIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var network: String
    public var plugin: String
    /// The CNI error code the plugin returned (0 if it returned none).
    public var code: Int
    public var message: String

    public var description: String {
        "CNI network \(network), plugin \(plugin): \(message)\(code != 0 ? " (code \(code))" : "")"
    }
}

/// A network config file: one plugin (`.conf`) or a chain (`.conflist`), as raw JSON so every
/// plugin gets its own keys untouched.
public struct CNINetworkConfig: @unchecked Sendable {
    public let name: String
    public let cniVersion: String
    /// The plugin configurations, in chain order.
    public let plugins: [[String: Any]]
    public let file: String

    /// Loads a `.conf`, `.json` or `.conflist` file.
    public init(file: String) throws(CNIError) {
        guard let data = FileManager.default.contents(atPath: file),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw CNIError(network: file, plugin: "", code: 0, message: "cannot read a JSON network config")
        }
        name = object["name"] as? String ?? ""
        cniVersion = object["cniVersion"] as? String ?? "0.4.0"
        if let list = object["plugins"] as? [[String: Any]] {
            plugins = list
        } else {
            plugins = [object]
        }
        self.file = file
        guard !name.isEmpty, !plugins.isEmpty, plugins.allSatisfy({ ($0["type"] as? String)?.isEmpty == false }) else {
            throw CNIError(network: file, plugin: "", code: 0, message: "a network needs a name and plugins with a type")
        }
    }
}

/// The interfaces and addresses ADD produced (CNI result, any version from 0.3.0).
public struct CNIResult: Sendable, Equatable {
    /// `10.88.0.2/16`, `fd00::2/64`
    public var addresses: [String]
    /// The raw result, passed on as `prevResult` and kept for DEL.
    public var json: String
}

/// Runs CNI plugins per the CNI specification: ADD down the chain with each result passed on
/// as `prevResult`, DEL up the chain with the cached result, CHECK; `CNI_*` environment,
/// configuration on standard input, errors parsed from standard output. Results are cached
/// (`<cacheDir>/results/<network>-<container>-<interface>`, as libcni does) so a DEL after an
/// agent restart still has them.
public struct CNIRunner: Sendable {
    public let binDirs: [String]
    public let cacheDir: String

    public init(binDirs: [String], cacheDir: String) {
        self.binDirs = binDirs
        self.cacheDir = cacheDir
    }

    /// Capabilities the runtime fills (`portMappings`), keyed as CNI's runtimeConfig.
    public typealias RuntimeConfig = [String: Any]
    /// `CNI_ARGS` pairs (K8S_POD_NAMESPACE, K8S_POD_NAME, …); `IgnoreUnknown=1` is added.
    public typealias Arguments = [(String, String)]

    /// Attaches `netns` to the network; returns the result.
    public func add(_ network: CNINetworkConfig, containerID: String, netns: String, interface: String = "eth0",
                    runtimeConfig: RuntimeConfig = [:], arguments: Arguments = []) throws(CNIError) -> CNIResult {
        var previous: Any?
        for plugin in network.plugins {
            let output = try run(network, plugin, command: "ADD", containerID: containerID, netns: netns, interface: interface,
                                 previous: previous, runtimeConfig: runtimeConfig, arguments: arguments)
            previous = try? JSONSerialization.jsonObject(with: Data(output.utf8))
        }
        let json = previous.flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
            .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let addresses = ((previous as? [String: Any])?["ips"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String }
        let result = CNIResult(addresses: addresses, json: json)
        try cache(result, network: network, containerID: containerID, interface: interface)
        return result
    }

    /// Detaches; idempotent, as the spec requires (a missing netns or cache is not an error).
    public func del(_ network: CNINetworkConfig, containerID: String, netns: String, interface: String = "eth0",
                    runtimeConfig: RuntimeConfig = [:], arguments: Arguments = []) throws(CNIError) {
        let cached = cachedResult(network: network, containerID: containerID, interface: interface)
        for plugin in network.plugins.reversed() {
            _ = try run(network, plugin, command: "DEL", containerID: containerID, netns: netns, interface: interface,
                        previous: cached, runtimeConfig: runtimeConfig, arguments: arguments)
        }
        unlink(cachePath(network: network, containerID: containerID, interface: interface))
    }

    /// Verifies the attachment is as ADD left it (CNI 0.4.0+).
    public func check(_ network: CNINetworkConfig, containerID: String, netns: String, interface: String = "eth0",
                      runtimeConfig: RuntimeConfig = [:], arguments: Arguments = []) throws(CNIError) {
        guard let cached = cachedResult(network: network, containerID: containerID, interface: interface) else {
            throw CNIError(network: network.name, plugin: "", code: 0, message: "no cached result for \(containerID): was ADD run?")
        }
        for plugin in network.plugins {
            _ = try run(network, plugin, command: "CHECK", containerID: containerID, netns: netns, interface: interface,
                        previous: cached, runtimeConfig: runtimeConfig, arguments: arguments)
        }
    }

    // MARK: Cache

    func cachePath(network: CNINetworkConfig, containerID: String, interface: String) -> String {
        "\(cacheDir)/results/\(network.name)-\(containerID)-\(interface)"
    }

    private func cache(_ result: CNIResult, network: CNINetworkConfig, containerID: String, interface: String) throws(CNIError) {
        let path = cachePath(network: network, containerID: containerID, interface: interface)
        do {
            try FileManager.default.createDirectory(atPath: cacheDir + "/results", withIntermediateDirectories: true)
            try result.json.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw CNIError(network: network.name, plugin: "", code: 0, message: "cannot cache the result at \(path): \(error)")
        }
    }

    func cachedResult(network: CNINetworkConfig, containerID: String, interface: String) -> Any? {
        FileManager.default.contents(atPath: cachePath(network: network, containerID: containerID, interface: interface))
            .flatMap { try? JSONSerialization.jsonObject(with: $0) }
    }

    // MARK: Plugins

    private func run(_ network: CNINetworkConfig, _ plugin: [String: Any], command: String, containerID: String, netns: String,
                     interface: String, previous: Any?, runtimeConfig: RuntimeConfig, arguments: Arguments) throws(CNIError) -> String {
        let type = plugin["type"] as? String ?? ""
        let candidates: [String] = binDirs.map { directory in directory + "/" + type }
        guard let binary = candidates.first(where: { path in access(path, X_OK) == 0 }) else {
            throw CNIError(network: network.name, plugin: type, code: 0, message: "no plugin \(type) in \(binDirs.joined(separator: ":"))")
        }
        var config = plugin
        config["name"] = network.name
        config["cniVersion"] = network.cniVersion
        if let previous { config["prevResult"] = previous }
        if let capabilities = plugin["capabilities"] as? [String: Bool] {
            let wanted = runtimeConfig.filter { capabilities[$0.key] == true }
            if !wanted.isEmpty { config["runtimeConfig"] = wanted }
        }
        guard let input = try? JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]) else {
            throw CNIError(network: network.name, plugin: type, code: 0, message: "cannot encode the plugin config")
        }
        var environment = [
            "CNI_COMMAND=\(command)", "CNI_CONTAINERID=\(containerID)", "CNI_NETNS=\(netns)", "CNI_IFNAME=\(interface)",
            "CNI_PATH=\(binDirs.joined(separator: ":"))", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        if !arguments.isEmpty {
            environment.append("CNI_ARGS=" + (["IgnoreUnknown=1"] + arguments.map { "\($0.0)=\($0.1)" }).joined(separator: ";"))
        }
        let (status, output, errors) = Self.execute(binary, input: Array(input), environment: environment)
        if status != 0 {
            let parsed = (try? JSONSerialization.jsonObject(with: Data(output.utf8))) as? [String: Any]
            var message = errors.isEmpty ? "exit status \(status)" : errors
            if let text = parsed?["msg"] as? String {
                message = text
                if let details = parsed?["details"] as? String, !details.isEmpty { message += ": " + details }
            }
            throw CNIError(network: network.name, plugin: type, code: parsed?["code"] as? Int ?? 0, message: "\(command): \(message)")
        }
        return output
    }

    /// Runs a plugin with its configuration on standard input; returns (status, stdout, stderr).
    /// posix_spawn and three pipes, drained with poll(2) so a chatty plugin cannot deadlock.
    static func execute(_ binary: String, input: [UInt8], environment: [String]) -> (Int32, String, String) {
        var stdinPipe: [Int32] = [-1, -1], stdoutPipe: [Int32] = [-1, -1], stderrPipe: [Int32] = [-1, -1]
        guard swl_pipe_cloexec(&stdinPipe) == 0, swl_pipe_cloexec(&stdoutPipe) == 0, swl_pipe_cloexec(&stderrPipe) == 0 else {
            return (127, "", "pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup(binary), nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, binary, &actions, nil, &argv, &envp)
        close(stdinPipe[0])
        close(stdoutPipe[1])
        close(stderrPipe[1])
        guard spawned == 0 else {
            close(stdinPipe[1]); close(stdoutPipe[0]); close(stderrPipe[0])
            return (127, "", "cannot run \(binary): \(String(cString: strerror(spawned)))")
        }
        // A plugin that exits before reading all its input must not kill this process.
        signal(SIGPIPE, SIG_IGN)
        var written = 0
        var output: [UInt8] = [], errors: [UInt8] = []
        var fds = [pollfd(fd: stdinPipe[1], events: Int16(POLLOUT), revents: 0),
                   pollfd(fd: stdoutPipe[0], events: Int16(POLLIN), revents: 0),
                   pollfd(fd: stderrPipe[0], events: Int16(POLLIN), revents: 0)]
        if input.isEmpty { close(fds[0].fd); fds[0].fd = -1 }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while fds[1].fd >= 0 || fds[2].fd >= 0 {
            if poll(&fds, 3, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            if fds[0].fd >= 0 && fds[0].revents != 0 {
                let count = input.withUnsafeBytes { Glibc.write(fds[0].fd, $0.baseAddress! + written, input.count - written) }
                if count > 0 { written += count }
                if count < 0 || written == input.count { close(fds[0].fd); fds[0].fd = -1 }
            }
            for index in 1...2 where fds[index].fd >= 0 && fds[index].revents != 0 {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(fds[index].fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    if index == 1 { output += chunk[..<count] } else { errors += chunk[..<count] }
                } else if count == 0 || errno != EINTR {
                    close(fds[index].fd)
                    fds[index].fd = -1
                }
            }
        }
        if fds[0].fd >= 0 { close(fds[0].fd) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, String(decoding: output, as: UTF8.self),
                String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
