import ArgumentParser
import SwiftletConfig
import Yams

/// `swiftlet config default|dump`, as `containerd config default`.
struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print configuration.",
        subcommands: [Default.self, Dump.self]
    )

    struct Default: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the built-in defaults as a config file.")
        func run() throws {
            print(try YAMLEncoder().encode(SwiftletConfiguration()), terminator: "")
        }
    }

    struct Dump: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the effective configuration (defaults, file, flags).")
        @OptionGroup var flags: ConfigFlags
        func run() throws {
            print(try YAMLEncoder().encode(try flags.resolve()), terminator: "")
        }
    }
}
