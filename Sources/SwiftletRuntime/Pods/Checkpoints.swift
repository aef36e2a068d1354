import CRI
import CRIProtobufC
import Containerizer
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// CheckpointContainer: a running container dumped with CRIU (it runs on) into an archive
/// laid out as CRI-O and containerd 2 write theirs, an uncompressed tar of
///
///     checkpoint/          CRIU's images, its dump.log, and swiftlet-dump.json (what the
///                          images refer to outside: mounts, namespaces, pipes; see ContainerDump)
///     config.dump          checkpointctl's container metadata: id, name, image, runtime, times
///     spec.dump            the container's launch config (swiftlet's, JSON; no OCI spec exists)
///     cri-config.pb        the CRI ContainerConfig as the kubelet sent it (protobuf)
///     rootfs-diff.tar      the container's writable layer (the overlay upper directory)
///     container.log        its CRI log so far
extension PodRuntime {
    /// How long a checkpoint may take when the request gives no timeout.
    static let defaultCheckpointTimeout: Duration = .seconds(300)

    /// CheckpointContainer: writes the archive at `location` (an absolute path whose directory
    /// exists; a file there is replaced) within `timeout` seconds (0: the default, 5 minutes).
    public func checkpointContainer(_ id: String, location: String, timeout: Int64) async throws(CRIError) {
        guard !location.isEmpty else { throw CRIError.invalidArgument("CheckpointContainer needs a location for the archive") }
        guard location.hasPrefix("/") else { throw CRIError.invalidArgument("checkpoint location \"\(location)\" is not an absolute path") }
        let parent = (location as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw CRIError.invalidArgument("the directory of checkpoint location \(location) does not exist")
        }
        if FileManager.default.fileExists(atPath: location, isDirectory: &isDirectory), isDirectory.boolValue {
            throw CRIError.invalidArgument("checkpoint location \(location) is a directory; name the archive file")
        }
        guard timeout >= 0 else { throw CRIError.invalidArgument("checkpoint timeout \(timeout) is negative") }
        let record = try container(id)
        guard containerizer.info(id: id)?.state == .running else {
            throw CRIError(.failedPrecondition, "container \(id) is not running")
        }
        guard record.launch.userNamespace == nil else {
            // CRIU dumps a user namespace only with every other namespace of the task inside it;
            // a container's mount and PID namespaces are made with the host's privileges.
            throw CRIError(.failedPrecondition,
                           "cannot checkpoint container \(id): it runs in its pod's user namespace, and CRIU dumps one only when the container's mount and PID namespaces belong to it (here they are the host's)")
        }
        guard let criu = CRIU.locate(configured: criuPath) else {
            let looked = criuPath.map { "\($0) is not executable" } ?? "not at \(CRIU.defaultPath) nor on PATH"
            throw CRIError(.failedPrecondition, "cannot checkpoint container \(id): criu is not installed (\(looked)); hack/install-criu.sh installs it")
        }
        let deadline = ContinuousClock.now + (timeout > 0 ? .seconds(timeout) : Self.defaultCheckpointTimeout)
        let start = ContinuousClock.now
        try await podLocks.withLock(record.sandboxID) { () throws(CRIError) in
            try await Offload.throwing { () throws(CRIError) in
                try self.writeCheckpoint(record, to: location, criu: criu, deadline: deadline)
            }
        }
        logger.info("container checkpointed", metadata: [
            "id": "\(id)", "location": "\(location)", "took": "\(ContinuousClock.now - start)",
        ])
    }

