import CRI
import Foundation
import KubeClient
import KubeletServer
import Logging
import ResourceLedger
import StaticPods
import SwiftletConfig
import SwiftletRuntime
import Synchronization

/// The Kubernetes face of the agent: with a kubeconfig it registers the Node, renews its Lease,
/// reports its status and runs the pods bound to it; with or without one it runs the static pods
/// of `staticPodPath`. Pods run on the runtime through the same CRI services the socket serves.
public final class KubeNodeAgent: Sendable {
    public let configuration: SwiftletConfiguration
    public let identity: NodeIdentity
    let client: KubeClient?
    let resources: NodeResources
    let calls: RuntimeCalls
    let events: ContainerEventBus
    let workers: PodWorkers
    let probeManager: ProbeManager
    let statuses: PodStatusPoster
    let mirrors: MirrorPods?
    let recorder: EventRecorder
    let logger: Logger
    private let loopHeartbeat = Mutex(ContinuousClock.now)

    /// Sets the agent up (reads the machine, the kubeconfig); `run()` starts it.
    public init(configuration: SwiftletConfiguration, runtime: any RuntimeService, images: any ImageService, events: ContainerEventBus,
                logger: Logger) throws(NodeError) {
        self.configuration = configuration
        self.events = events
        self.logger = logger
        identity = try NodeIdentity.detect(hostnameOverride: configuration.hostnameOverride, nodeIP: configuration.nodeIP,
                                           runtimeVersion: BuildInfo.version)
        if let path = configuration.kubeconfig {
            do {
                client = try KubeClient(kubeconfigPath: path)
            } catch {
                throw NodeError(.invalidConfiguration, detail: "kubeconfig \(path): \(error)")
            }
        } else {
            client = nil
        }
        resources = try NodeResources.make(configuration, logger: logger)
        calls = RuntimeCalls(runtime: runtime, images: images)
        let objects: any ClusterObjects = client.map { APIClusterObjects(client: $0) } ?? NoClusterObjects()
        let wakeTarget = WorkersBox()
        let probeResults = ProbeResults { uid in wakeTarget.workers?.wake(podUID: uid) }
        let recorder = EventRecorder(client: client, nodeName: identity.name, logger: logger)
        self.recorder = recorder
        let podsRoot = configuration.root + "/pods"
        let sync = PodSync(
            calls: calls, volumes: PodVolumes(podsRoot: podsRoot, objects: objects, allocatable: resources.ledger.allocatable.apiStrings),
            environment: PodEnvironment(objects: objects, serviceEnv: [], allocatable: resources.ledger.allocatable.apiStrings),
            probes: probeResults, nodeIP: identity.internalIP, podLogsDir: configuration.podLogsDir,
            memoryCapacity: resources.memoryCapacity, podCgroupRoot: configuration.cgroupsRoot + "/kubepods", events: recorder, logger: logger,
            seccompProfileRoot: configuration.root + "/seccomp",
            userNamespaces: PodUserNamespaces(podsRoot: podsRoot, maxPods: configuration.maxPods))
        probeManager = ProbeManager(calls: calls, results: probeResults, events: recorder, logger: logger)
        statuses = PodStatusPoster(client: client, logger: logger)
        workers = PodWorkers(sync: sync, probes: probeManager, statuses: statuses, admission: PodAdmission(ledger: resources.ledger),
                             nodeIP: identity.internalIP, logger: logger)
        wakeTarget.workers = workers
        let nodeName = identity.name
        let statuses = statuses, workers = workers
        mirrors = client.map {
            MirrorPods(client: $0, nodeName: nodeName, logger: logger) { staticPod in
                statuses.forget(staticPod)
                workers.wake(podUID: staticPod.uid)
            }
        }
    }

