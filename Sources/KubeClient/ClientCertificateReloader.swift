import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Re-reads a client certificate and key from their files when the files change, so a
/// ``KubeClient`` made from a kubeconfig that names files (`client-certificate`, `client-key`:
/// the kubelet's `kubelet-client-current.pem`) presents the rotated certificate from its next
/// request on, without being made again — what client-go does with its `dynamicClientCert`
/// (which polls every 5 minutes; here the files are `stat`ed before each request, which costs
/// two system calls next to a TLS handshake, and the new pair is used at once).
///
/// A change is noticed by the file's identity (device, inode), size and modification time,
/// following symlinks: switching `-current.pem` to a new file is a change. A changed pair is
/// used only when it is PEM, a certificate and a key, and the certificate is for the key; until
/// then (a half-written pair, a missing file) the last good pair stays in use, and the files are
/// read again only when they change again.
final class ClientCertificateReloader: Sendable {
    /// What identifies a file's contents for change detection.
    struct Stamp: Hashable, Sendable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modifiedSeconds: Int
        var modifiedNanoseconds: Int

        init?(path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modifiedSeconds = Int(info.st_mtim.tv_sec)
            modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
        }
    }

    private struct State: Sendable {
        var certificatePEM: [UInt8]?
        var keyPEM: [UInt8]?
        /// The stamps the pair in use (or the last rejected read) was taken at.
        var certificateStamp: Stamp?
        var keyStamp: Stamp?
    }

    let certificateFile: String?
    let keyFile: String?
    private let state: Mutex<State>

    /// Starts from the material already read (the configuration's), stamped now.
    init(certificateFile: String?, keyFile: String?, certificatePEM: [UInt8]?, keyPEM: [UInt8]?) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        state = Mutex(State(certificatePEM: certificatePEM, keyPEM: keyPEM, certificateStamp: certificateFile.flatMap(Stamp.init(path:)),
                            keyStamp: keyFile.flatMap(Stamp.init(path:))))
    }

    /// The certificate and key to present now, re-read first if their files changed.
    func current() -> (certificatePEM: [UInt8]?, keyPEM: [UInt8]?) {
        let certificateStamp = certificateFile.flatMap(Stamp.init(path:))
        let keyStamp = keyFile.flatMap(Stamp.init(path:))
        return state.withLock { state in
            if certificateStamp == state.certificateStamp && keyStamp == state.keyStamp { return (state.certificatePEM, state.keyPEM) }
            state.certificateStamp = certificateStamp
            state.keyStamp = keyStamp
            guard certificateStamp != nil || keyStamp != nil else { return (state.certificatePEM, state.keyPEM) }
            let certificate = certificateFile.map { FileManager.default.contents(atPath: $0).map(Array.init) } ?? state.certificatePEM
            let key = keyFile.map { FileManager.default.contents(atPath: $0).map(Array.init) } ?? state.keyPEM
            if let certificate, let key, PEM.checkCertificates(certificate) == nil, PEM.checkPrivateKey(key) == nil,
               let keyOnly = CertificateCrypto.loadKey(key), CertificateCrypto.keyMismatch(certificatePEM: certificate, keyPEM: keyOnly) == nil
            {
                state.certificatePEM = certificate
                state.keyPEM = key
            }
            return (state.certificatePEM, state.keyPEM)
        }
    }
}
