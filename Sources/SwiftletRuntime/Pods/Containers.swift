import CRI
import Containerizer
import Foundation
import ImageStore

#if canImport(Glibc)
import Glibc
#endif

/// CRI containers: CreateContainer prepares the root filesystem and the launch config;
/// StartContainer launches it through the containerizer, which owns it from then on.
extension PodRuntime {
    func rootfsDirectory(_ id: String) -> String { "\(containersDirectory)/\(id)" }

    /// CreateContainer.
    public func createContainer(sandboxID: String, config: CRI.ContainerConfig) async throws(CRIError) -> String {
        try await podLocks.withLock(sandboxID) { () throws(CRIError) -> String in
            try await createContainerLocked(sandboxID: sandboxID, config: config)
        }
    }

    private func createContainerLocked(sandboxID: String, config: CRI.ContainerConfig) async throws(CRIError) -> String {
        let sandbox = try sandbox(sandboxID)
        guard let metadata = config.metadata, !metadata.name.isEmpty else {
            throw CRIError.invalidArgument("container config needs metadata with a name")
        }
        guard sandbox.state == .ready else {
            throw CRIError(.failedPrecondition, "pod sandbox \(sandboxID) is not ready")
        }
        let imageName = config.image?.image ?? ""
        guard !imageName.isEmpty else { throw CRIError.invalidArgument("container config needs an image") }
        let images = self.images
        guard let image = await Offload.run({ images.resolve(imageName) }) else {
            throw CRIError.notFound("image \"\(imageName)\" not found: pull it first")
        }
        let podMetadata = sandbox.config.metadata ?? PodSandboxMetadata()
        let id = randomID()
        let name = "\(metadata.name)_\(podMetadata.name)_\(podMetadata.namespace)_\(podMetadata.uid)_\(metadata.attempt)"
        try reserve(name: name, for: id)
        let directory = rootfsDirectory(id)
        let idMapping = sandbox.userNamespace.map {
            ImageStore.IDMapping(userNamespacePath: pins(sandboxID).path(.user), rootUID: $0.uid.hostID, rootGID: $0.gid.hostID)
        }
        do {
            let rootfs = try await Offload.throwing { () throws(CRIError) -> String in
                do {
                    return try images.mountRootfs(image, at: directory, idMapping: idMapping).path
                } catch {
                    throw CRIError(.internal, "cannot make the root filesystem of \(image.id): \(error)")
                }
            }
            let holderPID = sandbox.pidHolder.flatMap { containerizer.info(id: $0) }.flatMap { $0.state == .running ? $0.pid : nil }
            let spec = ContainerSpec(config: config, sandbox: sandbox, imageConfig: image.configuration.config, rootfs: rootfs, pins: pins(sandboxID),
                                     podDirectory: podDirectory(sandboxID), cgroupParent: cgroupParent(of: sandbox), podPIDHolder: holderPID,
                                     targetPID: { [containerizer] target in
                                         containerizer.info(id: target).flatMap { $0.state == .running ? $0.pid : nil }
                                     })
            let launch = try spec.build()
            if let logPath = launch.logPath {
                try? FileManager.default.createDirectory(atPath: (logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            }
            let imageRef = image.repoDigests.first ?? image.id.description
            // The kubelet names the image by its id (ImageStatus's answer); the status names it by
            // a tag, as containerd and dockershim do: it becomes the pod status's `image`.
            let namedByTag = ImageReference(imageName).map { image.tags.contains($0.description) } ?? false
            let imageTag = namedByTag ? nil : image.tags.sorted().first
            let record = ContainerRecord(id: id, name: name, sandboxID: sandboxID, createdAt: nowNanoseconds(), imageName: imageName,
                                         imageTag: imageTag, imageID: image.id.description, imageRef: imageRef, launch: launch,
                                         config: config)
            try store.save(record)
            state.withLock { $0.put(record, state: .containerCreated) }  // under the pod's lock: nothing started it yet
            publish(.containerCreatedEvent, id)
            logger.info("container created", metadata: ["container": "\(name)", "id": "\(id)", "image": "\(imageName)"])
            return id
        } catch {
            await Offload.run { try? images.removeRootfs(at: directory) }
            release(name: name, of: id)
            throw error
        }
    }

    /// StartContainer. A start that fails leaves the container EXITED with the reason, as
    /// containerd does (StartError, exit code 128).
    public func startContainer(_ id: String) async throws(CRIError) {
        let sandboxID = try container(id).sandboxID
        try await podLocks.withLock(sandboxID) { () throws(CRIError) in try await startContainerLocked(id) }
    }

    private func startContainerLocked(_ id: String) async throws(CRIError) {
        var record = try container(id)  // again, under the lock: it may have been removed or started
        guard !record.started else {
            throw CRIError(.failedPrecondition, "container \(id) was already started (its state is \(containerState(record).protoName))")
        }
        guard (try? sandbox(record.sandboxID))?.state == .ready else {
            throw CRIError(.failedPrecondition, "pod sandbox \(record.sandboxID) of container \(id) is not ready")
        }
        record.started = true
        // Recorded before the launch: an agent killed during it comes back to a container
        // that is running (adopted) or UNKNOWN, never to one that looks never started.
        try store.save(record)
        let launch = record.launch, containerizer = self.containerizer
        let result = await Offload.run { Result { () throws(ContainerizerError) -> ContainerInfo in try containerizer.launch(id: id, config: launch) } }
        if case .failure(let error) = result {
            record.startFailure = .init(finishedAt: nowNanoseconds(), message: error.description)
        }
        let started = record
        state.withLock { $0.put(started, state: containerState(started)) }  // an exit may be recorded already
        try store.save(record)
        switch result {
        case .success(let info):
            publish(.containerStartedEvent, id)
            logger.info("container started", metadata: ["container": "\(record.name)", "id": "\(id)", "pid": "\(info.pid)"])
        case .failure(let error):
            publish(.containerStoppedEvent, id)
            throw CRIError(.unknown, "failed to start container \(id): \(error)")
        }
    }

    /// StopContainer: the image's stop signal (SIGTERM by default), then SIGKILL after
    /// `timeout` seconds. Stopping an exited or unknown container succeeds.
    public func stopContainer(_ id: String, timeout: Int64) async throws(CRIError) {
        guard let record = state.withLock({ $0.containers[id] }) else { return }
        guard let info = containerizer.info(id: id), info.state == .running else { return }
        let containerizer = self.containerizer
        if timeout > 0 {
            let signal = await Offload.run { self.stopSignal(record) }  // reads the image config
            try? containerizer.kill(id: id, signal: signal)
            if await waitForExit(id, within: .seconds(timeout)) { return }
            // A caller that gave up (a cancelled call, an agent shutting down) ends the wait;
            // the container keeps its stop signal and runs on, as with containerd.
            if Task.isCancelled { throw CRIError(.cancelled, "stopping container \(id): the call was cancelled") }
        }
        // Killing the cgroup can take a freezer round trip: not on the caller's thread.
        let killed = await Offload.run { Result { () throws(ContainerizerError) in try containerizer.kill(id: id, signal: SIGKILL) } }
        if case .failure(let error) = killed { throw CRIError(.internal, "failed to kill container \(id): \(error)") }
        // The kill reaches every process of the cgroup; one stuck in the kernel (D state) can
        // still hold it: give up after a while rather than hang the caller.
        guard await waitForExit(id, within: .seconds(30)) else {
            if Task.isCancelled { throw CRIError(.cancelled, "stopping container \(id): the call was cancelled") }
            throw CRIError(.deadlineExceeded, "container \(id) did not exit within 30 s of SIGKILL")
        }
        logger.info("container stopped", metadata: ["container": "\(record.name)", "id": "\(id)"])
    }

    /// Unmounts and deletes the root filesystem of a container that is not running (its
    /// writable layer, and the lease on its image's layers). Best effort: RemoveContainer
    /// removes whatever is left, and fails if it cannot.
    func releaseRootfs(_ id: String) async {
        guard containerizer.state(id: id) != .running else { return }
        let images = self.images, directory = rootfsDirectory(id)
        let result = await Offload.run { Result { () throws(ImageStoreError) in try images.removeRootfs(at: directory) } }
        if case .failure(let error) = result {
            logger.warning("cannot release a stopped container's root filesystem", metadata: ["id": "\(id)", "error": "\(error)"])
        }
    }

    /// Polls the containerizer's state (cancellable, unlike waiting on the exit) until the
    /// container is no longer running; false if it still runs after `limit` or the calling
    /// task is cancelled.
    func waitForExit(_ id: String, within limit: Duration) async -> Bool {
        let clock = ContinuousClock()
        let start = clock.now
        while containerizer.state(id: id) == .running {
            let elapsed = clock.now - start
            guard elapsed < limit, !Task.isCancelled else { return false }
            try? await Task.sleep(for: elapsed < .milliseconds(200) ? .milliseconds(5) : .milliseconds(50))
        }
        return true
    }

    /// The image's StopSignal, SIGTERM if it has none or names an unknown one.
    func stopSignal(_ record: ContainerRecord) -> Int32 {
        guard let text = images.resolve(record.imageID)?.configuration.config?.StopSignal, !text.isEmpty else { return SIGTERM }
        if let number = Int32(text) { return number }
        let name = text.uppercased().hasPrefix("SIG") ? String(text.uppercased().dropFirst(3)) : text.uppercased()
        let signals: [String: Int32] = ["TERM": SIGTERM, "INT": SIGINT, "QUIT": SIGQUIT, "KILL": SIGKILL, "HUP": SIGHUP,
                                        "USR1": SIGUSR1, "USR2": SIGUSR2, "WINCH": SIGWINCH, "STOP": SIGSTOP]
        return signals[name] ?? SIGTERM
    }

    /// RemoveContainer: a running container is killed first. Removing an unknown container
    /// succeeds.
    public func removeContainer(_ id: String) async throws(CRIError) {
        guard let sandboxID = state.withLock({ $0.containers[id]?.sandboxID }) else { return }
        try await podLocks.withLock(sandboxID) { () throws(CRIError) in try await removeContainerLocked(id) }
    }

    /// RemoveContainer with the pod's lock held (by the caller, or by RemovePodSandbox).
    func removeContainerLocked(_ id: String) async throws(CRIError) {
        guard let record = state.withLock({ $0.containers[id] }) else { return }
        let containerizer = self.containerizer, images = self.images, directory = rootfsDirectory(id)
        let failure = await Offload.run { () -> String? in
            if containerizer.info(id: id) != nil {
                do {
                    try containerizer.destroy(id: id, deferRemoval: true)
                } catch {
                    // Gone already (a concurrent removal): removal is idempotent.
                    if (error as? ContainerizerError)?.kind != .notFound { return "\(error)" }
                }
            }
            do {
                try images.removeRootfs(at: directory)
            } catch {
                return "\(error)"
            }
            return nil
        }
        if let failure { throw CRIError(.internal, "failed to remove container \(id): \(failure)") }
        store.removeContainer(id)
        state.withLock { state in
            state.removeContainer(id)
            if state.names[record.name] == id { state.names[record.name] = nil }
        }
        publish(.containerDeletedEvent, id)
        logger.info("container removed", metadata: ["container": "\(record.name)", "id": "\(id)"])
    }

    // MARK: Status

    func containerState(_ record: ContainerRecord) -> CRI.ContainerState {
        containerState(id: record.id, started: record.started, startFailed: record.startFailure != nil)
    }

    func containerState(id: String, started: Bool, startFailed: Bool) -> CRI.ContainerState {
        if startFailed { return .containerExited }
        guard started else { return .containerCreated }
        switch containerizer.state(id: id) {
        case .running: return .containerRunning
        case .exited: return .containerExited
        case nil: return .containerUnknown
        }
    }

    /// ContainerStatus's answer.
    func status(of record: ContainerRecord) -> ContainerStatus {
        let info = containerizer.info(id: record.id)
        var status = ContainerStatus(
            id: record.id, metadata: record.config.metadata, state: containerState(record), createdAt: record.createdAt,
            image: ImageSpec(image: record.imageTag ?? record.imageName, annotations: record.config.image?.annotations ?? [:],
                             userSpecifiedImage: record.config.image?.userSpecifiedImage ?? ""),
            imageRef: record.imageRef, labels: record.config.labels, annotations: record.config.annotations,
            mounts: record.config.mounts, logPath: record.launch.logPath ?? "", imageId: record.imageID)
        if let info {
            status.startedAt = info.startedAt
            if let exit = info.exit {
                status.finishedAt = exit.finishedAt
                status.exitCode = exit.exitCode
                status.reason = exit.reason == "Lost" ? "Error" : exit.reason
                if exit.reason == "Lost" { status.message = "the container's monitor ended without recording its exit" }
            }
        }
        if let failure = record.startFailure {
            status.finishedAt = failure.finishedAt
            status.exitCode = 128
            status.reason = "StartError"
            status.message = failure.message
        }
        if let resources = record.config.linux?.resources {
            status.resources = ContainerResources(linux: resources)
        }
        let user = record.launch.user
        status.user = ContainerUser(linux: LinuxContainerUser(uid: Int64(user.uid), gid: Int64(user.gid),
                                                              supplementalGroups: user.additionalGids.map { Int64($0) }))
        return status
    }

    /// The container's verbose `info`.
    func verboseInfo(of record: ContainerRecord) -> [String: String] {
        struct Info: Encodable {
            var sandboxID: String
            var pid: Int32
            var monitorPid: Int32
            var rootfs: String
            var config: LaunchConfig
        }
        let info = containerizer.info(id: record.id)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let value = Info(sandboxID: record.sandboxID, pid: info?.pid ?? 0, monitorPid: info?.monitorPid ?? 0,
                         rootfs: record.launch.rootfs, config: record.launch)
        return ["info": (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"]
    }

    /// ListContainers: by id (or prefix), state, sandbox and labels; oldest first.
    func listContainers(_ filter: ContainerFilter?) -> [Container] {
        state.withLock { $0.listedContainers(filter) }
    }

    /// ListContainers' response, encoded (kept while nothing changes).
    func listContainersEncoded(_ filter: ContainerFilter?) -> [UInt8] {
        state.withLock { $0.encodedContainers(filter) }
    }

    // MARK: Changes to running containers

    /// UpdateContainerResources: new cgroup limits, live.
    public func updateResources(_ id: String, _ resources: LinuxContainerResources) async throws(CRIError) {
        let sandboxID = try container(id).sandboxID
        try await podLocks.withLock(sandboxID) { () throws(CRIError) in try await updateResourcesLocked(id, resources) }
    }

    private func updateResourcesLocked(_ id: String, _ resources: LinuxContainerResources) async throws(CRIError) {
        var record = try container(id)
        let limits = ContainerSpec.limits(resources)
        if containerizer.info(id: id)?.state == .running {
            let containerizer = self.containerizer
            let result = await Offload.run { Result { () throws(ContainerizerError) in try containerizer.update(id: id, resources: limits) } }
            if case .failure(let error) = result { throw CRIError(.internal, "failed to update the resources of container \(id): \(error)") }
        } else if containerState(record) == .containerExited {
            throw CRIError(.failedPrecondition, "container \(id) has exited")
        }
        record.launch.resources = limits
        if var linux = record.config.linux {
            linux.resources = resources
            record.config.linux = linux
        } else {
            record.config.linux = LinuxContainerConfig(resources: resources)
        }
        let updated = record
        state.withLock { $0.put(updated, state: containerState(updated)) }
        try store.save(updated)
    }

    /// ReopenContainerLog.
    public func reopenLog(_ id: String) async throws(CRIError) {
        _ = try container(id)
        guard containerizer.info(id: id)?.state == .running else {
            throw CRIError(.failedPrecondition, "container \(id) is not running")
        }
        let containerizer = self.containerizer
        let result = await Offload.run { Result { () throws(ContainerizerError) in try containerizer.reopenLog(id: id) } }
        if case .failure(let error) = result {
            throw CRIError(.internal, "failed to reopen the log of container \(id): \(error)")
        }
    }

    /// ExecSync.
    public func execSync(_ id: String, command: [String], timeout: Int64) async throws(CRIError) -> ExecResult {
        _ = try container(id)
        guard !command.isEmpty else { throw CRIError.invalidArgument("exec needs a command") }
        guard containerizer.info(id: id)?.state == .running else {
            throw CRIError(.failedPrecondition, "container \(id) is not running")
        }
        let containerizer = self.containerizer
        let limit: Duration? = timeout > 0 ? .seconds(timeout) : nil
        // A cancelled call (the client went away, the agent shuts down) kills the process.
        let cancellation = ExecCancellation()
        let result = await withTaskCancellationHandler {
            await Offload.run { Result { () throws(ContainerizerError) -> ExecResult in
                try containerizer.execSync(id: id, args: command, timeout: limit, cancellation: cancellation)
            } }
        } onCancel: {
            cancellation.cancel()
        }
        switch result {
        case .success(let output):
            if output.cancelled {
                throw CRIError(.cancelled, "command \(command) in container \(id) was cancelled and killed")
            }
            if output.timedOut {
                throw CRIError(.deadlineExceeded, "command \(command) in container \(id) timed out after \(timeout)s")
            }
            return output
        case .failure(let error):
            throw CRIError(.unknown, "failed to exec in container \(id): \(error)")
        }
    }

    // MARK: Events

    /// Publishes a container event with its pod's and the container's status.
    func publish(_ type: ContainerEventType, _ id: String) {
        let (record, sandbox) = state.withLock { state in
            (state.containers[id], state.containers[id].flatMap { state.sandboxes[$0.sandboxID] })
        }
        var event = ContainerEventResponse(containerId: id, containerEventType: type, createdAt: nowNanoseconds())
        if let sandbox { event.podSandboxStatus = status(of: sandbox) }
        if let record, type != .containerDeletedEvent { event.containersStatuses = [status(of: record)] }
        events.publish(event)
    }

    /// Called by the containerizer with every exit.
    public func containerExited(_ id: String) {
        enum Whose { case container, holder(SandboxRecord), none }
        let whose = state.withLock { state -> Whose in
            if state.containers[id] != nil {
                state.markExited(id)
                return .container
            }
            // A pod's pid-namespace holder: every container of the pod died with it, and no
            // container can join its namespace again. The pod is not ready (containerd's
            // handling of a sandbox exit), so the kubelet recreates it.
            if var sandbox = state.sandboxes.values.first(where: { $0.pidHolder == id }), sandbox.state == .ready {
                sandbox.state = .notReady
                state.put(sandbox)
                return .holder(sandbox)
            }
            return .none
        }
        switch whose {
        case .container: publish(.containerStoppedEvent, id)
        case .holder(let sandbox):
            logger.warning("the pod's pid namespace holder exited; the pod is not ready", metadata: ["pod": "\(sandbox.name)", "id": "\(sandbox.id)"])
            try? store.saveState(sandbox)
        case .none: break
        }
    }
}
