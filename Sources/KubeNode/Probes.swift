import CRI
import Foundation
import GRPCHealthCheck
import KubeClient
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Probe results by container ID, shared by the probe workers and the pod syncs.
final class ProbeResults: Sendable {
    struct Entry: Sendable {
        var podUID: String
        var ready: Bool?
        var livenessFailed = false
        var started: Bool?
    }
    private let entries = Mutex<[String: Entry]>([:])
    /// Called with a pod UID when a result of one of its containers changes.
    let onChange: @Sendable (String) -> Void

    init(onChange: @escaping @Sendable (String) -> Void) { self.onChange = onChange }

    func livenessFailed(containerID: String) -> Bool { entries.withLock { $0[containerID]?.livenessFailed ?? false } }
    /// Readiness: nil while no probe has decided (a container without a readiness probe is ready once running).
    func ready(containerID: String) -> Bool? { entries.withLock { $0[containerID]?.ready } }
    func started(containerID: String) -> Bool? { entries.withLock { $0[containerID]?.started } }

    func set(containerID: String, podUID: String, _ update: (inout Entry) -> Void) {
        let changed = entries.withLock { entries -> Bool in
            var entry = entries[containerID] ?? Entry(podUID: podUID)
            let before = (entry.ready, entry.livenessFailed, entry.started)
            update(&entry)
            entries[containerID] = entry
            return before != (entry.ready, entry.livenessFailed, entry.started)
        }
        if changed { onChange(podUID) }
    }

    func forget(podUID: String) { entries.withLock { $0 = $0.filter { $0.value.podUID != podUID } } }
    func forget(containerID: String) { _ = entries.withLock { $0.removeValue(forKey: containerID) } }
}

/// Runs the probe workers: one per (container, probe kind) while the container runs, as the
/// kubelet's prober manager. Workers live in the manager's task group and end when their
/// container is no longer running.
final class ProbeManager: Sendable {
    enum Kind: String, Sendable { case liveness, readiness, startup }

    struct Work: Sendable {
        var pod: Pod
        var spec: ContainerSpec
        var containerID: String
        var kind: Kind
        var probe: Probe
        var podIP: String
    }

    let calls: RuntimeCalls
    let results: ProbeResults
    let events: EventRecorder
    let logger: Logger
    private let active = Mutex<Set<String>>([])
    private let requests: AsyncStream<Work>
    private let requestSink: AsyncStream<Work>.Continuation

    init(calls: RuntimeCalls, results: ProbeResults, events: EventRecorder, logger: Logger) {
        self.calls = calls
        self.results = results
        self.events = events
        self.logger = logger
        (requests, requestSink) = AsyncStream.makeStream(of: Work.self)
    }

    /// Starts workers for the pod's running containers that have none; ends those of containers
    /// that stopped.
    func update(_ pod: Pod, state: RuntimeCalls.PodState, nodeIP: String) {
        let running = state.running
        // Probes go to the pod's IP; a host-network pod's is the node's.
        let podIP = pod.spec?.hostNetwork == true ? nodeIP : (state.podIPs.first ?? "")
        for container in running {
            guard let spec = pod.spec?.containers.first(where: { $0.name == container.metadata?.name }) else { continue }
            let probes: [(Kind, Probe?)] = [(.startup, spec.startupProbe), (.liveness, spec.livenessProbe), (.readiness, spec.readinessProbe)]
            for (kind, probe) in probes {
                guard let probe else { continue }
                let key = "\(container.id)/\(kind.rawValue)"
                let isNew = active.withLock { $0.insert(key).inserted }
                if isNew {
                    requestSink.yield(Work(pod: pod, spec: spec, containerID: container.id, kind: kind, probe: probe, podIP: podIP))
                }
            }
        }
        let runningIDs = Set(running.map(\.id))
        let podContainerIDs = Set(state.containers.map(\.id))
        active.withLock { active in
            active = active.filter { key in
                let id = String(key.split(separator: "/").first ?? "")
                return !podContainerIDs.contains(id) || runningIDs.contains(id)
            }
        }
    }

    /// Stops every worker of a pod's containers.
    func stop(containerIDs: [String]) {
        let ids = Set(containerIDs)
        active.withLock { $0 = $0.filter { !ids.contains(String($0.split(separator: "/").first ?? "")) } }
    }

    func isActive(_ work: Work) -> Bool { active.withLock { $0.contains("\(work.containerID)/\(work.kind.rawValue)") } }

