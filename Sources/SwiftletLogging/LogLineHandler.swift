import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A swift-log handler writing one line per event to standard error, in the formats operators
/// know from containerd:
///
///     time="2026-11-29T07:31:33.123456789Z" level=info msg="serving CRI" address=/run/swiftlet/swiftlet.sock
///
/// or, in `.json`, `{"time":"…","level":"info","msg":"serving CRI","address":"…"}`.
public struct LogLineHandler: LogHandler {
    /// The line format.
    public enum Format: Sendable {
        case logfmt, json
    }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let format: Format
    private let label: String
    private let sink: LineSink

    /// Creates a handler writing to `sink` (standard error by default).
    public init(label: String, level: Logger.Level, format: Format, sink: LineSink = .standardError) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let time = Self.timestamp()
        let level = Self.name(event.level)
        let line: String
        switch format {
        case .logfmt:
            var text = "time=\"\(time)\" level=\(level) msg=\(Self.logfmtValue(event.message.description))"
            for key in merged.keys.sorted() {
                text += " \(key)=\(Self.logfmtValue(merged[key]!.description))"
            }
            line = text
        case .json:
            var text = "{\"time\":\"\(time)\",\"level\":\"\(level)\",\"msg\":\(Self.jsonString(event.message.description))"
            for key in merged.keys.sorted() {
                text += ",\(Self.jsonString(key)):\(Self.jsonString(merged[key]!.description))"
            }
            line = text + "}"
        }
        sink.write(line + "\n")
    }

    static func name(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "trace"
        case .debug: "debug"
        case .info, .notice: "info"
        case .warning: "warning"
        case .error: "error"
        case .critical: "fatal"
        }
    }

    /// RFC 3339 with nanoseconds, UTC.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let nanos = String(now.tv_nsec)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + String(repeating: "0", count: 9 - nanos.count) + nanos + "Z"
    }

    /// A logfmt value: bare when it needs no quoting, else quoted with escapes.
    static func logfmtValue(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains {
            $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\\" || $0.value < 0x20
        }
        guard needsQuotes else { return value }
        return "\"" + escape(value) + "\""
    }

    static func jsonString(_ value: String) -> String {
        "\"" + escape(value) + "\""
    }

    private static func escape(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count + 2)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}

/// Where log lines go: whole lines, one write each, safe from any thread.
public final class LineSink: Sendable {
    private let emit: @Sendable (String) -> Void

    /// A sink calling `emit` for each line.
    public init(_ emit: @escaping @Sendable (String) -> Void) {
        self.emit = emit
    }

    /// Standard error, one `write(2)` per line so lines from threads do not interleave.
    public static let standardError = LineSink { line in
        var line = line
        line.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }

    func write(_ line: String) {
        emit(line)
    }
}
