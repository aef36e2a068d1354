import GRPCServer
import Synchronization
import Testing

@testable import GRPCHealthCheck

#if canImport(Glibc)
import Glibc
#endif

/// A real gRPC server (the repo's own, on the C core) on 127.0.0.1 at a free port, for the
/// length of `body`.
///
/// The port stays reserved while the server lives: the gRPC core binds with SO_REUSEPORT, so
/// a port merely found free (bound, then closed) could be bound by another test's server as
/// well, and the kernel would then spread the connections between the two. A socket of ours
/// with SO_REUSEPORT holds it (bound, never listening) until the server is gone: random binds
/// of other tests pass it by, and only this server listens on it.
func withServer<R>(
    _ handler: @escaping GRPCServer.Handler, _ body: (Int) async throws -> R
) async throws -> R {
    var lastError: (any Error)?
    for _ in 0..<20 {
        let reservation = try ReservedPort(shareable: true)
        let port = reservation.port
        let server: GRPCServer
        do {
            server = try GRPCServer(address: "127.0.0.1:\(port)", shutdownGrace: .milliseconds(200), handler: handler)
        } catch {
            lastError = error  // not bindable after all: try another
            continue
        }
        let running = Task { try await server.run() }
        do {
            let result = try await body(port)
            server.shutdown()
            try await running.value
            withExtendedLifetime(reservation) {}
            return result
        } catch {
            server.shutdown()
            try? await running.value
            withExtendedLifetime(reservation) {}
            throw error
        }
    }
    throw lastError!
}

/// A loopback port held by a socket bound to it and never listening, for as long as this
/// value lives: a connection to it is refused, and no other test's random bind takes it
/// (`shareable`: SO_REUSEPORT, so that a gRPC server of this process may bind it too).
final class ReservedPort {
    let port: Int
    private let fd: Int32

    init(shareable: Bool = false) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(operation: "socket", errno: errno) }
        if shareable {
            var one: Int32 = 1
            guard setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                let code = errno
                close(fd)
                throw SocketError(operation: "setsockopt(SO_REUSEPORT)", errno: code)
            }
        }
        do {
            try bindLoopback(fd)
            port = try localPort(fd)
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }
}

/// Serves `grpc.health.v1.Health/Check` as grpc-go's and grpcio's health servers do: a status
/// per known service, `NOT_FOUND` ("unknown service") for any other; other methods are
/// `UNIMPLEMENTED`. Records the service names asked for.
func healthHandler(_ statuses: [String: Int32], asked: Asked? = nil) -> GRPCServer.Handler {
    { call in
        guard call.method == HealthMessages.checkMethod else {
            call.finish(RPCStatus(.unimplemented, "unknown method \(call.method)"))
            return
        }
        let service: String
        do {
            service = try call.withRequest { bytes throws(HealthMessages.Malformed) in try HealthMessages.decodeRequest(bytes) }
        } catch {
            call.finish(RPCStatus(.invalidArgument, "\(error)"))
            return
        }
        asked?.names.withLock { $0.append(service) }
        if let status = statuses[service] {
            call.finish(.ok, message: HealthMessages.encodeResponse(status: status))
        } else {
            call.finish(RPCStatus(.notFound, "unknown service"))
        }
    }
}

/// The service names a health handler was asked for.
final class Asked: Sendable {
    let names = Mutex<[String]>([])
}

/// A handler that never answers: it waits until the call is cancelled (the client's deadline
/// or cancellation), then gives up.
let silentHandler: GRPCServer.Handler = { call in
    try? await Task.sleep(for: .seconds(60))
    call.finish(RPCStatus(.unavailable, "gave up"))
}

/// A TCP listener on 127.0.0.1 that never accepts: the kernel completes the TCP handshake,
/// nothing ever speaks HTTP/2. Closed after `body`.
func withMuteListener<R>(_ body: (Int) async throws -> R) async throws -> R {
    let fd = try boundSocket()
    defer { close(fd) }
    guard listen(fd, 16) == 0 else { throw SocketError(operation: "listen", errno: errno) }
    return try await body(try localPort(fd))
}

struct SocketError: Error {
    var operation: String
    var errno: Int32
}

private func boundSocket() throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SocketError(operation: "socket", errno: errno) }
    do {
        try bindLoopback(fd)
    } catch {
        close(fd)
        throw error
    }
    return fd
}

/// Binds `fd` to 127.0.0.1 on a port the kernel picks.
private func bindLoopback(_ fd: Int32) throws {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
    address.sin_port = 0
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard result == 0 else { throw SocketError(operation: "bind", errno: errno) }
}

private func localPort(_ fd: Int32) throws -> Int {
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let result = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard result == 0 else { throw SocketError(operation: "getsockname", errno: errno) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Runs `body`, returning its error (nil if it succeeded) and how long it took.
func timed<T>(
    _ body: () async throws(GRPCHealthCheckError) -> T
) async -> (result: Result<T, GRPCHealthCheckError>, elapsed: Duration) {
    let clock = ContinuousClock()
    let start = clock.now
    do {
        let value = try await body()
        return (.success(value), clock.now - start)
    } catch {
        return (.failure(error), clock.now - start)
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
