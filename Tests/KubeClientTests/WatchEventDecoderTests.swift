import KubeClient
import Testing

@Suite("watch event framing")
struct WatchEventDecoderTests {
    static let stream = """
        {"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"10"},"spec":{"nodeName":"n1"}}}
        {"type":"MODIFIED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"11"},"status":{"phase":"Running ✓"}}}
        {"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"12"}}}
        {"type":"DELETED","object":{"kind":"Pod","metadata":{"name":"a","resourceVersion":"13"}}}

        """

    @Test func wholeStream() throws {
        var decoder = WatchEventDecoder()
        let events = try decoder.feed(Array(Self.stream.utf8))
        #expect(events.map(\.type) == [.added, .modified, .bookmark, .deleted])
        #expect(events.map(\.resourceVersion) == ["10", "11", "12", "13"])
        #expect(events[1].object[path: "status", "phase"] == "Running ✓")
        #expect(try decoder.finish() == nil)
    }

    @Test(arguments: [1, 2, 3, 7, 64, 113])
    func chunksSplitAnywhere(chunkSize: Int) throws {
        let bytes = Array(Self.stream.utf8)  // multi-byte UTF-8 is split too for small chunks
        var decoder = WatchEventDecoder()
        var events: [WatchEvent] = []
        var index = 0
        while index < bytes.count {
            let end = min(index + chunkSize, bytes.count)
            events += try decoder.feed(bytes[index..<end])
            index = end
        }
        var whole = WatchEventDecoder()
        #expect(events == (try whole.feed(bytes)))
    }

    @Test func everySplitPointOfTwoEvents() throws {
        let bytes = Array(Self.stream.utf8)
        var reference = WatchEventDecoder()
        let expected = try reference.feed(bytes)
        for split in 0...bytes.count {
            var decoder = WatchEventDecoder()
            let events = try decoder.feed(bytes[..<split]) + decoder.feed(bytes[split...])
            #expect(events == expected, "split at \(split)")
        }
    }

    @Test func finalEventWithoutNewlineAndCRLF() throws {
        var decoder = WatchEventDecoder()
        let first = try decoder.feed(Array("{\"type\":\"ADDED\",\"object\":{}}\r\n{\"type\":\"ERROR\",\"object\":".utf8))
        #expect(first.map(\.type) == [.added])
        #expect(try decoder.feed(Array("{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}}".utf8)).isEmpty)
        let last = try #require(try decoder.finish())
        #expect(last.type == .error)
        #expect(last.object["code"] == 410)
    }

    @Test func malformedEvents() throws {
        var decoder = WatchEventDecoder()
        #expect(throws: KubeAPIError.self) { try decoder.feed(Array("{not json}\n".utf8)) }
        var unknown = WatchEventDecoder()
        let error = try #require(throws: KubeAPIError.self) { try unknown.feed(Array("{\"type\":\"RENAMED\",\"object\":{}}\n".utf8)) }
        #expect(error.kind == .decoding)
        #expect(error.detail.contains("RENAMED"))
        var small = WatchEventDecoder(maximumLineLength: 8)
        #expect(throws: KubeAPIError.self) { try small.feed(Array("{\"type\":\"ADDED\"".utf8)) }
    }
}