    private func writeCheckpoint(_ record: ContainerRecord, to location: String, criu: CRIU, deadline: ContinuousClock.Instant) throws(CRIError) {
        let id = record.id
        let parent = (location as NSString).deletingLastPathComponent
        let name = (location as NSString).lastPathComponent
        let staging = "\(parent)/.\(name).swiftlet-\(randomID().prefix(12))"
        guard mkdir(staging, 0o700) == 0, mkdir(staging + "/checkpoint", 0o700) == 0 else {
            let code = errno
            rmdir(staging)
            throw CRIError(.internal, "cannot checkpoint container \(id): mkdir \(staging): \(String(cString: strerror(code)))")
        }
        defer { try? FileManager.default.removeItem(atPath: staging) }

        let dump: ContainerDump
        do {
            dump = try containerizer.dump(id: id, into: staging + "/checkpoint", criu: criu,
                                          options: DumpOptions(leaveRunning: true, timeout: deadline - ContinuousClock.now))
        } catch {
            throw Self.criError(error, id: id)
        }

        let now = nowNanoseconds()
        let metadata: [String: String] = [
            "id": id, "name": record.name, "rootfsImage": record.imageTag ?? record.imageName,
            "rootfsImageRef": record.imageID, "rootfsImageName": record.imageName, "runtime": "swiftlet",
            "createdTime": Self.rfc3339(record.createdAt), "checkpointedTime": Self.rfc3339(now),
            "podSandboxId": record.sandboxID, "criuVersion": dump.criuVersion ?? "",
        ]
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(metadata).write(to: URL(fileURLWithPath: staging + "/config.dump"))
            try encoder.encode(record.launch).write(to: URL(fileURLWithPath: staging + "/spec.dump"))
            try Data(record.config.encode()).write(to: URL(fileURLWithPath: staging + "/cri-config.pb"))
            if let log = record.launch.logPath, FileManager.default.fileExists(atPath: log) {
                try FileManager.default.copyItem(atPath: log, toPath: staging + "/container.log")
            }
        } catch {
            throw CRIError(.internal, "cannot checkpoint container \(id): writing its config: \(error)")
        }

        let upper = rootfsDirectory(id) + "/upper"
        if FileManager.default.fileExists(atPath: upper) {
            try Self.tar(["--create", "--file", staging + "/rootfs-diff.tar", "--numeric-owner", "--xattrs", "--directory", upper, "."],
                         id: id, what: "its writable layer", scratch: staging + "/tar.out", deadline: deadline)
        }
        let temporary = "\(parent)/.\(name).swiftlet-\(randomID().prefix(12)).tar"
        defer { unlink(temporary) }
        try Self.tar(["--create", "--file", temporary, "--numeric-owner", "--directory", staging,
                      "--exclude", "./tar.out", "."], id: id, what: "the archive", scratch: staging + "/tar.out", deadline: deadline)
        guard rename(temporary, location) == 0 else {
            throw CRIError(.internal, "cannot checkpoint container \(id): rename to \(location): \(String(cString: strerror(errno)))")
        }
    }

    private static func tar(_ arguments: [String], id: String, what: String, scratch: String, deadline: ContinuousClock.Instant) throws(CRIError) {
        let binary = access("/usr/bin/tar", X_OK) == 0 ? "/usr/bin/tar" : "/bin/tar"
        switch ToolProcess.run(binary, arguments, output: scratch, timeout: deadline - ContinuousClock.now) {
        case .exited(0):
            return
        case .exited(let code):
            let output = (try? String(contentsOfFile: scratch, encoding: .utf8)) ?? ""
            throw CRIError(.internal, "cannot checkpoint container \(id): tar of \(what) exited \(code): \(output.suffix(1000))")
        case .timedOut:
            throw CRIError(.deadlineExceeded, "checkpoint of container \(id) timed out writing \(what)")
        case .notStarted(let code):
            throw CRIError(.internal, "cannot checkpoint container \(id): cannot run \(binary): \(String(cString: strerror(code)))")
        }
    }

    /// The CRI's code for a failed dump.
    static func criError(_ error: ContainerDumpError, id: String) -> CRIError {
        switch error.kind {
        case .notFound: return CRIError.notFound("container \(id) not found")
        case .notRunning: return CRIError(.failedPrecondition, "container \(id) is not running")
        case .invalidArgument: return CRIError(.failedPrecondition, "cannot checkpoint container \(id): \(error)")
        case .criuMissing: return CRIError(.failedPrecondition, "cannot checkpoint container \(id): \(error)")
        case .criuFailed, .io: return CRIError(.internal, "\(error)")
        case .timedOut: return CRIError(.deadlineExceeded, "\(error)")
        }
    }

    /// RFC 3339 with nanoseconds (Go's time.RFC3339Nano, UTC).
    static func rfc3339(_ nanoseconds: Int64) -> String {
        var seconds = time_t(nanoseconds / 1_000_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [UInt8](repeating: 0, count: 32)
        let length = buffer.withUnsafeMutableBufferPointer { pointer in
            pointer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: pointer.count) { strftime($0, pointer.count, "%Y-%m-%dT%H:%M:%S", &parts) }
        }
        var fraction = String(nanoseconds % 1_000_000_000)
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return String(decoding: buffer[..<length], as: UTF8.self) + (fraction.isEmpty ? "" : "." + fraction) + "Z"
    }
}
