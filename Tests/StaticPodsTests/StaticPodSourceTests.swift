import Foundation
import KubeClient
import StaticPods
import Synchronization
import SwiftletTestSupport
import Testing

/// What a consuming task received, for the test to poll.
final class Received: Sendable {
    private let sets = Mutex<[StaticPodManifests]>([])
    func append(_ manifests: StaticPodManifests) { sets.withLock { $0.append(manifests) } }
    var all: [StaticPodManifests] { sets.withLock { $0 } }
    var latest: StaticPodManifests? { all.last }
}

/// Polls `condition` until it holds or a generous deadline passes (never asserts timing).
func eventually(_ limit: Duration = .seconds(30), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// The process's open inotify instances.
func inotifyDescriptors() -> Int {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return entries.filter { entry in
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + entry)) == "anon_inode:inotify"
    }.count
}

/// The process's static pod watch threads (by their name: other suites run meanwhile and
/// start and end threads of their own).
func watchThreads() -> Int {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.filter { task in
        (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) == "staticpod-watch\n"
    }.count
}

func consume(_ source: StaticPodSource) -> (Task<Void, Never>, Received) {
    let received = Received()
    let task = Task {
        for await manifests in source.updates() { received.append(manifests) }
    }
    return (task, received)
}

/// `body` with a task consuming `source`, which is cancelled and awaited after it (thrown or
/// not): the watch is gone, its thread joined, before the next test counts descriptors.
func consuming(_ source: StaticPodSource, _ body: (Received) async throws -> Void) async throws {
    let (task, received) = consume(source)
    do {
        try await body(received)
    } catch {
        task.cancel()
        await task.value
        throw error
    }
    task.cancel()
    await task.value
}

func pod(named name: String, image: String = "nginx:1.27") -> String {
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: \(name)\nspec:\n  containers:\n  - name: main\n    image: \(image)\n"
}

// Serialized: the descriptor counts must not see another of these tests' watches.
@Suite("Static pod source: inotify, rescans, cancellation", .serialized)
struct StaticPodSourceTests {
    /// Rescans far apart: what the tests see must come from inotify.
    static let noRescan = Duration.seconds(3600)

    @Test func noticesCreateModifyDeleteAndRename() async throws {
        let tree = try TemporaryTree(prefix: "static-source")
        let directory = try tree.directory("manifests")
        try tree.write("manifests/a.yaml", pod(named: "a"))
        try await consuming(StaticPodSource(path: directory, nodeName: "n1", rescanInterval: Self.noRescan)) { received in
            #expect(await eventually { received.latest?.pods.map(\.name) == ["a-n1"] })
            let firstUID = try #require(received.latest?.pods.first?.uid)
            let firstSeen = received.latest?.pods.first?.pod.metadata.annotations?["kubernetes.io/config.seen"]

            try tree.write("manifests/b.yaml", pod(named: "b"))  // written aside and renamed in
            #expect(await eventually { received.latest?.pods.map(\.name) == ["a-n1", "b-n1"] })
            // An unchanged pod keeps its UID and when it was first seen.
            #expect(received.latest?.pods.first?.uid == firstUID)
            #expect(received.latest?.pods.first?.pod.metadata.annotations?["kubernetes.io/config.seen"] == firstSeen)

            // Modified in place (no rename): a new UID.
            let handle = try #require(FileHandle(forWritingAtPath: directory + "/a.yaml"))
            try handle.truncate(atOffset: 0)
            try handle.write(contentsOf: Data(pod(named: "a", image: "nginx:1.28").utf8))
            try handle.close()
            #expect(await eventually { received.latest?.pods.first.map { $0.uid != firstUID && $0.name == "a-n1" } == true })

            try FileManager.default.removeItem(atPath: directory + "/a.yaml")
            #expect(await eventually { received.latest?.pods.map(\.name) == ["b-n1"] })

            try FileManager.default.moveItem(atPath: directory + "/b.yaml", toPath: tree.path + "/b.yaml")
            #expect(await eventually { received.latest?.pods.isEmpty == true })

            // A bad file is reported and fixed.
            try tree.write("manifests/c.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: c}\nspec: {containers: [{name: main}]}\n")
            #expect(await eventually { received.latest?.errors.first?.reason == .invalid })
            try tree.write("manifests/c.yaml", pod(named: "c"))
            #expect(await eventually { received.latest?.pods.map(\.name) == ["c-n1"] && received.latest?.errors.isEmpty == true })
            // Every set delivered differs from the one before it.
            let all = received.all
            #expect(zip(all, all.dropFirst()).allSatisfy { $0 != $1 })
        }
    }

