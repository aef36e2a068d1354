import CRI
import Foundation
import SwiftletTestSupport
import Testing
@testable import SwiftletRuntime

@Suite("record store")
struct RecordStoreTests {
    func sandbox(_ id: String) -> SandboxRecord {
        var record = SandboxRecord(id: id, name: "pod-\(id)", createdAt: 1, state: .ready, ips: ["10.0.0.2"], runtimeHandler: "")
        record.config = PodSandboxConfig(metadata: PodSandboxMetadata(name: "pod-\(id)", uid: "u", namespace: "default"), hostname: "h")
        return record
    }

    func files(_ store: RecordStore) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: store.directory + "/sandboxes").sorted()
    }

    @Test("a prepared state record shows only once committed, with the config as first saved")
    func prepareAndCommit() throws {
        let tree = try TemporaryTree(prefix: "swiftlet-records")
        let store = RecordStore(state: tree.path)
        let first = sandbox("a")
        try store.save(first)
        var stopped = first
        stopped.state = .notReady
        stopped.tornDown = true
        let prepared = try store.prepareState(stopped)
        // (Not read back with loadSandboxes: reading back at start deletes unfinished writes.)
        let saved = try JSONDecoder().decode(SandboxRecord.self, from: Data(contentsOf: URL(fileURLWithPath: store.directory + "/sandboxes/a.json")))
        #expect(saved.state == .ready && saved.tornDown == nil)
        try prepared.commit()
        let loaded = store.loadSandboxes()
        #expect(loaded.map(\.state) == [.notReady] && loaded.first?.tornDown == true)
        #expect(loaded.first?.config == first.config)
        #expect(try files(store) == ["a.json", "a.pb"])
    }

    @Test("a discarded state record leaves the saved one; saveState keeps the config")
    func discard() throws {
        let tree = try TemporaryTree(prefix: "swiftlet-records")
        let store = RecordStore(state: tree.path)
        let first = sandbox("b")
        try store.save(first)
        var changed = first
        changed.state = .notReady
        try store.prepareState(changed).discard()
        #expect(store.loadSandboxes().map(\.state) == [.ready])
        #expect(try files(store) == ["b.json", "b.pb"])
        try store.saveState(changed)
        #expect(store.loadSandboxes().map(\.state) == [.notReady])
        #expect(store.loadSandboxes().first?.config == first.config)
    }

    @Test("temporary files a crash left are removed when the records are read back")
    func strayTemporaries() throws {
        let tree = try TemporaryTree(prefix: "swiftlet-records")
        let store = RecordStore(state: tree.path)
        try store.save(sandbox("c"))
        _ = try store.prepareState(sandbox("c"))  // never committed nor discarded
        try tree.write("cri/sandboxes/.dat.nosync1234", "partial")
        #expect(try files(store).count == 4)
        #expect(store.loadSandboxes().map(\.id) == ["c"])
        #expect(try files(store) == ["c.json", "c.pb"])
    }
}
