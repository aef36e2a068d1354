import CRI
import GRPCServer
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Serves a RuntimeService and an ImageService as the Kubernetes CRI on a unix socket,
/// under both `runtime.v1` and `runtime.v1alpha2`.
///
/// The socket is created mode 0660 (its directory 0711 if created); a stale socket left by a
/// crash is replaced, but one a live server still answers on is not; the socket is removed
/// when ``run()`` returns.
public final class CRIServer: Sendable {
    /// The largest message received or sent: 16 MiB, as the kubelet's CRI client allows.
    public static let maxMessageBytes = 16 << 20

    /// The socket path.
    public let socketPath: String
    private let grpc: GRPCServer
    private let logger: Logger

    /// Binds the socket.
    ///
    /// - Throws: ``CRIServerError`` if the socket's directory cannot be made, a live server
    ///   holds the socket, or the path is not a socket.
    public init(
        socketPath: String, runtime: some RuntimeService, images: some ImageService,
        shutdownGrace: Duration = .seconds(10), logger: Logger
    ) throws(CRIServerError) {
        try SocketFile.prepare(socketPath)
        let table = MethodTable(runtime: runtime, images: images)
        let log = logger
        do {
            grpc = try GRPCServer(address: "unix:\(socketPath)", maxMessageBytes: Self.maxMessageBytes,
                                  shutdownGrace: shutdownGrace) { call in
                await Self.handle(call, table: table, logger: log)
            }
        } catch {
            throw CRIServerError(.listen, path: socketPath, detail: error.description)
        }
        guard chmod(socketPath, 0o660) == 0 else {
            let code = errno
            grpc.shutdown()
            throw CRIServerError(.listen, path: socketPath, detail: "chmod 0660: \(String(cString: strerror(code)))", errno: code)
        }
        self.socketPath = socketPath
        self.logger = logger
    }

    /// Serves until ``shutdown()`` finishes; removes the socket on the way out.
    public func run() async throws {
        logger.info("serving CRI", metadata: ["address": "\(socketPath)", "apis": "runtime.v1, runtime.v1alpha2"])
        defer { unlink(socketPath) }
        try await grpc.run()
        logger.info("CRI server stopped", metadata: ["address": "\(socketPath)"])
    }

    /// Stops accepting calls; calls in flight finish within the grace period.
    public func shutdown() {
        grpc.shutdown()
    }

    private static func handle(_ call: ServerCall, table: MethodTable, logger: Logger) async {
        switch table.lookup(call.method) {
        case .unknownService(let service):
            call.finish(RPCStatus(.unimplemented, "unknown service \(service)"))
        case .unknownMethod(let name, let service):
            call.finish(RPCStatus(.unimplemented, "unknown method \(name) for service \(service)"))
        case .method(let method, let version):
            let context = CallContext(apiVersion: version, method: call.method, deadline: call.deadline)
            do {
                try await method.invoke(call, context)
                logger.trace("CRI call", metadata: ["method": "\(call.method)", "status": "OK"])
            } catch {
                let status = status(for: error, call: call)
                if status.code != .unimplemented && status.code != .notFound {
                    logger.debug("CRI call failed", metadata: ["method": "\(call.method)", "status": "\(status)"])
                }
                call.finish(status)
            }
        }
    }

    private static func status(for error: any Error, call: ServerCall) -> RPCStatus {
        switch error {
        case let error as RPCStatus:
            return error
        case let error as CRIError:
            return RPCStatus(RPCStatus.Code(rawValue: error.code.rawValue), error.message)
        case is CancellationError:
            if let deadline = call.deadline, deadline <= .now {
                return RPCStatus(.deadlineExceeded, "context deadline exceeded")
            }
            return RPCStatus(.cancelled, "context canceled")
        default:
            return RPCStatus(.unknown, String(describing: error))
        }
    }

    /// Every method path served, sorted (for diagnostics and tests).
    public static func methodPaths(runtime: some RuntimeService, images: some ImageService) -> [String] {
        MethodTable(runtime: runtime, images: images).paths
    }
}

/// Why the CRI server could not start.
public struct CRIServerError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The socket's directory could not be created.
        case directory
        /// Another server answers on the socket.
        case inUse
        /// The path exists and is not a socket.
        case notASocket
        /// The socket could not be bound or set up.
        case listen
    }

    public var kind: Kind
    public var path: String
    public var detail: String
    public var errno: Int32?

    public init(_ kind: Kind, path: String, detail: String = "", errno: Int32? = nil) {
        self.kind = kind
        self.path = path
        self.detail = detail
        self.errno = errno
    }

    public var description: String {
        let suffix = detail.isEmpty ? "" : ": \(detail)"
        switch kind {
        case .directory: return "cannot create the directory of CRI socket \(path)\(suffix)"
        case .inUse: return "CRI socket \(path) is in use by a running server\(suffix)"
        case .notASocket: return "\(path) exists and is not a socket; refusing to replace it"
        case .listen: return "cannot listen on CRI socket \(path)\(suffix)"
        }
    }
}

/// The socket file's life: its directory, and a stale socket from a crash.
enum SocketFile {
    static func prepare(_ path: String) throws(CRIServerError) {
        try makeParent(of: path)
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw CRIServerError(.notASocket, path: path)
        }
        if isServed(path) {
            throw CRIServerError(.inUse, path: path)
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            let code = errno
            throw CRIServerError(.listen, path: path, detail: "removing stale socket: \(String(cString: strerror(code)))", errno: code)
        }
    }

    /// Whether something accepts connections on the socket.
    static func isServed(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }

    private static func makeParent(of path: String) throws(CRIServerError) {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        let parent = String(path[..<slash])
        var components: [String] = []
        var current = ""
        for part in parent.split(separator: "/") {
            current += "/\(part)"
            components.append(current)
        }
        for directory in components {
            if mkdir(directory, 0o711) != 0 && errno != EEXIST {
                let code = errno
                throw CRIServerError(.directory, path: path, detail: "mkdir \(directory): \(String(cString: strerror(code)))", errno: code)
            }
        }
    }
}
