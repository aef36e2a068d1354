#if canImport(Glibc)
import Glibc
#endif

/// Reading and writing cgroup control files, each a single syscall sequence with errno kept.
enum CgroupFiles {
    static func write(_ directory: String, _ file: String, _ value: String) throws(ContainerizerError) {
        let path = directory + "/" + file
        // O_TRUNC is ignored by cgroupfs and keeps file trees (tests) exact.
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw .cgroup(path, "open") }
        defer { close(fd) }
        var text = value
        let written = text.withUTF8 { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == value.utf8.count else { throw .cgroup(path, "write \"\(value)\"") }
    }

    static func read(_ directory: String, _ file: String) throws(ContainerizerError) -> String {
        try read(path: directory + "/" + file)
    }

    /// A whole file, procfs and cgroupfs included (they report size 0).
    static func read(path: String) throws(ContainerizerError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .cgroup(path, "open") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .cgroup(path, "read")
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func readInt(_ directory: String, _ file: String) throws(ContainerizerError) -> Int64 {
        let text = try read(directory, file).trimmingCharacters(in: " \n")
        if text == "max" { return Int64.max }
        guard let value = Int64(text) else {
            throw ContainerizerError(.cgroup, context: directory + "/" + file, detail: "not a number: \"\(text)\"")
        }
        return value
    }

    /// `key value` lines (memory.stat, cpu.stat, memory.events, memory.oom_control).
    static func readKeyed(_ directory: String, _ file: String) throws(ContainerizerError) -> [String: Int64] {
        var result: [String: Int64] = [:]
        for line in try read(directory, file).split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Int64(parts[1]) { result[String(parts[0])] = value }
        }
        return result
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// `mkdir -p`.
    static func makeDirectories(_ path: String) throws(ContainerizerError) {
        var current = ""
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw .cgroup(current, "mkdir")
            }
        }
    }

    /// The pids in the cgroup (cgroup.procs).
    static func processes(_ directory: String) -> [Int32] {
        guard let text = try? read(directory, "cgroup.procs") else { return [] }
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    /// rmdir, retrying while the last processes finish exiting.
    static func remove(_ directory: String) throws(ContainerizerError) {
        for attempt in 0..<100 {
            if rmdir(directory) == 0 || errno == ENOENT { return }
            guard errno == EBUSY, attempt < 99 else { throw .cgroup(directory, "rmdir") }
            usleep(10_000)
        }
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        var text = Substring(self)
        while let first = text.first, characters.contains(first) { text = text.dropFirst() }
        while let last = text.last, characters.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
