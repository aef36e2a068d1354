import CRI
import CRIProtobufC
import Testing
@testable import SwiftletRuntime

/// The list answers the runtime keeps: the encoded ones (what the CRI server sends) must be
/// exactly the encoding of the listed values, for every filter, and follow every change.
@Suite("pod and container listings")
struct ListingTests {
    func sandbox(_ id: String, createdAt: Int64, ready: Bool = true, labels: [String: String] = [:]) -> SandboxRecord {
        var record = SandboxRecord(id: id, name: "pod-\(id)", createdAt: createdAt, state: ready ? .ready : .notReady, runtimeHandler: "")
        record.config = PodSandboxConfig(metadata: PodSandboxMetadata(name: "pod-\(id)", uid: "uid-\(id)", namespace: "default"),
                                         labels: labels, annotations: ["note": id])
        return record
    }

    func container(_ id: String, sandbox: String, createdAt: Int64, labels: [String: String] = [:]) -> ContainerRecord {
        var record = ContainerRecord(id: id, name: "c-\(id)", sandboxID: sandbox, createdAt: createdAt, imageName: "busybox:latest",
                                     imageID: "sha256:abc", imageRef: "busybox@sha256:def",
                                     launch: LaunchConfig(rootfs: "/rootfs", args: ["sleep", "1"]))
        record.config = CRI.ContainerConfig(metadata: ContainerMetadata(name: "c-\(id)", attempt: 1), image: ImageSpec(image: "busybox:latest"),
                                            labels: labels, annotations: ["a": "b"])
        return record
    }

    /// A state with three pods and four containers, created out of order.
    func populated() -> PodRuntime.State {
        var state = PodRuntime.State()
        state.put(sandbox("p2", createdAt: 20, labels: ["app": "web"]))
        state.put(sandbox("p1", createdAt: 10, ready: false))
        state.put(sandbox("p3", createdAt: 30, labels: ["app": "web", "tier": "front"]))
        state.put(container("c3", sandbox: "p2", createdAt: 300, labels: ["app": "web"]), state: .containerRunning)
        state.put(container("c1", sandbox: "p1", createdAt: 100), state: .containerExited)
        state.put(container("c2", sandbox: "p2", createdAt: 200, labels: ["app": "web", "tier": "front"]), state: .containerCreated)
        state.put(container("c4", sandbox: "p3", createdAt: 400), state: .containerRunning)
        return state
    }

    /// Filters, and the containers of ``populated()`` each selects (oldest first).
    static let containerCases: [(ContainerFilter?, [String])] = [
        (nil, ["c1", "c2", "c3", "c4"]), (ContainerFilter(), ["c1", "c2", "c3", "c4"]), (ContainerFilter(id: "c2"), ["c2"]),
        (ContainerFilter(id: "c"), ["c1", "c2", "c3", "c4"]), (ContainerFilter(podSandboxId: "p2"), ["c2", "c3"]),
        (ContainerFilter(state: ContainerStateValue(state: .containerRunning)), ["c3", "c4"]),
        (ContainerFilter(labelSelector: ["app": "web"]), ["c2", "c3"]),
        (ContainerFilter(labelSelector: ["app": "web", "tier": "front"]), ["c2"]), (ContainerFilter(id: "zz"), []),
        (ContainerFilter(state: ContainerStateValue(state: .containerRunning), podSandboxId: "p3"), ["c4"]),
    ]
    static var containerFilters: [ContainerFilter?] { containerCases.map(\.0) }

    /// Filters, and the sandboxes of ``populated()`` each selects (oldest first).
    static let sandboxCases: [(PodSandboxFilter?, [String])] = [
        (nil, ["p1", "p2", "p3"]), (PodSandboxFilter(), ["p1", "p2", "p3"]), (PodSandboxFilter(id: "p3"), ["p3"]),
        (PodSandboxFilter(id: "p"), ["p1", "p2", "p3"]), (PodSandboxFilter(state: PodSandboxStateValue(state: .sandboxNotready)), ["p1"]),
        (PodSandboxFilter(labelSelector: ["app": "web"]), ["p2", "p3"]), (PodSandboxFilter(labelSelector: ["tier": "front"]), ["p3"]),
        (PodSandboxFilter(id: "nope"), []),
    ]
    static var sandboxFilters: [PodSandboxFilter?] { sandboxCases.map(\.0) }

