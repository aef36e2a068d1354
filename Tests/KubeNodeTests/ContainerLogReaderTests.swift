import Foundation
import KubeletServer
import SwiftletTestSupport
import Synchronization
import Testing
@testable import KubeNode

final class Flag: Sendable {
    let value = Mutex(true)
}

@Suite struct ContainerLogReaderTests {
    static let base: Int64 = 1_704_067_200  // 2024-01-01T00:00:00Z

    /// A CRI log with stdout and stderr records, one line split in partial records.
    static let log = """
        2024-01-01T00:00:01Z stdout F first
        2024-01-01T00:00:02.5Z stderr F warning: disk
        2024-01-01T00:00:03.000000001Z stdout P hel
        2024-01-01T00:00:03.000000002Z stdout P lo wor
        2024-01-01T00:00:03.000000003Z stdout F ld
        2024-01-01T00:00:04Z stdout F with  two  spaces
        2024-01-01T00:00:05Z stderr F

        """

    func request(_ configure: (inout ContainerLogsRequest) -> Void = { _ in }) -> ContainerLogsRequest {
        var request = ContainerLogsRequest(namespace: "ns", pod: "web", container: "app")
        configure(&request)
        return request
    }

    func read(_ path: String, _ request: ContainerLogsRequest, running: @escaping @Sendable () async -> Bool = { false }) async throws -> String {
        var bytes: [UInt8] = []
        for try await chunk in ContainerLogReader(path: path, request: request, isRunning: running).stream() { bytes += chunk }
        return String(decoding: bytes, as: UTF8.self)
    }

    func logFile(_ text: String = Self.log) throws -> (TemporaryTree, String) {
        let tree = try TemporaryTree(prefix: "kubenode-logs")
        return (tree, try tree.write("0.log", text))
    }

    @Test func partialRecordsAreJoined() async throws {
        let (tree, path) = try logFile()
        _ = tree
        #expect(try await read(path, request()) == "first\nwarning: disk\nhello world\nwith  two  spaces\n\n")
    }

    @Test func streamFilter() async throws {
        let (tree, path) = try logFile()
        _ = tree
        #expect(try await read(path, request { $0.stream = .stdout }) == "first\nhello world\nwith  two  spaces\n")
        #expect(try await read(path, request { $0.stream = .stderr }) == "warning: disk\n\n")
    }

    @Test func tailLines() async throws {
        let (tree, path) = try logFile()
        _ = tree
        #expect(try await read(path, request { $0.tailLines = 2 }) == "with  two  spaces\n\n")
        #expect(try await read(path, request { $0.tailLines = 3 }) == "hello world\nwith  two  spaces\n\n")
        #expect(try await read(path, request { $0.tailLines = 0 }) == "")
        #expect(try await read(path, request { $0.tailLines = 100 }) == "first\nwarning: disk\nhello world\nwith  two  spaces\n\n")
    }

    @Test func limitBytes() async throws {
        let (tree, path) = try logFile()
        _ = tree
        #expect(try await read(path, request { $0.limitBytes = 8 }) == "first\nwa")
        #expect(try await read(path, request { $0.limitBytes = 6 }) == "first\n")
        #expect(try await read(path, request { $0.limitBytes = 1 }) == "f")
        let all = "first\nwarning: disk\nhello world\nwith  two  spaces\n\n"
        #expect(try await read(path, request { $0.limitBytes = Int64(all.utf8.count) }) == all)
        #expect(try await read(path, request { $0.limitBytes = Int64(all.utf8.count - 1) }) == String(all.dropLast()))
        #expect(try await read(path, request { $0.limitBytes = 10_000 }) == all)
    }

