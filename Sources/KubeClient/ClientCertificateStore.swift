import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The kubelet's client certificate files, as client-go's `certificate.NewFileStore("kubelet-client",
/// certDir, certDir, "", "")` keeps them: each pair in `<directory>/kubelet-client-<timestamp>.pem`
/// (the certificate chain, then the private key, in one PEM file, mode 0600; the timestamp
/// `2006-01-02-15-04-05` in local time) and the symlink `kubelet-client-current.pem` pointing at
/// the one in use. A kubeconfig names the symlink for both `client-certificate` and `client-key`.
///
/// Files are written to a temporary name, synced and renamed; the symlink is switched by making
/// `kubelet-client-updated.pem` and renaming it over `-current` (atomic: readers see the old pair
/// or the new one). Old pairs are left in place, as the kubelet leaves them.
public struct ClientCertificateStore: Sendable, Hashable {
    /// The directory (the kubelet's `--cert-dir`, `/var/lib/kubelet/pki`).
    public var directory: String
    /// The files' prefix (`kubelet-client`).
    public var prefix: String

    /// A store in `directory`.
    public init(directory: String, prefix: String = "kubelet-client") {
        self.directory = directory
        self.prefix = prefix
    }

    /// `<directory>/<prefix>-current.pem`: the symlink to the pair in use.
    public var currentPath: String { path("current") }

    /// The pair in use.
    public struct Pair: Sendable, Hashable {
        /// The file the symlink points at (`…/kubelet-client-2024-05-01-12-00-00.pem`).
        public var file: String
        /// The certificate chain (PEM), leaf first.
        public var certificatePEM: [UInt8]
        /// The private key (PEM).
        public var keyPEM: [UInt8]
        /// The leaf certificate's validity.
        public var notBefore: Date
        public var notAfter: Date
        /// The earliest expiry in the chain (the kubelet's test of a usable kubeconfig).
        public var earliestNotAfter: Date
    }

    /// The pair the symlink points at, when it is there and usable (certificates, a key, the leaf
    /// for that key); nil otherwise, or with the reason through ``currentOrError()``.
    public func current() -> Pair? { try? currentOrError() }

    /// The pair in use, or why there is none.
    public func currentOrError() throws(ClientCertificateError) -> Pair {
        let link = currentPath
        guard let data = FileManager.default.contents(atPath: link) else {
            throw ClientCertificateError(.certificate, path: link, message: "cannot read: \(String(cString: strerror(errno)))")
        }
        let bytes = Array(data)
        let file = (try? FileManager.default.destinationOfSymbolicLink(atPath: link))
            .map { KubeConfig.absolutePath($0, relativeTo: directory) } ?? link
        return try Self.pair(file: file, pem: bytes)
    }

    /// Checks a PEM file's contents as a pair: certificates, a private key, the leaf for the key.
    static func pair(file: String, pem: [UInt8]) throws(ClientCertificateError) -> Pair {
        let validity: [CertificateCrypto.Validity]
        switch CertificateCrypto.validity(pem) {
        case .success(let parsed): validity = parsed
        case .failure(var error):
            error.path = file
            throw error
        }
        guard let key = CertificateCrypto.loadKey(pem) else {
            throw ClientCertificateError(.certificate, path: file, message: "no usable private key")
        }
        if let reason = CertificateCrypto.keyMismatch(certificatePEM: pem, keyPEM: key) {
            throw ClientCertificateError(.certificate, path: file, message: reason)
        }
        return Pair(file: file, certificatePEM: certificateBlocks(pem), keyPEM: key, notBefore: validity[0].notBefore,
                    notAfter: validity[0].notAfter, earliestNotAfter: validity.map(\.notAfter).min()!)
    }

    /// Writes a new pair and points the symlink at it, after checking that the certificates parse
    /// and the leaf is for the key. Returns the pair as stored.
    @discardableResult
    public func update(certificatePEM: [UInt8], keyPEM: [UInt8], now: Date = Date()) throws(ClientCertificateError) -> Pair {
        let certificates = Self.certificateBlocks(certificatePEM)
        guard !certificates.isEmpty else {
            throw ClientCertificateError(.certificate, message: "the issued certificate holds no PEM CERTIFICATE block")
        }
        var contents = certificates
        contents += keyPEM
        if contents.last != UInt8(ascii: "\n") { contents.append(UInt8(ascii: "\n")) }
        let file = path(Self.timestamp(now))
        let pair = try Self.pair(file: file, pem: contents)

        try Self.makeDirectory(directory, mode: 0o755)
        let link = currentPath
        var info = stat()
        if lstat(link, &info) == 0, info.st_mode & S_IFMT != S_IFLNK {
            throw ClientCertificateError(.storage, path: link, message: "expected a symlink, found another kind of file")
        }
        try Self.writeAtomically(contents, to: file, mode: 0o600)
        let updated = path("updated")
        if lstat(updated, &info) == 0 { unlink(updated) }
        guard symlink(file, updated) == 0 else {
            throw ClientCertificateError(.storage, path: updated, message: "symlink: \(String(cString: strerror(errno)))")
        }
        guard rename(updated, link) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(updated)
            throw ClientCertificateError(.storage, path: link, message: "rename: \(reason)")
        }
        Self.syncDirectory(directory)
        return pair
    }

    /// `<directory>/<prefix>-<suffix>.pem`.
    func path(_ suffix: String) -> String {
        (directory as NSString).appendingPathComponent("\(prefix)-\(suffix).pem")
    }

    /// Go's `2006-01-02-15-04-05` in local time.
    static func timestamp(_ date: Date) -> String {
        var time = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        localtime_r(&time, &parts)
        return String(format: "%04d-%02d-%02d-%02d-%02d-%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// The CERTIFICATE blocks of a PEM text, each line as written, blocks of other kinds dropped.
    static func certificateBlocks(_ pem: [UInt8]) -> [UInt8] {
        let text = String(decoding: pem, as: UTF8.self)
        var out = ""
        var inside = false
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line == "-----BEGIN CERTIFICATE-----" { inside = true }
            if inside { out += line + "\n" }
            if line == "-----END CERTIFICATE-----" { inside = false }
        }
        return Array(out.utf8)
    }

    // MARK: Files

    /// Writes `bytes` to a temporary file beside `path` (mode exactly `mode`), syncs it and
    /// renames it over `path`, then syncs the directory.
    static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t) throws(ClientCertificateError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = (directory as NSString).appendingPathComponent(".\((path as NSString).lastPathComponent).tmp-\(getpid())")
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ClientCertificateError(.storage, path: temporary, message: "create: \(String(cString: strerror(errno)))") }
        var failure: String?
        if fchmod(fd, mode) != 0 { failure = "chmod: \(String(cString: strerror(errno)))" }
        var offset = 0
        while failure == nil, offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                failure = "write: \(String(cString: strerror(errno)))"
            } else {
                offset += written
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = "fsync: \(String(cString: strerror(errno)))" }
        close(fd)
        if failure == nil, rename(temporary, path) != 0 { failure = "rename: \(String(cString: strerror(errno)))" }
        if let failure {
            unlink(temporary)
            throw ClientCertificateError(.storage, path: path, message: failure)
        }
        syncDirectory(directory)
    }

    static func syncDirectory(_ directory: String) {
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// `mkdir -p` (new directories get `mode`).
    static func makeDirectory(_ path: String, mode: mode_t) throws(ClientCertificateError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + component
            if mkdir(prefix, mode) != 0, errno != EEXIST {
                throw ClientCertificateError(.storage, path: prefix, message: "mkdir: \(String(cString: strerror(errno)))")
            }
        }
    }
}
