#if canImport(Glibc)
import Glibc
#endif

/// Why node resources could not be parsed or read, naming the text, flag or file concerned.
public struct ResourceLedgerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Sendable, Hashable {
        /// Not Kubernetes quantity syntax; `context` is the text.
        case invalidQuantity
        /// A flag item that is not `key=value` (or `signal<value>`); `context` is the item.
        case malformedFlag(flag: String)
        /// A reservation of a resource kubelet cannot reserve, or a negative one; `context` is the resource.
        case invalidReservation
        /// An eviction signal kubelet does not know; `context` is the signal.
        case unknownSignal
        /// An eviction statement whose operator is not `<`; `context` is the statement.
        case invalidOperator
        /// A threshold that is not positive, or a percentage outside 0–100%; `context` is the signal.
        case invalidThreshold
        /// A file or file system that could not be read; `context` is the path.
        case unreadable
    }

    /// What went wrong.
    public var kind: Kind
    /// The text, flag item, signal or path concerned.
    public var context: String
    /// The errno behind a failed read, if any.
    public var errno: Int32?
    /// More on what is wrong.
    public var detail: String

    /// Makes an error.
    public init(_ kind: Kind, context: String, errno: Int32? = nil, detail: String = "") {
        self.kind = kind
        self.context = context
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        let more = detail.isEmpty ? "" : ": \(detail)"
        switch kind {
        case .invalidQuantity: return "invalid quantity \"\(context)\"\(more)"
        case .malformedFlag(let flag): return "--\(flag): malformed item \"\(context)\"\(more)"
        case .invalidReservation: return "cannot reserve \"\(context)\"\(more)"
        case .unknownSignal: return "unsupported eviction signal \(context)"
        case .invalidOperator: return "eviction statement \"\(context)\": the only operator is <"
        case .invalidThreshold: return "eviction threshold \(context)\(more)"
        case .unreadable:
            return "cannot read \(context): " + (errno.map { String(cString: strerror($0)) } ?? detail)
        }
    }
}

/// The resource names a node reports and reserves.
public enum ResourceName {
    /// CPU, in cores (printed in millicores when fractional).
    public static let cpu = "cpu"
    /// Memory, in bytes.
    public static let memory = "memory"
    /// Local ephemeral storage, in bytes.
    public static let ephemeralStorage = "ephemeral-storage"
    /// The number of pods.
    public static let pods = "pods"
    /// Process ids (reservations only: kubelet does not report it in Node.status).
    public static let pid = "pid"
    /// `hugepages-<size>` for a page size in bytes: `hugepages-2Mi`, `hugepages-1Gi`.
    public static func hugePages(pageSizeBytes: Int64) -> String { "hugepages-" + Quantity.bytes(pageSizeBytes).description }
    /// Whether `name` is a `hugepages-<size>` resource.
    public static func isHugePages(_ name: String) -> Bool { name.hasPrefix("hugepages-") }
}

/// Quantities by resource name, as `v1.ResourceList`.
public typealias ResourceList = [String: Quantity]

extension Dictionary where Key == String, Value == Quantity {
    /// The list as Node.status prints it: `["cpu": "2", "memory": "8029264Ki", "pods": "110"]`.
    public var apiStrings: [String: String] { mapValues(\.description) }

    /// Parses a `[name: quantity text]` map.
    public init(parsing strings: [String: String]) throws(ResourceLedgerError) {
        self.init()
        for (name, text) in strings { self[name] = try Quantity(parsing: text) }
    }

    /// Each resource of both lists summed.
    public func adding(_ other: ResourceList) -> ResourceList {
        merging(other) { $0 + $1 }
    }

    /// Each resource of this list less `other`'s, clamped at zero; resources only in `other` are left out.
    public func subtractingClamped(_ other: ResourceList) -> ResourceList {
        var result = self
        for (name, amount) in other where result[name] != nil { result[name] = (result[name]! - amount).clampedAtZero }
        return result
    }
}

// MARK: Reading /proc, /sys and cgroup files

enum HostFile {
    /// The whole file, or an error with errno.
    static func read(_ path: String) -> Result<String, ResourceLedgerError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ResourceLedgerError(.unreadable, context: path, errno: errno)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return .failure(ResourceLedgerError(.unreadable, context: path, errno: errno)) }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return .success(String(decoding: bytes, as: UTF8.self))
    }

    /// The file's text trimmed, or nil when it cannot be read.
    static func text(_ path: String) -> String? {
        (try? read(path).get()).map { $0.trimmingWhitespace }
    }

    /// The file as one integer, or nil.
    static func integer(_ path: String) -> Int64? { text(path).flatMap { Int64($0) } }

    /// `key value [kB]` lines (/proc/meminfo, memory.stat) as numbers; `kB` values in bytes.
    static func keyedValues(_ text: String) -> [String: Int64] {
        var values: [String: Int64] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == ":" || $0 == "\t" })
            guard fields.count >= 2, let value = Int64(fields[1]) else { continue }
            values[String(fields[0])] = fields.count > 2 && fields[2] == "kB" ? value * 1024 : value
        }
        return values
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Names in a directory, or [] when it cannot be read.
    static func entries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// statvfs(3) of `path`: (capacity, available, inodes, inodesFree) in bytes and inodes.
    static func fileSystem(_ path: String) throws(ResourceLedgerError) -> (capacity: Int64, available: Int64, inodes: Int64, inodesFree: Int64) {
        var fs = statvfs()
        guard statvfs(path, &fs) == 0 else { throw ResourceLedgerError(.unreadable, context: path, errno: errno) }
        let block = Int64(fs.f_frsize)
        return (Int64(fs.f_blocks) * block, Int64(fs.f_bavail) * block, Int64(fs.f_files), Int64(fs.f_ffree))
    }
}

extension StringProtocol {
    var trimmingWhitespace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