    /// TLS bootstrapping (`--bootstrap-kubeconfig`), as the kubelet's `LoadClientCert`: keeps a
    /// valid `kubeconfig`, else makes a CSR with the bootstrap token, waits for the certificate,
    /// writes it under the certificate directory and `kubeconfig` pointing at it.
    public static func bootstrapClientCertificate(_ configuration: SwiftletConfiguration, logger: Logger) async throws(NodeError) {
        guard let bootstrap = configuration.bootstrapKubeconfig, let kubeconfig = configuration.kubeconfig else { return }
        let identity = try NodeIdentity.detect(hostnameOverride: configuration.hostnameOverride, nodeIP: configuration.nodeIP,
                                               runtimeVersion: BuildInfo.version)
        do {
            let outcome = try await CertificateBootstrap.loadClientCertificate(
                kubeconfigPath: kubeconfig, bootstrapKubeconfigPath: bootstrap, certificateDirectory: configuration.certificateDirectory,
                nodeName: identity.name, options: .init(log: { message in logger.info("\(message)") }))
            logger.info(outcome.bootstrapped ? "client certificate bootstrapped" : "using the existing client certificate", metadata: [
                "kubeconfig": "\(outcome.kubeconfigPath)", "csr": "\(outcome.csrName ?? "")", "notAfter": "\(outcome.notAfter)",
            ])
        } catch {
            throw NodeError(.api, detail: "bootstrapping the node's client certificate with \(bootstrap): \(error)")
        }
    }

    /// The pods this node runs, with their current status (for the kubelet API's `/pods`).
    public var pods: [Pod] { workers.pods }

