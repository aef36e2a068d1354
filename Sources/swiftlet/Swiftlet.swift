import ArgumentParser
import SwiftletRuntime

/// `swiftlet`: the node agent and its tools.
@main
struct Swiftlet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftlet",
        abstract: "A Kubernetes-compatible node agent: the CRI, Mesos-style containers, one node for both schedulers.",
        version: BuildInfo.version,
        subcommands: [Run.self, Containers.self, Images.self, CNICommand.self, Config.self, VersionCommand.self]
    )
}

/// `swiftlet version`
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

    func run() {
        print("swiftlet \(BuildInfo.version)")
    }
}
