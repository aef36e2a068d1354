import Foundation
import KubeletServer

#if canImport(Glibc)
import Glibc
#endif

/// Reads a CRI log file (`<RFC3339Nano> <stdout|stderr> <P|F> <text>` per record) as the
/// kubelet's `ReadLogs` does for `kubectl logs`: partial records joined into lines, the stream
/// filter, `tailLines`, `sinceTime`/`sinceSeconds`, `timestamps`, `limitBytes`, and `follow`
/// (new records as they are written, until the container has exited and the file is read).
struct ContainerLogReader: Sendable {
    let path: String
    let request: ContainerLogsRequest
    /// Whether the container may still write (a follow ends once it has not and the file is read).
    let isRunning: @Sendable () async -> Bool

    struct Line {
        var timestamp: String
        var nanoseconds: Int64
        var stream: String
        var text: [UInt8]
    }

    func stream() -> AsyncThrowingStream<[UInt8], any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await produce(continuation)
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    private func produce(_ continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation) async throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw KubeletAPIError.notFound("failed to open log file \"\(path)\": no such file or directory")
        }
        defer { try? handle.close() }
        var pending: [UInt8] = []
        var partial: Line?
        var remainingBytes = request.limitBytes ?? Int64.max
        let since = request.sinceTimeNanoseconds
            ?? request.sinceSeconds.map { Int64((Date().timeIntervalSince1970 - Double($0)) * 1e9) }

        func emit(_ lines: [Line]) -> Bool {
            for line in lines {
                if let since, line.nanoseconds < since { continue }
                switch request.stream {
                case .stdout where line.stream != "stdout", .stderr where line.stream != "stderr": continue
                default: break
                }
                var bytes = request.timestamps ? Array((line.timestamp + " ").utf8) : []
                bytes += line.text
                bytes.append(10)
                if Int64(bytes.count) >= remainingBytes {
                    continuation.yield(Array(bytes.prefix(Int(remainingBytes))))
                    return false
                }
                remainingBytes -= Int64(bytes.count)
                continuation.yield(bytes)
            }
            return true
        }

        func lines(from data: [UInt8]) -> [Line] {
            pending += data
            var result: [Line] = []
            while let newline = pending.firstIndex(of: 10) {
                let record = Array(pending[..<newline])
                pending.removeSubrange(...newline)
                guard let parsed = Self.parse(record) else { continue }
                if var open = partial {
                    open.text += parsed.line.text
                    partial = parsed.isPartial ? open : nil
                    if !parsed.isPartial { result.append(open) }
                } else if parsed.isPartial {
                    partial = parsed.line
                } else {
                    result.append(parsed.line)
                }
            }
            return result
        }

        // What is there now.
        var existing = lines(from: Array(handle.readDataToEndOfFile()))
        if let tail = request.tailLines { existing = Array(existing.suffix(Int(max(tail, 0)))) }
        guard emit(existing) else { return }
        guard request.follow else { return }
        // New records as they come, until the container is gone and the file is read.
        while !Task.isCancelled {
            let data = Array(handle.readDataToEndOfFile())
            if !data.isEmpty {
                guard emit(lines(from: data)) else { return }
                continue
            }
            if await !isRunning() {
                let last = Array(handle.readDataToEndOfFile())
                _ = emit(lines(from: last))
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// One record: its line and whether it is partial (`P`).
    static func parse(_ record: [UInt8]) -> (line: Line, isPartial: Bool)? {
        let fields = record.split(separator: 32, maxSplits: 3, omittingEmptySubsequences: false)
        guard fields.count >= 3 else { return nil }
        let timestamp = String(decoding: fields[0], as: UTF8.self)
        let stream = String(decoding: fields[1], as: UTF8.self)
        let tag = String(decoding: fields[2], as: UTF8.self)
        let text = fields.count > 3 ? Array(fields[3]) : []
        return (Line(timestamp: timestamp, nanoseconds: nanoseconds(timestamp), stream: stream, text: text), tag.hasPrefix("P"))
    }

    /// RFC 3339 (with fraction and zone) to Unix nanoseconds; 0 when unreadable.
    static func nanoseconds(_ text: String) -> Int64 {
        let characters = Array(text)
        guard characters.count >= 20 else { return 0 }
        let base = String(characters[0..<19])  // 2006-01-02T15:04:05
        var rest = characters[19...]
        var fraction: Int64 = 0
        if rest.first == "." {
            let digits = rest.dropFirst().prefix { $0.isNumber }
            fraction = Int64(String(digits).padding(toLength: 9, withPad: "0", startingAt: 0).prefix(9)) ?? 0
            rest = rest.dropFirst(1 + digits.count)
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        guard let date = formatter.date(from: base + String(rest)) else { return 0 }
        return Int64(date.timeIntervalSince1970) * 1_000_000_000 + fraction
    }
}
