import Foundation

/// Client-certificate rotation, as client-go's `util/certificate` manager does it for the
/// kubelet (`RotateKubeletClientCertificate`, on by default since 1.19).
///
/// ``run()`` — a member of the node agent's task group — sleeps until the current certificate
/// (``ClientCertificateStore/current()``) is 70–90 % through its lifetime (jittered anew for each
/// certificate, so nodes that joined together do not rotate together; at once when there is no
/// usable certificate), then ``rotateNow()``: a new ECDSA P-256 key and a CSR
/// (`generateName: csr-`, `O=system:nodes, CN=system:node:<node>`, the kubelet client signer
/// and usages) made with the *current* credentials, watched until issued (at most
/// ``Options/waitTimeout``, client-go's 15 minutes), a new `kubelet-client-<timestamp>.pem`
/// written and `kubelet-client-current.pem` switched to it atomically. The approval is the
/// csrapproving controller's when `system:nodes` is bound to
/// `certificatesigningrequests/selfnodeclient` (kubeadm's `node-autoapprove-certificate-rotation`),
/// or an administrator's.
///
/// A failed rotation is retried after 2, 4, 8, 16 and 32 s (jittered), then every 32 s, as
/// client-go does; ``run()`` throws ``ClientCertificateError/Kind-swift.struct/expired`` once
/// the current certificate has expired and an attempt fails (the kubelet exits then, to
/// bootstrap again). Cancelling the task ends ``run()`` normally.
///
/// Clients pick the new certificate up by themselves: a ``KubeClient`` made from the kubeconfig
/// that ``CertificateBootstrap`` writes re-reads `kubelet-client-current.pem` when the symlink
/// changes. Requests already under way, watches included, finish on the connection they
/// have; every new request handshakes with the new certificate.
public final class ClientCertificateRotation: Sendable {
    /// Timing of rotations.
    public struct Options: Sendable {
        /// How long one CSR may wait to be approved and issued (client-go: 15 minutes).
        public var waitTimeout: Duration
        /// The retry delays after failed rotations, then ``retryInterval`` forever.
        public var retryBackoff: Backoff
        /// The interval between rotation attempts once ``retryBackoff`` is used up (client-go: 32 s).
        public var retryInterval: Duration
        /// Progress, in words.
        public var log: (@Sendable (String) -> Void)?

        public init(waitTimeout: Duration = .seconds(15 * 60),
                    retryBackoff: Backoff = Backoff(initial: .seconds(2), factor: 2, cap: .seconds(32), jitter: 0.1, attempts: 5),
                    retryInterval: Duration = .seconds(32), log: (@Sendable (String) -> Void)? = nil) {
            self.waitTimeout = waitTimeout
            self.retryBackoff = retryBackoff
            self.retryInterval = retryInterval
            self.log = log
        }
    }

    /// The client whose credentials ask for the new certificates.
    public let client: KubeClient
    /// Where the certificates are.
    public let store: ClientCertificateStore
    /// The node whose certificate this is.
    public let nodeName: String
    public let options: Options

    /// Rotation with a client of the caller's (normally one made from the kubeconfig that names
    /// `kubelet-client-current.pem`, so it follows the rotations).
    public init(client: KubeClient, certificateDirectory: String, nodeName: String, options: Options = Options()) {
        self.client = client
        store = ClientCertificateStore(directory: certificateDirectory)
        self.nodeName = nodeName
        self.options = options
    }

    /// Rotation with a client made from `kubeconfigPath` (the one ``CertificateBootstrap`` wrote).
    public convenience init(kubeconfigPath: String, certificateDirectory: String, nodeName: String, options: Options = Options())
        throws(ClientCertificateError)
    {
        let client: KubeClient
        do {
            client = try KubeClient(kubeconfigPath: kubeconfigPath)
        } catch {
            throw ClientCertificateError(.kubeconfig, path: kubeconfigPath, message: "\(error)", configError: error)
        }
        self.init(client: client, certificateDirectory: certificateDirectory, nodeName: nodeName, options: options)
    }

    /// client-go's rotation deadline: `notBefore + lifetime × (0.7 + 0.2 × jitter)`, `jitter`
    /// in 0…1 (random by default).
    public static func rotationDeadline(notBefore: Date, notAfter: Date, jitter: Double = Double.random(in: 0..<1)) -> Date {
        let lifetime = notAfter.timeIntervalSince(notBefore)
        return notBefore.addingTimeInterval(lifetime * (0.7 + 0.2 * min(max(jitter, 0), 1)))
    }

    /// When the current certificate is next due for rotation (jittered afresh on each call);
    /// now when there is no usable certificate.
    public func nextRotationDeadline(now: Date = Date()) -> Date {
        guard let current = store.current() else { return now }
        return Self.rotationDeadline(notBefore: current.notBefore, notAfter: current.notAfter)
    }

    /// Rotates for as long as the task runs (see ``ClientCertificateRotation``).
    public func run() async throws(ClientCertificateError) {
        while !Task.isCancelled {
            let deadline = nextRotationDeadline()
            let wait = deadline.timeIntervalSinceNow
            if wait > 0 {
                options.log?("client certificate rotation in \(Int(wait)) s (at \(deadline))")
                do {
                    try await Task.sleep(for: .milliseconds(Int64(min(wait, 365 * 86400) * 1000)))
                } catch {
                    return
                }
            }
            var attempt = 0
            while true {
                do {
                    try await rotateNow()
                    break
                } catch where error.kind == .cancelled || Task.isCancelled {
                    return
                } catch {
                    if let current = store.current(), current.notAfter < Date() {
                        throw ClientCertificateError(.expired, csrName: error.csrName, path: current.file,
                                                     message: "the client certificate expired at \(current.notAfter) and rotation failed: \(error)")
                    }
                    let delay = attempt < options.retryBackoff.attempts ? options.retryBackoff.delay(afterAttempt: attempt) : options.retryInterval
                    attempt += 1
                    options.log?("client certificate rotation failed (\(error)); retrying in \(delay)")
                    do {
                        try await Task.sleep(for: delay)
                    } catch {
                        return
                    }
                }
            }
        }
    }

    /// Rotates now: a new key and CSR with the current credentials, the issued certificate
    /// stored and `kubelet-client-current.pem` switched to it. Returns the new pair.
    @discardableResult
    public func rotateNow() async throws(ClientCertificateError) -> ClientCertificateStore.Pair {
        options.log?("rotating the client certificate of system:node:\(nodeName)")
        let keyPEM = try CertificateCrypto.generateKey()
        let made = try NodeCertificateSigning.makeRequest(keyPEM: keyPEM, nodeName: nodeName)
        let (name, uid) = try await NodeCertificateSigning.request(client: client, requestPEM: made.requestPEM, keyPEM: keyPEM, name: nil)
        options.log?("waiting for CSR \(name) to be approved and issued")
        let certificate = try await NodeCertificateSigning.waitForCertificate(client: client, name: name, uid: uid,
                                                                              timeout: options.waitTimeout, log: options.log)
        do {
            let pair = try store.update(certificatePEM: certificate, keyPEM: keyPEM)
            options.log?("rotated the client certificate: \(pair.file), valid until \(pair.notAfter)")
            return pair
        } catch {
            var error = error
            error.csrName = name
            throw error
        }
    }
}
