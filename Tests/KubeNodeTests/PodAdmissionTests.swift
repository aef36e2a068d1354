import Foundation
import KubeClient
import ResourceLedger
import Testing
@testable import KubeNode

@Suite struct PodAdmissionTests {
    func quantity(_ text: String) throws -> Quantity { try Quantity(parsing: text) }

    @Test func requestsAreTheLargerOfTheContainersSumAndAnyInitContainerPlusOverhead() throws {
        let pod = makePod(containers: [makeContainer("a", requests: ["cpu": "100m", "memory": "64Mi"]),
                                       makeContainer("b", requests: ["cpu": "200m", "memory": "64Mi"], limits: ["cpu": "4"])],
                          initContainers: [makeContainer("i1", requests: ["cpu": "500m", "memory": "100Mi"]),
                                           makeContainer("i2", requests: ["cpu": "250m", "ephemeral-storage": "1Gi"])]) {
            $0.overhead = ["cpu": "10m", "memory": "10Mi"]
        }
        let requests = PodAdmission.requests(of: pod)
        #expect(requests["cpu"] == (try quantity("510m")))
        #expect(requests["memory"] == (try quantity("138Mi")))
        #expect(requests["ephemeral-storage"] == (try quantity("1Gi")))
        #expect(requests.count == 3)

        let small = makePod(containers: [makeContainer("a", requests: ["cpu": "1"]), makeContainer("b", requests: ["cpu": "1"])],
                            initContainers: [makeContainer("i", requests: ["cpu": "1500m"])])
        #expect(PodAdmission.requests(of: small)["cpu"] == (try quantity("2")))
        #expect(PodAdmission.requests(of: makePod(containers: [makeContainer()])).isEmpty)
        // Limits are not requests.
        #expect(PodAdmission.requests(of: makePod(containers: [makeContainer(limits: ["cpu": "1"])])).isEmpty)
    }

    func ledger(pods: Int64 = 2) -> ResourceLedger {
        ResourceLedger(capacity: ["cpu": Quantity(2), "memory": .bytes(4 << 30), "pods": Quantity(pods)], evictionHard: [])
    }

    @Test func podsThatDoNotFitAreRefusedWithTheKubeletsReason() throws {
        let admission = PodAdmission(ledger: ledger())
        let big = makePod(uid: "big", containers: [makeContainer(requests: ["cpu": "3"])])
        let refusal = try #require(admission.admit(big))
        #expect(refusal.reason == "OutOfcpu")
        #expect(refusal.message.hasSuffix("cpu, requested: 3000, used: 0, capacity: 2000"))

        let memory = makePod(uid: "mem", containers: [makeContainer(requests: ["memory": "5Gi"])])
        #expect(admission.admit(memory)?.reason == "OutOfmemory")

        let half = makePod(uid: "half", containers: [makeContainer(requests: ["cpu": "1500m"])])
        #expect(admission.admit(half) == nil)
        #expect(admission.admit(half) == nil)  // admitting again replaces, it does not add
        let more = makePod(uid: "more", containers: [makeContainer(requests: ["cpu": "1"])])
        let second = try #require(admission.admit(more))
        #expect(second.reason == "OutOfcpu" && second.message.contains("used: 1500"))
        admission.release("half")
        #expect(admission.admit(more) == nil)
    }

    @Test func thePodCountIsAResource() throws {
        let admission = PodAdmission(ledger: ledger(pods: 2))
        #expect(admission.admit(makePod(uid: "p1", containers: [makeContainer()])) == nil)
        #expect(admission.admit(makePod(uid: "p2", containers: [makeContainer()])) == nil)
        let third = try #require(admission.admit(makePod(uid: "p3", containers: [makeContainer()])))
        #expect(third.reason == "OutOfpods")
        #expect(third.message.hasSuffix("pods, requested: 1, used: 2, capacity: 2"))
        admission.release("p1")
        #expect(admission.admit(makePod(uid: "p3", containers: [makeContainer()])) == nil)
    }

    @Test func refusalMessageIsTheKubelets() throws {
        let admission = PodAdmission(ledger: ledger())
        let refusal = try #require(admission.admit(makePod(uid: "big", containers: [makeContainer(requests: ["cpu": "3"])])))
        #expect(refusal.message == "Pod Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 2000")
    }

    @Test func unknownRuntimeClassesAreRefused() throws {
        let pod = makePod(containers: [makeContainer()]) { $0.runtimeClassName = "gvisor" }
        for admission in [PodAdmission(ledger: ledger()), PodAdmission(ledger: nil)] {
            let refusal = try #require(admission.admit(pod))
            #expect(refusal.reason == "UnexpectedAdmissionError" && refusal.message.contains("\"gvisor\""))
        }
        #expect(PodAdmission(ledger: nil).admit(makePod(containers: [makeContainer(requests: ["cpu": "1000"])])) == nil)
        #expect(PodAdmission(ledger: ledger()).admit(makePod(containers: [makeContainer()]) { $0.runtimeClassName = "" }) == nil)
    }
}

@Suite(.timeLimit(.minutes(1))) struct WakeSignalTests {
    @Test func aSignalBeforeTheWaitReturnsAtOnce() async {
        let wake = WakeSignal()
        wake.signal()
        await wake.wait(timeout: .seconds(3600))  // would hang without the pending signal
    }

    @Test func aWaitTimesOut() async {
        let wake = WakeSignal()
        let clock = ContinuousClock()
        let start = clock.now
        await wake.wait(timeout: .milliseconds(50))
        #expect(clock.now - start >= .milliseconds(50))
    }

    @Test func manySignalsCountAsOne() async {
        let wake = WakeSignal()
        for _ in 0..<5 { wake.signal() }
        await wake.wait(timeout: .seconds(3600))
        // Nothing is left pending: the next wait runs to its timeout.
        let clock = ContinuousClock()
        let start = clock.now
        await wake.wait(timeout: .milliseconds(100))
        #expect(clock.now - start >= .milliseconds(100))
    }

    @Test func aSignalWakesAWaiter() async {
        let wake = WakeSignal()
        let waiter = Task { await wake.wait(timeout: .seconds(3600)) }
        await Task.yield()
        wake.signal()
        await waiter.value
    }

    @Test func cancellingTheWaiterEndsTheWait() async {
        let wake = WakeSignal()
        let waiter = Task { await wake.wait(timeout: .seconds(3600)) }
        await Task.yield()
        waiter.cancel()
        await waiter.value
        // The signal state is intact afterwards.
        wake.signal()
        await wake.wait(timeout: .seconds(3600))
    }
}
