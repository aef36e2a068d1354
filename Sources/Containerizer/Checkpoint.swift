import Foundation

/// A container's checkpointed state, Mesos-style, under `<state>/containers/<id>/`:
///
///     config.json    the ContainerConfig (agent)
///     launch.spec    what the monitor was given (agent)
///     monitor        "<monitor pid> <its start time in clock ticks>" (agent, after launch)
///     pid            the container's pid (monitor)
///     exit           exit_code=, signal=, finished_at= (monitor, when the container exits)
///     status.json    created/started times, the exit with its reason (agent)
///
/// Every file is written atomically (temporary file, fsync, rename).
struct Checkpoint: Sendable {
    let directory: String

    init(stateRoot: String, id: String) {
        directory = "\(stateRoot)/containers/\(id)"
    }

    var specPath: String { directory + "/launch.spec" }
    var exitPath: String { directory + "/exit" }
    var pidPath: String { directory + "/pid" }

    /// Creates the directory holding an exclusive lock (`lock`, flock) for the launch: it is
    /// made under a hidden name, locked, then renamed into place, so recovery in another
    /// process never sees it unlocked before the launch finishes or its process dies.
    /// Returns the lock's file descriptor; closing it ends the launch's claim.
    func createLocked() throws(ContainerizerError) -> Int32 {
        let parent = String(directory[..<directory.lastIndex(of: "/")!])
        let id = String(directory[directory.index(after: directory.lastIndex(of: "/")!)...])
        let staging = "\(parent)/.launching-\(id)-\(getpid())"
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw ContainerizerError(.checkpoint, context: parent, detail: "\(error)")
        }
        guard mkdir(staging, 0o700) == 0 else { throw ContainerizerError(.checkpoint, context: staging, errno: errno) }
        let fd = open(staging + "/lock", O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX) == 0 else {
            let code = errno
            rmdir(staging)
            throw ContainerizerError(.checkpoint, context: staging, errno: code)
        }
        guard rename(staging, directory) == 0 else {
            let code = errno
            close(fd)
            unlink(staging + "/lock")
            rmdir(staging)
            if code == EEXIST || code == ENOTEMPTY { throw ContainerizerError(.alreadyExists, context: id) }
            throw ContainerizerError(.checkpoint, context: directory, errno: code)
        }
        return fd
    }

    /// Whether a launch in some live process still holds this container's lock.
    static func isLaunching(_ directory: String) -> Bool {
        let fd = open(directory + "/lock", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }

    func write(_ name: String, _ text: String) throws(ContainerizerError) {
        let path = directory + "/" + name
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ContainerizerError(.checkpoint, context: temporary, errno: errno) }
        var bytes = Array(text.utf8)
        let ok = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count && fsync(fd) == 0
        let code = errno
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw ContainerizerError(.checkpoint, context: path, errno: ok ? errno : code)
        }
    }

    func writeJSON(_ name: String, _ value: some Encodable) throws(ContainerizerError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            try write(name, String(decoding: try encoder.encode(value), as: UTF8.self))
        } catch let error as ContainerizerError {
            throw error
        } catch {
            throw ContainerizerError(.checkpoint, context: directory + "/" + name, detail: "\(error)")
        }
    }

    func read(_ name: String) -> String? {
        guard let data = FileManager.default.contents(atPath: directory + "/" + name) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    func readJSON<T: Decodable>(_ name: String, as type: T.Type) -> T? {
        guard let data = FileManager.default.contents(atPath: directory + "/" + name) else { return nil }
        return try? JSONDecoder().decode(type, from: data)
    }

    /// The monitor's exit record, if the container has exited.
    func readExit() -> (exitCode: Int32, signal: Int32, finishedAt: Int64)? {
        guard let text = read("exit") else { return nil }
        var values: [String: Int64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let value = Int64(parts[1]) { values[String(parts[0])] = value }
        }
        guard let code = values["exit_code"], let signal = values["signal"], let finished = values["finished_at"] else { return nil }
        return (Int32(code), Int32(signal), finished)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A process's start time in clock ticks since boot (/proc/<pid>/stat field 22): with the
/// pid, it names one process even after pids wrap. Nil for a process that is gone or a zombie
/// (an exited monitor whose new parent has not reaped it yet is not alive).
func processStartTime(_ pid: Int32) -> UInt64? {
    guard let text = CgroupLayout.readFile("/proc/\(pid)/stat") else { return nil }
    guard let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // fields[0] is the state (field 3); the start time is field 22.
    guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
    return UInt64(fields[19])
}