    /// Serves until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await work in requests {
                group.addTask { await self.work(work) }
            }
        }
    }

    func shutdown() { requestSink.finish() }

    private func work(_ work: Work) async {
        let probe = work.probe
        let period = Duration.seconds(Int(max(probe.periodSeconds ?? 10, 1)))
        let successThreshold = Int(max(probe.successThreshold ?? 1, 1))
        let failureThreshold = Int(max(probe.failureThreshold ?? 3, 1))
        var successes = 0, failures = 0
        if let delay = probe.initialDelaySeconds, delay > 0 { try? await Task.sleep(for: .seconds(Int(delay))) }
        while !Task.isCancelled, isActive(work) {
            // Liveness and readiness wait for the startup probe.
            if work.kind != .startup, work.spec.startupProbe != nil, results.started(containerID: work.containerID) != true {
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            let result = await ProbeRunner.run(probe, containerID: work.containerID, podIP: work.podIP, calls: calls)
            if result.success { successes += 1; failures = 0 } else { failures += 1; successes = 0 }
            if !result.success {
                let kind = work.kind.rawValue.prefix(1).uppercased() + work.kind.rawValue.dropFirst()
                events.pod(work.pod, container: work.spec.name, "Warning", reason: "Unhealthy", "\(kind) probe failed: \(result.message)")
            }
            let uid = work.pod.uid
            switch work.kind {
            case .readiness:
                if successes >= successThreshold { results.set(containerID: work.containerID, podUID: uid) { $0.ready = true } }
                if failures >= failureThreshold { results.set(containerID: work.containerID, podUID: uid) { $0.ready = false } }
            case .liveness:
                if failures >= failureThreshold {
                    logger.info("liveness probe failed", metadata: ["pod": "\(work.pod.fullName)", "container": "\(work.spec.name)",
                                                                    "output": "\(result.message)"])
                    results.set(containerID: work.containerID, podUID: uid) { $0.livenessFailed = true }
                    return  // the container is restarted; a new one gets a new worker
                }
            case .startup:
                if successes >= successThreshold {
                    results.set(containerID: work.containerID, podUID: uid) { $0.started = true }
                    return
                }
                if failures >= failureThreshold {
                    results.set(containerID: work.containerID, podUID: uid) { $0.livenessFailed = true }
                    return
                }
            }
            try? await Task.sleep(for: period)
        }
    }
}

/// One probe attempt of each kind.
enum ProbeRunner {
    struct Result: Sendable {
        var success: Bool
        var message: String
    }

    static func run(_ probe: Probe, containerID: String, podIP: String, calls: RuntimeCalls) async -> Result {
        let timeout = Int(max(probe.timeoutSeconds ?? 1, 1))
        if let exec = probe.exec {
            do {
                let response = try await calls.runtime.execSync(
                    ExecSyncRequest(containerId: containerID, cmd: exec.command ?? [], timeout: Int64(timeout)),
                    context: RuntimeCalls.context("ExecSync"))
                let output = String(decoding: response.stdout + response.stderr, as: UTF8.self)
                return Result(success: response.exitCode == 0, message: output)
            } catch {
                return Result(success: false, message: "\(error)")
            }
        }
        if let http = probe.httpGet {
            guard let port = http.port.intValue else { return Result(success: false, message: "named port \(http.port) not supported") }
            return await httpGet(host: http.host ?? podIP, port: Int(port), path: http.path ?? "/", scheme: http.scheme ?? "HTTP",
                                 headers: http.httpHeaders ?? [], timeout: .seconds(timeout))
        }
        if let tcp = probe.tcpSocket {
            guard let port = tcp.port.intValue else { return Result(success: false, message: "named port \(tcp.port) not supported") }
            return await self.tcp(host: tcp.host ?? podIP, port: Int(port), timeout: .seconds(timeout))
        }
        if let grpc = probe.grpc {
            // The gRPC health protocol on the pod's IP, as the kubelet's grpc prober.
            let result = await GRPCHealthCheck.probe(host: podIP, port: Int(grpc.port), service: grpc.service ?? "",
                                                     timeout: .seconds(timeout), userAgent: "kube-probe/1.20")
            return Result(success: result.success, message: result.output)
        }
        return Result(success: false, message: "the probe names no action")
    }

    /// Connects within the timeout.
    static func tcp(host: String, port: Int, timeout: Duration) async -> Result {
        await blocking {
            let fd = connectSocket(host: host, port: port, timeout: timeout)
            guard fd >= 0 else { return Result(success: false, message: "dial tcp \(host):\(port): connect: \(String(cString: strerror(-fd)))") }
            close(fd)
            return Result(success: true, message: "")
        }
    }

    /// An HTTP/1.1 GET; success is a status in 200..<400 (the kubelet's rule).
    static func httpGet(host: String, port: Int, path: String, scheme: String, headers: [HTTPHeader], timeout: Duration) async -> Result {
        guard scheme.uppercased() == "HTTP" else { return Result(success: false, message: "HTTPS probes are not supported by this node") }
        return await blocking {
            let fd = connectSocket(host: host, port: port, timeout: timeout)
            guard fd >= 0 else {
                return Result(success: false, message: "Get \"http://\(host):\(port)\(path)\": dial tcp \(host):\(port): connect: \(String(cString: strerror(-fd)))")
            }
            defer { close(fd) }
            var request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUser-Agent: kube-probe/1.20\r\nAccept: */*\r\nConnection: close\r\n"
            for header in headers { request += "\(header.name): \(header.value)\r\n" }
            request += "\r\n"
            _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            var received: [UInt8] = []
            while received.count < 4096 {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count <= 0 { break }
                received += buffer[..<count]
                if received.contains(10) { break }
            }
            let line = String(decoding: received.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
            let parts = line.split(separator: " ")
            guard parts.count >= 2, let status = Int(parts[1]) else {
                return Result(success: false, message: "Get \"http://\(host):\(port)\(path)\": malformed HTTP response \"\(line)\"")
            }
            return (200..<400).contains(status) ? Result(success: true, message: "")
                : Result(success: false, message: "HTTP probe failed with statuscode: \(status)")
        }
    }

    /// A connected TCP socket with send/receive timeouts, or -errno.
    static func connectSocket(host: String, port: Int, timeout: Duration) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host.isEmpty ? "127.0.0.1" : host, String(port), &hints, &list) == 0, let info = list else { return -EHOSTUNREACH }
        defer { freeaddrinfo(list) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -errno }
        let seconds = max(Int(timeout.components.seconds), 1)
        var limit = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let code = errno
            close(fd)
            return -code
        }
        return fd
    }

    /// Runs blocking socket work on a thread of its own, off the cooperative pool.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: body()) }
            thread.start()
        }
    }
}