    /// Runs until cancelled.
    public func run() async {
        logger.info("node agent starting", metadata: [
            "node": "\(identity.name)", "nodeIP": "\(identity.internalIP)",
            "mode": "\(client == nil ? "standalone (static pods only)" : "cluster member")",
            "staticPodPath": "\(configuration.staticPodPath ?? "none")",
        ])
        // Cancellation ends the streams the workers and probers read, so the group can finish.
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.workers.run() }
                group.addTask { await self.probeManager.run() }
                group.addTask { await self.watchContainerEvents() }
                group.addTask { await self.housekeeping() }
                group.addTask { await self.recorder.run() }
                if let path = configuration.staticPodPath {
                    group.addTask { await self.runStaticPods(path) }
                }
                if let client {
                    group.addTask { await self.runClusterMember(client) }
                }
                group.addTask { await self.serveKubeletAPI() }
            }
        } onCancel: {
            self.workers.shutdown()
            self.probeManager.shutdown()
            self.recorder.shutdown()
        }
    }

    // MARK: Parts

    /// The kubelet API on `address:port` (TLS; client certificates against `clientCAFile`,
    /// bearer tokens through TokenReview, authorization by SubjectAccessReview or AlwaysAllow)
    /// and healthz on `healthzBindAddress:healthzPort`.
    private func serveKubeletAPI() async {
        let backend = KubeletBackend(workers: workers, calls: calls, identity: identity, resources: resources,
                                     podLogsDir: configuration.podLogsDir, loopHealthy: { self.loopHealthy })
        var servers: [KubeletAPIServer] = []
        if configuration.healthzPort != 0 {
            servers.append(KubeletAPIServer.healthz(address: configuration.healthzBindAddress, port: configuration.healthzPort,
                                                    checks: backend.healthChecks, logger: logger))
        }
        if configuration.port != 0 {
            // The serving certificate: as configured, else a self-signed pair under <root>/pki
            // (made once, reused after), as the kubelet does.
            var files: (certificateFile: String, keyFile: String)?
            if let certificate = configuration.tlsCertFile, let key = configuration.tlsPrivateKeyFile {
                files = (certificate, key)
            } else {
                do {
                    files = try ServingCertificate.ensureSelfSigned(directory: configuration.certificateDirectory, hostnames: [identity.hostname],
                                                                    ipAddresses: [identity.internalIP])
                } catch {
                    logger.error("kubelet API not served: no serving certificate", metadata: ["error": "\(error)"])
                }
            }
            if let files {
                let tokenReviewer: (any TokenReviewer)? = configuration.authenticationTokenWebhook ? client.map { APITokenReviewer(client: $0) } : nil
                let authorizer: any Authorizer = configuration.authorizationMode == "Webhook" && client != nil
                    ? APIAuthorizer(client: client!) : AlwaysAllowAuthorizer()
                servers.append(KubeletAPIServer(
                    configuration: KubeletAPIServer.Configuration(
                        address: configuration.address, port: configuration.port, nodeName: identity.name,
                        tls: .init(certificateFile: files.certificateFile, keyFile: files.keyFile, clientCAFile: configuration.clientCAFile),
                        anonymousAuthEnabled: configuration.anonymousAuth, tokenReviewer: tokenReviewer, authorizer: authorizer),
                    backend: backend, logger: logger))
            }
        }
        await withDiscardingTaskGroup { group in
            for server in servers {
                do {
                    try server.start()
                } catch {
                    logger.error("kubelet API server failed to start", metadata: ["error": "\(error)"])
                    continue
                }
                logger.info("kubelet API listening", metadata: ["port": "\(server.port)"])
                group.addTask {
                    await withTaskCancellationHandler {
                        try? await server.run()
                    } onCancel: {
                        server.shutdown()
                    }
                }
            }
        }
    }

    private func runClusterMember(_ client: KubeClient) async {
        let reporter = NodeStatusReporter(
            client: client, identity: identity, source: NodeStatusSourceAdapter(agent: self), kubeletPort: configuration.port,
            labels: configuration.nodeLabels, taints: (try? NodeStatusBuilder.taints(configuration.registerWithTaints)) ?? [],
            updateFrequency: configuration.nodeStatusUpdateFrequency.duration,
            reportFrequency: configuration.nodeStatusReportFrequency.duration, logger: logger,
            onPodCIDRs: { cidrs in
                var request = UpdateRuntimeConfigRequest()
                request.runtimeConfig = RuntimeConfig(networkConfig: NetworkConfig(podCidr: cidrs.joined(separator: ",")))
                _ = try? await self.calls.runtime.updateRuntimeConfig(request, context: RuntimeCalls.context("UpdateRuntimeConfig"))
            })
        recorder.node(reason: "Starting", "Starting kubelet.")
        do {
            try await reporter.register()
        } catch {
            return  // cancelled
        }
        let lease = NodeLease(client: client, nodeName: identity.name, durationSeconds: configuration.nodeLeaseDurationSeconds,
                              logger: logger, nodeUID: { reporter.nodeUID })
        let source = APIPodSource(client: client, nodeName: identity.name, logger: logger)
        await withDiscardingTaskGroup { group in
            group.addTask { await reporter.run() }
            group.addTask { await lease.run() }
            group.addTask { await source.run { pods in self.workers.update(pods, from: .api) } }
            if let mirrors {
                group.addTask { await mirrors.run(nodeUID: { reporter.nodeUID }) }
            }
            if configuration.rotateCertificates || configuration.bootstrapKubeconfig != nil {
                group.addTask { await self.rotateClientCertificate(client) }
            }
        }
    }

    private func runStaticPods(_ path: String) async {
        let source = StaticPodSource(path: path, nodeName: identity.name,
                                     rescanInterval: configuration.fileCheckFrequency.duration)
        for await set in source.updates() {
            for error in set.errors { logger.warning("static pod manifest not loaded", metadata: ["error": "\(error)"]) }
            let pods = set.pods.map(\.pod)
            workers.update(pods, from: .file)
            mirrors?.setStaticPods(set.pods)
        }
    }

    /// Renews the client certificate at 70–90 % of its life; a certificate that expired without
    /// a renewal ends the agent's cluster membership with an error in the log (restart to bootstrap again).
    private func rotateClientCertificate(_ client: KubeClient) async {
        let rotation = ClientCertificateRotation(client: client, certificateDirectory: configuration.certificateDirectory,
                                                 nodeName: identity.name)
        do {
            try await rotation.run()
        } catch {
            logger.error("client certificate rotation failed", metadata: ["error": "\(error)"])
        }
    }

    /// PLEG: the runtime's container events wake the pod they belong to at once; every pod is
    /// also resynced periodically (the relist).
    private func watchContainerEvents() async {
        for await event in events.subscribe() {
            if let uid = event.podSandboxStatus?.labels[PodLabels.podUID] ?? event.podSandboxStatus?.metadata?.uid {
                workers.wake(podUID: uid)
            } else {
                workers.wake(containerID: event.containerId)
            }
        }
    }

    /// Every 10 s: pods the runtime has but nobody wants (orphans after a restart, leftovers)
    /// get a worker that removes them; the loop's heartbeat feeds the Ready condition.
    private func housekeeping() async {
        // Let the sources deliver first, so that running pods are adopted, not removed.
        try? await Task.sleep(for: .seconds(client == nil ? 2 : 5))
        while !Task.isCancelled {
            if let managed = try? await calls.managedPods() {
                for uid in managed.keys where !workers.hasWorker(uid) {
                    logger.info("cleaning up orphaned pod", metadata: ["uid": "\(uid)"])
                    workers.adoptOrphan(uid: uid)
                }
            }
            loopHeartbeat.withLock { $0 = .now }
            try? await Task.sleep(for: .seconds(10))
        }
    }

    /// Whether the housekeeping loop ran in the last 3 minutes (the kubelet's PLEG health).
    var loopHealthy: Bool { ContinuousClock.now - loopHeartbeat.withLock { $0 } < .seconds(180) }

    /// What the node status is computed from.
    func statusInputs() async -> NodeStatusInputs {
        var notReady: [String] = []
        if let status = try? await calls.runtime.status(StatusRequest(), context: RuntimeCalls.context("Status")).status {
            for condition in status.conditions where !condition.status {
                let name = condition.type == "NetworkReady" ? "container runtime network not ready" : "container runtime not ready"
                notReady.append("\(name): \(condition.type)=false reason:\(condition.reason) message:\(condition.message)")
            }
        } else {
            notReady.append("container runtime is down")
        }
        let heartbeat = loopHeartbeat.withLock { $0 }
        if ContinuousClock.now - heartbeat > .seconds(180) {
            notReady.append("PLEG is not healthy: pleg was last seen active \(ContinuousClock.now - heartbeat) ago; threshold is 3m0s")
        }
        let pressure = resources.pressure()
        let images = (try? await calls.images.listImages(ListImagesRequest(), context: RuntimeCalls.context("ListImages", service: "ImageService")).images) ?? []
        return NodeStatusInputs(
            capacity: resources.ledger.capacity.apiStrings, allocatable: resources.ledger.allocatable(availableTo: .kubernetes).apiStrings,
            memoryPressure: pressure?.memory ?? false, diskPressure: pressure?.disk ?? false, pidPressure: pressure?.pid ?? false,
            notReadyReasons: notReady,
            // At most 5 names per image (the kubelet's maxNamesPerImageInNodeStatus).
            images: images.map { ContainerImage(names: Array(($0.repoDigests + $0.repoTags).prefix(5)), sizeBytes: Int64($0.size)) })
    }
}

/// The status source the reporter calls (the agent, without a reference cycle at init).
struct NodeStatusSourceAdapter: NodeStatusSource {
    let agent: KubeNodeAgent
    func statusInputs() async -> NodeStatusInputs { await agent.statusInputs() }
}

/// Lets probe results reach the workers, which are made after them. Weak: the workers own the
/// probe results (through their sync), so a strong reference back would be a cycle.
final class WorkersBox: Sendable {
    private struct Reference: @unchecked Sendable {
        weak var workers: PodWorkers?
    }
    private let box = Mutex(Reference())
    var workers: PodWorkers? {
        get { box.withLock { $0.workers } }
        set { box.withLock { $0.workers = newValue } }
    }
}
