/// Finds the cgroup hierarchies of this machine from `/proc/self/mountinfo`: cgroup v1
/// controllers each at their mount, and the cgroup2 hierarchy with the controllers its root
/// offers (`cgroup.controllers`). Hybrid machines have both.
public struct CgroupLayout: Sendable, Equatable, Codable {
    /// v1 controller name -> mount point (`memory` -> `/sys/fs/cgroup/memory`).
    public var v1: [String: String] = [:]
    /// The cgroup2 mount point, if one is mounted.
    public var v2Mount: String?
    /// The controllers the cgroup2 root offers.
    public var v2Controllers: [String] = []

    public init(v1: [String: String] = [:], v2Mount: String? = nil, v2Controllers: [String] = []) {
        self.v1 = v1
        self.v2Mount = v2Mount
        self.v2Controllers = v2Controllers
    }

    /// The controllers a container needs, on either version.
    public static let required = ["cpu", "memory", "pids"]

    /// The required controllers that neither hierarchy provides.
    public var missingControllers: [String] {
        Self.required.filter { v1[$0] == nil && !v2Controllers.contains($0) }
    }

    /// Reads the layout: `mountinfo` is the text of `/proc/self/mountinfo`; `readFile` reads
    /// a file (the cgroup2 root's `cgroup.controllers`), so tests can use a file tree.
    public static func parse(mountinfo: String, readFile: (String) -> String?) -> CgroupLayout {
        var layout = CgroupLayout()
        for line in mountinfo.split(separator: "\n") {
            // id parent major:minor root mount-point options [optional...] - fstype source super-options
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " ")
            let right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3 else { continue }
            let mountPoint = unescapeMountPath(String(left[4]))
            switch right[0] {
            case "cgroup":
                for option in right[2].split(separator: ",") where knownV1Controllers.contains(String(option)) {
                    layout.v1[String(option)] = layout.v1[String(option)] ?? mountPoint
                }
            case "cgroup2":
                guard layout.v2Mount == nil else { continue }
                layout.v2Mount = mountPoint
                let controllers = readFile(mountPoint + "/cgroup.controllers") ?? ""
                layout.v2Controllers = controllers.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
            default:
                continue
            }
        }
        return layout
    }

    /// This machine's layout, from /proc/self/mountinfo.
    public static func current() -> CgroupLayout {
        parse(mountinfo: readFile("/proc/self/mountinfo") ?? "", readFile: readFile)
    }

    /// A whole file (procfs too, whose files report size 0), or nil if it cannot be read.
    public static func readFile(_ path: String) -> String? {
        try? CgroupFiles.read(path: path)
    }

    private static let knownV1Controllers: Set<String> = [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio", "perf_event",
        "net_prio", "hugetlb", "pids", "rdma", "misc",
    ]

    /// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
    static func unescapeMountPath(_ path: String) -> String {
        guard path.contains("\\") else { return path }
        var bytes: [UInt8] = []
        let utf8 = Array(path.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "\\"), index + 3 < utf8.count,
               let value = UInt8(String(decoding: utf8[(index + 1)...(index + 3)], as: UTF8.self), radix: 8) {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
