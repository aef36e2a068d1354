import SwiftletConfig
import Testing

@Suite("config file")
struct ConfigFileTests {
    @Test("an empty file gives the documented defaults")
    func defaults() throws {
        let configuration = try ConfigFile.parse("", path: "/etc/swiftlet/config.yaml")
        #expect(configuration.criSocket == "/run/swiftlet/swiftlet.sock")
        #expect(configuration.root == "/var/lib/swiftlet")
        #expect(configuration.state == "/run/swiftlet")
        #expect(configuration.cgroupDriver == .cgroupfs)
        #expect(configuration.cniConfDir == "/etc/cni/net.d")
        #expect(configuration.cniBinDirs == ["/usr/lib/cni", "/opt/cni/bin"])
        #expect(configuration.shutdownGracePeriod == GoDuration(seconds: 10))
    }

    @Test("keys override the defaults they name and leave the rest")
    func overrides() throws {
        let configuration = try ConfigFile.parse("""
            criSocket: /tmp/s.sock
            cgroupDriver: systemd
            logLevel: debug
            cniBinDirs: [/opt/cni/bin]
            shutdownGracePeriod: 1m30s
            """, path: "c.yaml")
        #expect(configuration.criSocket == "/tmp/s.sock")
        #expect(configuration.cgroupDriver == .systemd)
        #expect(configuration.logLevel == .debug)
        #expect(configuration.cniBinDirs == ["/opt/cni/bin"])
        #expect(configuration.shutdownGracePeriod.nanoseconds == 90_000_000_000)
        #expect(configuration.root == "/var/lib/swiftlet")
    }

    @Test("a misspelt key is an error that names it and the file")
    func unknownKey() {
        #expect {
            _ = try ConfigFile.parse("critSocket: /tmp/x.sock\n", path: "/etc/swiftlet/config.yaml")
        } throws: { error in
            let error = error as? ConfigError
            return error?.kind == .unknownKey && error?.key == "critSocket"
                && error?.description.contains("/etc/swiftlet/config.yaml") == true
        }
    }

    @Test("wrong values are errors that name the key", arguments: [
        "cgroupDriver: cgroupv3", "root: relative/path", "shutdownGracePeriod: soon", "cniBinDirs: []", "logLevel: [1]",
    ])
    func invalidValues(text: String) {
        let key = String(text.split(separator: ":")[0])
        #expect {
            _ = try ConfigFile.parse(text, path: "c.yaml")
        } throws: { error in
            (error as? ConfigError)?.kind == .invalidValue && (error as? ConfigError)?.key == key
        }
    }

    @Test("YAML syntax errors and non-mappings are errors")
    func syntax() {
        #expect(throws: ConfigError.self) { _ = try ConfigFile.parse("criSocket: [unclosed", path: "c.yaml") }
        #expect(throws: ConfigError.self) { _ = try ConfigFile.parse("- a\n- b\n", path: "c.yaml") }
    }

    @Test("a missing default file is fine, a missing named file is not")
    func missingFile() throws {
        let configuration = try ConfigFile.load("/nonexistent/swiftlet.yaml", required: false)
        #expect(configuration == SwiftletConfiguration())
        #expect(throws: ConfigError.self) { _ = try ConfigFile.load("/nonexistent/swiftlet.yaml", required: true) }
    }

    @Test("Go durations parse as Go parses them", arguments: [
        ("10s", Int64(10_000_000_000)), ("500ms", 500_000_000), ("1h30m", 5_400_000_000_000), ("1.5s", 1_500_000_000),
        ("0", 0), ("250us", 250_000),
    ])
    func durations(text: String, nanoseconds: Int64) {
        #expect(GoDuration(parsing: text)?.nanoseconds == nanoseconds)
    }

    @Test("bad durations are rejected", arguments: ["", "10", "s", "1x", "1.2.3s"])
    func badDurations(text: String) {
        #expect(GoDuration(parsing: text) == nil)
    }
}
