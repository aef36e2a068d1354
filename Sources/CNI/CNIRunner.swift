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

    /// Attaches `netns` to the network; returns the result.
    public func add(_ network: CNINetworkConfig, containerID: String, netns: String, interface: String = "eth0",
                    runtimeConfig: RuntimeConfig = [:]) throws(CNIError) -> CNIResult {
        var previous: Any?
        for plugin in network.plugins {
            let output = try run(network, plugin, command: "ADD", containerID: containerID, netns: netns, interface: interface,
                                 previous: previous, runtimeConfig: runtimeConfig)
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
                    runtimeConfig: RuntimeConfig = [:]) throws(CNIError) {
        let cached = cachedResult(network: network, containerID: containerID, interface: interface)
        for plugin in network.plugins.reversed() {
            _ = try run(network, plugin, command: "DEL", containerID: containerID, netns: netns, interface: interface,
                        previous: cached, runtimeConfig: runtimeConfig)
        }
        unlink(cachePath(network: network, containerID: containerID, interface: interface))
    }

    /// Verifies the attachment is as ADD left it (CNI 0.4.0+).
    public func check(_ network: CNINetworkConfig, containerID: String, netns: String, interface: String = "eth0",
                      runtimeConfig: RuntimeConfig = [:]) throws(CNIError) {
        guard let cached = cachedResult(network: network, containerID: containerID, interface: interface) else {
            throw CNIError(network: network.name, plugin: "", code: 0, message: "no cached result for \(containerID): was ADD run?")
        }
        for plugin in network.plugins {
            _ = try run(network, plugin, command: "CHECK", containerID: containerID, netns: netns, interface: interface,
                        previous: cached, runtimeConfig: runtimeConfig)
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
                     interface: String, previous: Any?, runtimeConfig: RuntimeConfig) throws(CNIError) -> String {
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
        let environment = [
            "CNI_COMMAND=\(command)", "CNI_CONTAINERID=\(containerID)", "CNI_NETNS=\(netns)", "CNI_IFNAME=\(interface)",
            "CNI_PATH=\(binDirs.joined(separator: ":"))", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        ]
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
    static func execute(_ binary: String, input: [UInt8], environment: [String]) -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.environment = Dictionary(uniqueKeysWithValues: environment.map {
            let parts = $0.split(separator: "=", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        })
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        do {
            try process.run()
        } catch {
            return (127, "", "cannot run \(binary): \(error)")
        }
        stdin.fileHandleForWriting.write(Data(input))
        try? stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self),
                String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