    @Test func directoryCreatedLaterOrReplacedIsWatched() async throws {
        let tree = try TemporaryTree(prefix: "static-source")
        let directory = tree.path + "/manifests"
        try await consuming(StaticPodSource(path: directory, nodeName: "n1", rescanInterval: Self.noRescan)) { received in
            // The source reports an empty set at once, so the consumer knows the source was read.
            #expect(await eventually { received.latest == StaticPodManifests() })

            try tree.write("manifests/a.yaml", pod(named: "a"))
            #expect(await eventually { received.latest?.pods.map(\.name) == ["a-n1"] })

            // The directory swapped for another (as configuration management does).
            try tree.write("next/b.yaml", pod(named: "b"))
            try FileManager.default.removeItem(atPath: directory)
            try FileManager.default.moveItem(atPath: tree.path + "/next", toPath: directory)
            #expect(await eventually { received.latest?.pods.map(\.name) == ["b-n1"] })
            try tree.write("manifests/c.yaml", pod(named: "c"))
            #expect(await eventually { received.latest?.pods.map(\.name) == ["b-n1", "c-n1"] })
        }
    }

    @Test func periodicRescanFindsWhatInotifyCannotSee() async throws {
        let tree = try TemporaryTree(prefix: "static-source")
        let directory = try tree.directory("manifests")
        // A manifest outside the directory, linked in: editing the target is not an event in the directory.
        let target = try tree.write("elsewhere/a.yaml", pod(named: "a"))
        try FileManager.default.createSymbolicLink(atPath: directory + "/a.yaml", withDestinationPath: target)
        try await consuming(StaticPodSource(path: directory, nodeName: "n1", rescanInterval: .milliseconds(200))) { received in
            #expect(await eventually { received.latest?.pods.first?.pod.spec?.containers.first?.image == "nginx:1.27" })
            try tree.write("elsewhere/a.yaml", pod(named: "a", image: "nginx:1.28"))
            #expect(await eventually { received.latest?.pods.first?.pod.spec?.containers.first?.image == "nginx:1.28" })
        }
    }

    @Test func cancellationClosesTheWatchAndEndsItsThread() async throws {
        let tree = try TemporaryTree(prefix: "static-source")
        let directory = try tree.directory("manifests")
        try tree.write("manifests/a.yaml", pod(named: "a"))
        let descriptorsBefore = inotifyDescriptors()
        #expect(watchThreads() == 0)

        let (task, received) = consume(StaticPodSource(path: directory, nodeName: "n1", rescanInterval: Self.noRescan))
        #expect(await eventually { received.latest?.pods.count == 1 })
        #expect(inotifyDescriptors() == descriptorsBefore + 1)
        #expect(await eventually { watchThreads() == 1 })  // it names itself once it runs
        task.cancel()
        await task.value
        // The iterator joined the watch thread before the loop ended: nothing is left open.
        #expect(inotifyDescriptors() == descriptorsBefore)
        #expect(watchThreads() == 0)

        // Leaving the loop early (no cancellation) releases the watch as well.
        let early = Task {
            for await manifests in StaticPodSource(path: directory, nodeName: "n1", rescanInterval: Self.noRescan).updates()
            where !manifests.pods.isEmpty {
                break
            }
        }
        await early.value
        #expect(inotifyDescriptors() == descriptorsBefore)
        #expect(watchThreads() == 0)

        // Many watches started and cancelled leak nothing.
        for _ in 0..<20 {
            let (task, received) = consume(StaticPodSource(path: directory, nodeName: "n1", rescanInterval: Self.noRescan))
            #expect(await eventually { received.latest != nil })
            task.cancel()
            await task.value
        }
        #expect(inotifyDescriptors() == descriptorsBefore)
        #expect(watchThreads() == 0)
    }
}
