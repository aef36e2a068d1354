import ArgumentParser
import CNI
import Foundation

/// `swiftlet cni add|del|check`: run a CNI network on a network namespace by hand, as
/// `cnitool` does, through the same code the runtime uses.
struct CNICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cni", abstract: "Attach or detach a network namespace with a CNI network config (like cnitool).",
        subcommands: [Add.self, Del.self, Check.self])

    struct Options: ParsableArguments {
        @Option(help: "The network config file (.conf or .conflist).") var conf: String
        @Option(help: "The network namespace path (/run/netns/NAME).") var netns: String
        @Option(help: "The container id the attachment is for.") var id: String
        @Option(help: "The interface inside the namespace.") var ifname: String = "eth0"
        @Option(name: .customLong("cni-bin-dir"), help: "Plugin directories (repeatable).") var binDirs: [String] = ["/usr/lib/cni", "/opt/cni/bin"]
        @Option(name: .customLong("cache-dir"), help: "Where results are cached. Default: /var/lib/swiftlet/cni.") var cacheDir: String = "/var/lib/swiftlet/cni"

        func run(_ body: (CNIRunner, CNINetworkConfig) throws -> Void) throws {
            try body(CNIRunner(binDirs: binDirs, cacheDir: cacheDir), try CNINetworkConfig(file: conf))
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "ADD: attach; print the result.")
        @OptionGroup var options: Options
        func run() async throws {
            try options.run { runner, network in
                print(try runner.add(network, containerID: options.id, netns: options.netns, interface: options.ifname).json)
            }
        }
    }

    struct Del: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "DEL: detach (idempotent).")
        @OptionGroup var options: Options
        func run() async throws {
            try options.run { runner, network in
                try runner.del(network, containerID: options.id, netns: options.netns, interface: options.ifname)
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "CHECK: verify the attachment.")
        @OptionGroup var options: Options
        func run() async throws {
            try options.run { runner, network in
                try runner.check(network, containerID: options.id, netns: options.netns, interface: options.ifname)
            }
        }
    }
}
