import Logging
import Synchronization
import SwiftletLogging
import Testing

@Suite("log lines")
struct LogLineHandlerTests {
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
    }

    func logger(_ format: LogLineHandler.Format, level: Logger.Level = .info) -> (Logger, Lines) {
        let lines = Lines()
        let sink = LineSink { line in lines.lines.withLock { $0.append(line) } }
        let logger = Logger(label: "test") { label in LogLineHandler(label: label, level: level, format: format, sink: sink) }
        return (logger, lines)
    }

    @Test("logfmt lines read as containerd's: time, level, msg, then sorted keys, quoted when needed")
    func logfmt() throws {
        let (logger, lines) = logger(.logfmt)
        logger.info("serving CRI", metadata: ["address": "/run/swiftlet/swiftlet.sock", "note": "has space", "q": "say \"hi\""])
        let line = try #require(lines.all.first)
        #expect(line.hasPrefix("time=\""))
        #expect(line.contains(" level=info msg=\"serving CRI\" address=/run/swiftlet/swiftlet.sock note=\"has space\" q=\"say \\\"hi\\\"\"\n"))
        // RFC 3339 with nanoseconds, UTC.
        let time = line.split(separator: "\"")[1]
        #expect(time.count == 30 && time.hasSuffix("Z"))
    }

    @Test("JSON lines escape what JSON needs")
    func json() throws {
        let (logger, lines) = logger(.json)
        logger.warning("two\nlines", metadata: ["tab": "a\tb"])
        let line = try #require(lines.all.first)
        #expect(line.contains("\"level\":\"warning\",\"msg\":\"two\\nlines\",\"tab\":\"a\\tb\"}"))
    }

    @Test("events below the level are not written")
    func level() {
        let (logger, lines) = logger(.logfmt, level: .info)
        logger.debug("hidden")
        logger.error("shown")
        #expect(lines.all.count == 1)
        #expect(lines.all[0].contains("level=error"))
    }
}
