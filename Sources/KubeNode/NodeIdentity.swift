import Foundation
import KubeClient

#if canImport(Glibc)
import Glibc
#endif

/// Who this node is: its name, its addresses and what `nodeInfo` reports (read once at start;
/// the kubelet's `nodestatus.MachineInfo`/`NodeAddress` setters).
public struct NodeIdentity: Sendable, Hashable {
    /// The Node's name: `--hostname-override`, else the hostname, lowercased as the kubelet does.
    public var name: String
    /// The hostname reported as the `Hostname` address.
    public var hostname: String
    /// The InternalIP.
    public var internalIP: String
    /// `nodeInfo` as reported.
    public var systemInfo: NodeSystemInfo

    public init(name: String, hostname: String, internalIP: String, systemInfo: NodeSystemInfo) {
        self.name = name
        self.hostname = hostname
        self.internalIP = internalIP
        self.systemInfo = systemInfo
    }

    /// The kubelet version this agent reports (`kubeletVersion`): the API level it implements.
    public static let kubeletVersion = "v1.20.2-swiftlet"

    /// Reads the machine: `/etc/machine-id`, `/sys/class/dmi/id/product_uuid`,
    /// `/proc/sys/kernel/random/boot_id`, `uname`, `/etc/os-release`; picks the InternalIP from
    /// `nodeIP` or the default route's interface.
    public static func detect(hostnameOverride: String?, nodeIP: String?, runtimeVersion: String,
                              root: String = "") throws(NodeError) -> NodeIdentity {
        var names = utsname()
        uname(&names)
        let hostname = withUnsafeBytes(of: names.nodename) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let kernel = withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let machine = withUnsafeBytes(of: names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let name = (hostnameOverride?.isEmpty == false ? hostnameOverride! : hostname).lowercased()
        guard isDNSSubdomain(name) else {
            throw NodeError(.invalidConfiguration, detail: "node name \"\(name)\" is not a DNS-1123 subdomain (use --hostname-override)")
        }
        let address: String
        if let nodeIP, !nodeIP.isEmpty {
            guard isIPAddress(nodeIP) else { throw NodeError(.invalidConfiguration, detail: "--node-ip \"\(nodeIP)\" is not an IP address") }
            address = nodeIP
        } else {
            // The default route's interface, else any non-loopback address, else loopback (a
            // machine without a network still runs static pods).
            address = defaultRouteAddress(procRoot: root + "/proc") ?? firstAddress(loopback: false) ?? "127.0.0.1"
        }
        let info = NodeSystemInfo(
            machineID: readTrimmed(root + "/etc/machine-id") ?? "",
            systemUUID: (readTrimmed(root + "/sys/class/dmi/id/product_uuid") ?? "").lowercased(),
            bootID: readTrimmed(root + "/proc/sys/kernel/random/boot_id") ?? "",
            kernelVersion: kernel,
            osImage: osImage(root + "/etc/os-release"),
            containerRuntimeVersion: "swiftlet://\(runtimeVersion)",
            kubeletVersion: kubeletVersion,
            architecture: goArchitecture(machine))
        // The kubelet's hostname is the override when one is given (lowercased): the Hostname
        // address and the kubernetes.io/hostname label say it.
        let reported = (hostnameOverride?.isEmpty == false ? hostnameOverride! : hostname).lowercased()
        return NodeIdentity(name: name, hostname: reported, internalIP: address, systemInfo: info)
    }

    /// The addresses the Node reports: InternalIP and Hostname.
    public var addresses: [NodeAddress] {
        [NodeAddress(type: "InternalIP", address: internalIP), NodeAddress(type: "Hostname", address: hostname)]
    }

    /// Go's GOARCH for a `uname -m`.
    static func goArchitecture(_ machine: String) -> String {
        switch machine {
        case "x86_64": "amd64"
        case "aarch64": "arm64"
        case "armv7l", "armv6l": "arm"
        case "ppc64le": "ppc64le"
        case "s390x": "s390x"
        case "i386", "i486", "i586", "i686": "386"
        default: machine
        }
    }

    static func osImage(_ path: String) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "Linux" }
        for line in text.split(separator: "\n") where line.hasPrefix("PRETTY_NAME=") {
            return String(line.dropFirst("PRETTY_NAME=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        }
        return "Linux"
    }

    static func readTrimmed(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The IPv4 address of the interface carrying the default route (`/proc/net/route`).
    static func defaultRouteAddress(procRoot: String) -> String? {
        guard let routes = try? String(contentsOfFile: procRoot + "/net/route", encoding: .utf8) else { return nil }
        var interface: String?
        for line in routes.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            if fields.count > 2, fields[1] == "00000000" { interface = String(fields[0]); break }
        }
        guard let interface else { return nil }
        return ipv4Interfaces().first { $0.name == interface }?.address
    }

    /// The first IPv4 address of an interface that is up (loopback or not).
    static func firstAddress(loopback: Bool) -> String? {
        ipv4Interfaces().first { $0.isUp && $0.isLoopback == loopback }?.address
    }

    /// Every IPv4 address of the machine's interfaces (getifaddrs), in the kernel's order.
    static func ipv4Interfaces() -> [(name: String, address: String, isUp: Bool, isLoopback: Bool)] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var result: [(name: String, address: String, isUp: Bool, isLoopback: Bool)] = []
        var cursor = list
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            var inet = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            inet_ntop(AF_INET, &inet, &text, socklen_t(text.count))
            let flags = Int32(entry.pointee.ifa_flags)
            result.append((String(cString: entry.pointee.ifa_name), String(cString: text), flags & Int32(IFF_UP) != 0,
                           flags & Int32(IFF_LOOPBACK) != 0))
        }
        return result
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// RFC 1123 subdomain as the API's `IsDNS1123Subdomain`: at most 253 characters of lowercase
    /// alphanumerics, '-' and '.', each part starting and ending alphanumeric.
    static func isDNSSubdomain(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard let first = label.first, let last = label.last else { return false }
            let alphanumeric = { (c: Character) in c.isASCII && (c.isLowercase || c.isNumber) }
            return alphanumeric(first) && alphanumeric(last) && label.allSatisfy { alphanumeric($0) || $0 == "-" }
        }
    }
}
