import CSwiftletTLS

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The kubelet API's serving certificate when none is configured: a self-signed pair under
/// `directory`, as the kubelet makes `<cert-dir>/kubelet.crt` and `kubelet.key` when neither
/// `tlsCertFile` nor `tlsPrivateKeyFile` is set and server TLS bootstrap is off
/// (cmd/kubelet/app/server.go `InitializeTLS`, through client-go's
/// `certutil.GenerateSelfSignedCertKey`).
///
/// What is made is what client-go makes (1.14, 1.20 and today's alike): not one certificate but a
/// pair of them in `kubelet.crt` — the serving certificate (CN `<host>@<unix time>`, CA:FALSE,
/// serverAuth, the SANs) followed by the self-signed CA that signed it (CN
/// `<host>-ca@<unix time>`, CA:TRUE), so the file is both the chain to serve and the bundle a
/// client may trust. `<host>` is the first hostname (else the first IP address). Both are valid
/// from an hour ago (clock skew) for 365 days, signed with SHA-256.
///
/// Keys are 2048-bit RSA, as client-go's: any client that could talk to a kubelet can verify
/// them, and the key file is what the kubelet writes (PKCS #1, `RSA PRIVATE KEY`). P-256 would
/// generate faster, but generation happens once per node. Serials are random (client-go's are
/// 1 and 2; the CA's name makes them unique there, but not within one second).
///
/// Unlike the kubelet, which reuses whatever is readable and fails later on a broken pair, an
/// existing pair is reused only when it loads as the server will load it (the chain, the key,
/// the key matching the certificate); a missing, corrupt, half or mismatched pair is replaced.
/// A pair that loads is never replaced, expired or naming another host included (as the
/// kubelet: the API server does not verify the kubelet's certificate unless given
/// `--kubelet-certificate-authority`).
public enum ServingCertificate {
    /// The certificate file's name in the directory (the kubelet's).
    public static let certificateFileName = "kubelet.crt"
    /// The key file's name in the directory (the kubelet's).
    public static let keyFileName = "kubelet.key"

    /// Returns (certificateFile, keyFile): `<directory>/kubelet.crt` and `kubelet.key`, reused
    /// when both exist and load; else made, SANs from `hostnames` (DNS names; an IP literal there
    /// becomes an IP SAN, as client-go treats its host) and `ipAddresses` (IPv4/IPv6 literals).
    ///
    /// The directory is created (mode 0700; missing parents 0755) when missing and locked
    /// (`flock`) while checking and writing, so concurrent callers make one pair. The key is
    /// written with mode 0600, the certificate 0644 (the kubelet's modes). Both are written to
    /// temporary files, synced and renamed into place, key first: a crash leaves the old pair,
    /// or a new key beside the old certificate, which does not load and is replaced next time.
    public static func ensureSelfSigned(directory: String, hostnames: [String], ipAddresses: [String])
        throws(KubeletServerError) -> (certificateFile: String, keyFile: String)
    {
        let names = unique(hostnames)
        let ips = unique(ipAddresses)
        guard !directory.isEmpty else { throw KubeletServerError(.certificate, context: "no directory") }
        guard let host = names.first ?? ips.first else {
            throw KubeletServerError(.certificate, context: "\(directory): no hostname or IP address to certify")
        }
        for name in names + ips where name.isEmpty || name.utf8.count > 253 || name.utf8.contains(0) {
            throw KubeletServerError(.certificate, context: "not a hostname or IP address: \(name.debugDescription)")
        }
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        let files = (certificateFile: base + certificateFileName, keyFile: base + keyFileName)

        try makeDirectory(directory)
        let lock = OwnedFD(open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC))
        guard lock.raw >= 0 else { throw KubeletServerError(.certificate, context: directory, errno: errno) }
        defer { lock.close() }
        while flock(lock.raw, LOCK_EX) != 0 {
            guard errno == EINTR else { throw KubeletServerError(.certificate, context: "locking \(directory)", errno: errno) }
        }

