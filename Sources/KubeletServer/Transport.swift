import CSwiftletTLS
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A loaded server certificate, key and (optional) client CA: an OpenSSL `SSL_CTX`, which is
/// safe to share between threads once configured.
final class TLSContext: @unchecked Sendable {
    private let handle: OpaquePointer
    let verifiesClients: Bool

    init(certificateFile: String, keyFile: String, clientCAFile: String?) throws(KubeletServerError) {
        var error = [CChar](repeating: 0, count: 512)
        guard let handle = swt_ctx_new(certificateFile, keyFile, clientCAFile, &error, error.count) else {
            throw KubeletServerError(
                .tls, context: "\(certificateFile), \(keyFile)" + (clientCAFile.map { ", client CA \($0)" } ?? ""),
                detail: cText(error))
        }
        self.handle = handle
        self.verifiesClients = clientCAFile != nil
    }

    deinit { swt_ctx_free(handle) }

    enum AcceptOutcome {
        case session(TLSTransport)
        case timedOut
        case cancelled
        case failed(String)
    }

    /// Runs the server handshake on `socket` (non-blocking), giving up at `timeout` or when
    /// `cancel` becomes readable.
    func accept(socket: OwnedFD, cancel: Int32, timeout: Duration) -> AcceptOutcome {
        var error = [CChar](repeating: 0, count: 512)
        var session: OpaquePointer?
        let result = swt_accept(handle, socket.raw, cancel, timeout.pollMilliseconds, &session, &error, error.count)
        switch result {
        case Int32(SWT_OK):
            guard let session else { return .failed("no session") }
            return .session(TLSTransport(socket: socket, session: session))
        case Int32(SWT_TIMEOUT): return .timedOut
        case Int32(SWT_CANCELLED): return .cancelled
        default:
            swt_clear_sigpipe()
            return .failed(cText(error))
        }
    }
}

/// The outcome of one non-blocking read or write.
enum IOResult: Equatable {
    case transferred(Int)
    case endOfFile
    /// Poll for these events, then retry.
    case wouldBlock(Int16)
    case failed(String)
}

/// The client certificate a TLS connection presented.
struct PeerCertificate: Sendable, Equatable {
    /// Whether it chains to the client CAs.
    var verified: Bool
    /// OpenSSL's reason when not verified.
    var verifyError: String
    var commonNames: [String]
    var organizations: [String]
}

/// A byte stream over a non-blocking socket: plain TCP, or TLS over it.
protocol Transport: AnyObject {
    var fd: Int32 { get }
    func read(into buffer: UnsafeMutableRawBufferPointer) -> IOResult
    func write(_ bytes: UnsafeRawBufferPointer) -> IOResult
    /// Bytes readable without polling (TLS records already decrypted).
    var hasBufferedInput: Bool { get }
    /// The client certificate, for TLS connections that presented one.
    var peerCertificate: PeerCertificate? { get }
    /// Ends the sending direction (TLS close_notify; TCP FIN).
    func closeWrite()
    /// Closes the connection (idempotent).
    func close()
}

final class PlainTransport: Transport {
    private let socket: OwnedFD

    init(socket: OwnedFD) { self.socket = socket }

    var fd: Int32 { socket.raw }
    var hasBufferedInput: Bool { false }
    var peerCertificate: PeerCertificate? { nil }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> IOResult {
        while true {
            let n = Glibc.read(socket.raw, buffer.baseAddress, buffer.count)
            if n > 0 { return .transferred(n) }
            if n == 0 { return .endOfFile }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock(Int16(POLLIN))
            case ECONNRESET: return .endOfFile
            default: return .failed(errnoText(errno))
            }
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> IOResult {
        while true {
            let n = Glibc.send(socket.raw, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return .transferred(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock(Int16(POLLOUT))
            default: return .failed(errnoText(errno))
            }
        }
    }

    func closeWrite() {
        if socket.raw >= 0 { _ = shutdown(socket.raw, Int32(SHUT_WR)) }
    }

    func close() { socket.close() }
}

final class TLSTransport: Transport {
    private let socket: OwnedFD
    private var session: OpaquePointer?
    let peerCertificate: PeerCertificate?

    init(socket: OwnedFD, session: OpaquePointer) {
        self.socket = socket
        self.session = session
        ResourceCounters.tlsSessions.add(1, ordering: .relaxed)
        var verified: Int32 = 0
        var reason = [CChar](repeating: 0, count: 256)
        if swt_peer_certificate(session, &verified, &reason, reason.count) == 1 {
            peerCertificate = PeerCertificate(
                verified: verified == 1, verifyError: cText(reason),
                commonNames: Self.names(session, Int32(SWT_NAME_CN)), organizations: Self.names(session, Int32(SWT_NAME_O)))
        } else {
            peerCertificate = nil
        }
    }

    private static func names(_ session: OpaquePointer, _ kind: Int32) -> [String] {
        (0..<swt_peer_name_count(session, kind)).compactMap { index in
            var buffer = [CChar](repeating: 0, count: 1024)
            let length = swt_peer_name(session, kind, index, &buffer, buffer.count)
            guard length >= 0 else { return nil }
            if Int(length) >= buffer.count {
                buffer = [CChar](repeating: 0, count: Int(length) + 1)
                _ = swt_peer_name(session, kind, index, &buffer, buffer.count)
            }
            return cText(buffer)
        }
    }

    deinit { close() }

    var fd: Int32 { socket.raw }
    var hasBufferedInput: Bool { session.map { swt_pending($0) > 0 } ?? false }

    private func outcome(_ result: Int) -> IOResult {
        guard let session else { return .failed("connection closed") }
        switch result {
        case let n where n > 0: return .transferred(n)
        case Int(SWT_EOF): return .endOfFile
        case Int(SWT_WANT_READ): return .wouldBlock(Int16(POLLIN))
        case Int(SWT_WANT_WRITE): return .wouldBlock(Int16(POLLOUT))
        default:
            swt_clear_sigpipe()
            return .failed(String(cString: swt_conn_error(session)))
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> IOResult {
        guard let session else { return .failed("connection closed") }
        return outcome(swt_read(session, buffer.baseAddress, buffer.count))
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> IOResult {
        guard let session else { return .failed("connection closed") }
        return outcome(swt_write(session, bytes.baseAddress, bytes.count))
    }

    func closeWrite() {
        if let session {
            swt_close_notify(session)
            swt_clear_sigpipe()
        }
    }

    func close() {
        if let session {
            // As Go's tls.Conn.Close: a close_notify alert, then the socket closes.
            swt_close_notify(session)
            swt_clear_sigpipe()
            swt_conn_free(session)
            ResourceCounters.tlsSessions.subtract(1, ordering: .relaxed)
            self.session = nil
        }
        socket.close()
    }
}