    @Test func sinceTime() async throws {
        let (tree, path) = try logFile()
        _ = tree
        let third = (Self.base + 3) * 1_000_000_000
        #expect(try await read(path, request { $0.sinceTimeNanoseconds = third }) == "hello world\nwith  two  spaces\n\n")
        #expect(try await read(path, request { $0.sinceTimeNanoseconds = (Self.base + 2) * 1_000_000_000 + 500_000_000 })
            == "warning: disk\nhello world\nwith  two  spaces\n\n")
        #expect(try await read(path, request { $0.sinceTimeNanoseconds = (Self.base + 6) * 1_000_000_000 }) == "")
        // sinceSeconds: only what was written lately (these records are from 2024).
        #expect(try await read(path, request { $0.sinceSeconds = 60 }) == "")
        let formatter = ISO8601DateFormatter()
        let recent = try logFile("\(formatter.string(from: Date())) stdout F now\n")
        _ = recent.0
        #expect(try await read(recent.1, request { $0.sinceSeconds = 3600 }) == "now\n")
    }

    @Test func timestampsArePrefixed() async throws {
        let (tree, path) = try logFile()
        _ = tree
        let text = try await read(path, request { $0.timestamps = true; $0.tailLines = 3 })
        #expect(text == "2024-01-01T00:00:03.000000001Z hello world\n2024-01-01T00:00:04Z with  two  spaces\n2024-01-01T00:00:05Z \n")
    }

    @Test func malformedRecordsAreSkipped() async throws {
        let (tree, path) = try logFile("garbage\n2024-01-01T00:00:01Z stdout F ok\nonly two\n")
        _ = tree
        #expect(try await read(path, request()) == "ok\n")
    }

    @Test func aMissingFileIsNotFound() async throws {
        let tree = try TemporaryTree()
        do {
            _ = try await read(tree.path + "/absent.log", request())
            Issue.record("a missing log was read")
        } catch let error as KubeletAPIError {
            #expect(error.status == 404 && error.message.contains("absent.log"))
        }
    }

    @Test func followPicksUpNewRecordsAndEndsWhenTheContainerStops() async throws {
        let (tree, path) = try logFile("2024-01-01T00:00:01Z stdout F one\n")
        _ = tree
        let running = Flag()
        let reader = ContainerLogReader(path: path, request: request { $0.follow = true }, isRunning: { running.value.withLock { $0 } })
        func append(_ text: String) throws {
            let handle = try #require(FileHandle(forWritingAtPath: path))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(text.utf8))
            try handle.close()
        }
        var iterator = reader.stream().makeAsyncIterator()
        var received = ""
        func next() async throws -> String? {
            guard let chunk = try await iterator.next() else { return nil }
            return String(decoding: chunk, as: UTF8.self)
        }
        received += try await next() ?? ""
        #expect(received == "one\n")
        // A record in two writes (partial first): one line once complete.
        try append("2024-01-01T00:00:02Z stdout P tw")
        try append("o\n2024-01-01T00:00:02Z stdout F !\n")
        while received != "one\ntwo!\n", let chunk = try await next() { received += chunk }
        #expect(received == "one\ntwo!\n")
        // The container stops after a last record: the follow reads it and ends.
        try append("2024-01-01T00:00:03Z stderr F three\n")
        running.value.withLock { $0 = false }
        while let chunk = try await next() { received += chunk }
        #expect(received == "one\ntwo!\nthree\n")
    }

    @Test func followEndsAtOnceForAStoppedContainer() async throws {
        let (tree, path) = try logFile()
        _ = tree
        #expect(try await read(path, request { $0.follow = true; $0.stream = .stderr }) == "warning: disk\n\n")
    }

    @Test(arguments: [
        ("2024-01-01T00:00:00Z", 1_704_067_200 * 1_000_000_000),
        ("2024-01-01T00:00:00.5Z", 1_704_067_200 * 1_000_000_000 + 500_000_000),
        ("2024-01-01T00:00:00.123456789Z", 1_704_067_200 * 1_000_000_000 + 123_456_789),
        ("2024-01-01T00:00:00.1234567891Z", 1_704_067_200 * 1_000_000_000 + 123_456_789),
        ("2024-01-01T01:00:00.25+01:00", 1_704_067_200 * 1_000_000_000 + 250_000_000),
        ("2024-01-01T00:00:00-02:30", (1_704_067_200 + 9000) * 1_000_000_000),
        ("1970-01-01T00:00:01Z", 1_000_000_000),
        ("2024-01-01T00:00:00", 0),
        ("garbage", 0),
        ("", 0),
    ] as [(String, Int64)])
    func nanoseconds(_ text: String, _ expected: Int64) {
        #expect(ContainerLogReader.nanoseconds(text) == expected)
    }
}