        if loads(files) { return files }
        try write(in: lock.raw, directory: directory, host: host, names: names, ips: ips)
        // What the server does next: a pair just made that does not load is an error here.
        do {
            _ = try TLSContext(certificateFile: files.certificateFile, keyFile: files.keyFile, clientCAFile: nil)
        } catch {
            throw KubeletServerError(.certificate, context: "loading \(files.certificateFile)", detail: error.detail)
        }
        return files
    }

    /// Whether the pair loads as ``KubeletAPIServer`` loads it.
    private static func loads(_ files: (certificateFile: String, keyFile: String)) -> Bool {
        (try? TLSContext(certificateFile: files.certificateFile, keyFile: files.keyFile, clientCAFile: nil)) != nil
    }

    /// Makes a new pair in the (locked) directory: temporary files, synced, renamed key first.
    private static func write(in directoryFD: Int32, directory: String, host: String, names: [String], ips: [String])
        throws(KubeletServerError)
    {
        let keyTemporary = "." + keyFileName + ".tmp"
        let certificateTemporary = "." + certificateFileName + ".tmp"
        var pending = [keyTemporary, certificateTemporary]
        defer { for name in pending { unlinkat(directoryFD, name, 0) } }

        let key = try create(keyTemporary, in: directoryFD, directory: directory, mode: 0o600)
        let certificate = try create(certificateTemporary, in: directoryFD, directory: directory, mode: 0o644)
        var error = [CChar](repeating: 0, count: 512)
        let status = withCStrings(names) { namesPointer in
            withCStrings(ips) { ipsPointer in
                swt_selfsigned_write(
                    host, namesPointer, names.count, ipsPointer, ips.count, Int64(time(nil)), certificate.raw, key.raw, &error,
                    error.count)
            }
        }
        guard status == 0 else {
            throw KubeletServerError(.certificate, context: "generating a self-signed pair in \(directory)", detail: cText(error))
        }
        for (file, name) in [(key, keyTemporary), (certificate, certificateTemporary)] {
            guard fsync(file.raw) == 0 else { throw KubeletServerError(.certificate, context: "\(directory)/\(name)", errno: errno) }
            file.close()
        }
        for (temporary, final) in [(keyTemporary, keyFileName), (certificateTemporary, certificateFileName)] {
            guard renameat(directoryFD, temporary, directoryFD, final) == 0 else {
                throw KubeletServerError(.certificate, context: "renaming \(directory)/\(temporary)", errno: errno)
            }
            pending.removeFirst()
        }
        guard fsync(directoryFD) == 0 else { throw KubeletServerError(.certificate, context: directory, errno: errno) }
    }

    /// A new file (a stale one from a crash removed first), exactly `mode` whatever the umask.
    private static func create(_ name: String, in directoryFD: Int32, directory: String, mode: mode_t)
        throws(KubeletServerError) -> OwnedFD
    {
        unlinkat(directoryFD, name, 0)
        let file = OwnedFD(openat(directoryFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode))
        guard file.raw >= 0, fchmod(file.raw, mode) == 0 else {
            throw KubeletServerError(.certificate, context: "\(directory)/\(name)", errno: errno)
        }
        return file
    }

    /// `mkdir -p`: the directory itself 0700, parents it had to make 0755.
    private static func makeDirectory(_ path: String) throws(KubeletServerError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        let components = path.split(separator: "/")
        for (index, component) in components.enumerated() {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + component
            let mode: mode_t = index == components.count - 1 ? 0o700 : 0o755
            if mkdir(prefix, mode) == 0 {
                guard chmod(prefix, mode) == 0 else { throw KubeletServerError(.certificate, context: prefix, errno: errno) }
            } else if errno != EEXIST {
                throw KubeletServerError(.certificate, context: "creating \(prefix)", errno: errno)
            }
        }
    }

    private static func unique(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.filter { seen.insert($0).inserted }
    }

    /// `strings` as a C array of C strings for the call's duration (NULL when empty).
    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        let copies = strings.map { strdup($0) }
        defer { for copy in copies { free(copy) } }
        let pointers = copies.map { UnsafePointer($0) }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