    /// The encoded answer is the encoding of the listed containers, and decodes to them.
    func expectConsistent(_ state: inout PodRuntime.State, _ filter: ContainerFilter?) throws {
        let listed = state.listedContainers(filter)
        let encoded = state.encodedContainers(filter)
        #expect(encoded == ListContainersResponse(containers: listed).encode())
        #expect(try ListContainersResponse.decode(encoded).containers == listed)
    }

    func expectConsistent(_ state: inout PodRuntime.State, _ filter: PodSandboxFilter?) throws {
        let listed = state.listedSandboxes(filter)
        let encoded = state.encodedSandboxes(filter)
        #expect(encoded == ListPodSandboxResponse(items: listed).encode())
        #expect(try ListPodSandboxResponse.decode(encoded).items == listed)
    }

    @Test("ListContainers: filters by id prefix, sandbox, state and labels; oldest first", arguments: containerCases)
    func containerFilter(filter: ContainerFilter?, expected: [String]) throws {
        var state = populated()
        #expect(state.listedContainers(filter).map(\.id) == expected)
        try expectConsistent(&state, filter)
        try expectConsistent(&state, filter)  // again, from what was kept
    }

    @Test("ListPodSandbox: filters by id prefix, state and labels; oldest first", arguments: sandboxCases)
    func sandboxFilter(filter: PodSandboxFilter?, expected: [String]) throws {
        var state = populated()
        #expect(state.listedSandboxes(filter).map(\.id) == expected)
        try expectConsistent(&state, filter)
        try expectConsistent(&state, filter)
    }

    @Test("the kept encoded answers follow every change")
    func changes() throws {
        var state = populated()
        for filter in Self.containerFilters { try expectConsistent(&state, filter) }
        for filter in Self.sandboxFilters { try expectConsistent(&state, filter) }

        state.markExited("c3")
        #expect(state.listedContainers(ContainerFilter(id: "c3")).first?.state == .containerExited)
        for filter in Self.containerFilters { try expectConsistent(&state, filter) }
        state.markExited("c3")  // again: nothing changes
        for filter in Self.containerFilters { try expectConsistent(&state, filter) }

        state.put(container("c5", sandbox: "p3", createdAt: 50), state: .containerCreated)
        #expect(state.listedContainers(nil).map(\.id) == ["c5", "c1", "c2", "c3", "c4"])
        for filter in Self.containerFilters { try expectConsistent(&state, filter) }

        state.put(container("c5", sandbox: "p3", createdAt: 50, labels: ["app": "web"]), state: .containerRunning)
        #expect(state.listedContainers(ContainerFilter(labelSelector: ["app": "web"])).map(\.id) == ["c5", "c2", "c3"])
        for filter in Self.containerFilters { try expectConsistent(&state, filter) }

        state.removeContainer("c2")
        state.removeContainer("missing")
        #expect(state.listedContainers(nil).map(\.id) == ["c5", "c1", "c3", "c4"])
        for filter in Self.containerFilters { try expectConsistent(&state, filter) }

        var stopped = sandbox("p2", createdAt: 20, ready: false, labels: ["app": "web"])
        stopped.tornDown = true
        state.put(stopped)
        #expect(state.listedSandboxes(PodSandboxFilter(state: PodSandboxStateValue(state: .sandboxNotready))).map(\.id) == ["p1", "p2"])
        for filter in Self.sandboxFilters { try expectConsistent(&state, filter) }

        state.removeSandbox("p1")
        #expect(state.listedSandboxes(nil).map(\.id) == ["p2", "p3"])
        for filter in Self.sandboxFilters { try expectConsistent(&state, filter) }
    }

    @Test("empty lists encode to an empty message")
    func empty() {
        var state = PodRuntime.State()
        #expect(state.encodedContainers(nil).isEmpty)
        #expect(state.encodedSandboxes(PodSandboxFilter()).isEmpty)
    }
}
