import Foundation

/// A node's client-certificate request through the CSR API, as client-go's
/// `util/certificate/csr` and the kubelet's bootstrap make it: the request is created (under a
/// name digested from the key, subject and usages, or `generateName: csr-`), then watched until
/// the signer issues it, a condition refuses it, or time runs out.
enum NodeCertificateSigning {
    /// The subject's organization: `system:nodes`.
    static let organization = "system:nodes"

    /// `system:node:<name>`.
    static func commonName(_ nodeName: String) -> String { "system:node:" + nodeName }

    /// A key's request for the node: the PEM request and the CSR name the kubelet would give it
    /// (`node-csr-<base64url(SHA-512/256(…))>`, see ``digestedName(publicKeyDER:commonName:organizations:usages:)``).
    static func makeRequest(keyPEM: [UInt8], nodeName: String) throws(ClientCertificateError) -> (requestPEM: [UInt8], digestedName: String) {
        let commonName = commonName(nodeName)
        let made = try CertificateCrypto.makeRequest(keyPEM: keyPEM, commonName: commonName, organizations: [organization])
        let name = digestedName(publicKeyDER: made.publicKeyDER, commonName: commonName, organizations: [organization],
                                usages: CertificateSigningRequest.kubeletClientUsages)
        return (made.requestPEM, name)
    }

    /// The kubelet's `digestedName`: SHA-512/256 over each of the public key (PKIX DER), the
    /// common name, the organizations and the usages, each base64url-encoded and followed by `|`;
    /// `node-csr-` and the digest in base64url. The same key asks under the same name, so a
    /// restarted node finds its pending (or issued) request again.
    static func digestedName(publicKeyDER: [UInt8], commonName: String, organizations: [String], usages: [String]) -> String {
        var stream: [UInt8] = []
        func write(_ bytes: [UInt8]) {
            stream += Array(CertificateCrypto.rawURLBase64(bytes).utf8)
            stream.append(UInt8(ascii: "|"))
        }
        write(publicKeyDER)
        write(Array(commonName.utf8))
        for organization in organizations { write(Array(organization.utf8)) }
        for usage in usages { write(Array(usage.utf8)) }
        return "node-csr-" + CertificateCrypto.rawURLBase64(CertificateCrypto.sha512_256(stream))
    }

    /// client-go's `csr.RequestCertificate`: creates the CSR (`name`, or `generateName: csr-` when
    /// nil) for the kubelet client signer and usages. When `name` is taken, the existing request
    /// is reused if it is ours (same subject and key, same signer, an issued certificate for our
    /// key); otherwise ``ClientCertificateError/Kind-swift.struct/incompatible``. Transient
    /// failures are retried. Returns the CSR's name and uid.
    static func request(client: KubeClient, requestPEM: [UInt8], keyPEM: [UInt8], name: String?)
        async throws(ClientCertificateError) -> (name: String, uid: String)
    {
        var metadata = ObjectMeta(name: name)
        if name == nil { metadata.generateName = "csr-" }
        let object = CertificateSigningRequest(
            metadata: metadata,
            spec: CertificateSigningRequestSpec(requestPEM: requestPEM, signerName: CertificateSigningRequest.kubeletClientSigner,
                                                usages: CertificateSigningRequest.kubeletClientUsages))
        let created: CertificateSigningRequest
        do {
            created = try await retryOnTransientErrors { () async throws(KubeAPIError) in
                try await client.create(CertificateSigningRequest.collectionPath, object, as: CertificateSigningRequest.self)
            }
        } catch let error where error.isAlreadyExists && name != nil {
            let name = name!
            let existing: CertificateSigningRequest
            do {
                existing = try await retryOnTransientErrors { () async throws(KubeAPIError) in
                    try await client.get(CertificateSigningRequest.path(name), as: CertificateSigningRequest.self)
                }
            } catch {
                throw ClientCertificateError.request("reading the existing certificate signing request", csrName: name, error)
            }
            try ensureCompatible(existing, requestPEM: requestPEM, keyPEM: keyPEM)
            guard let uid = existing.metadata.uid else {
                throw ClientCertificateError(.request, csrName: name, message: "the existing certificate signing request has no uid")
            }
            return (name, uid)
        } catch {
            throw ClientCertificateError.request("creating a certificate signing request", csrName: name, error)
        }
        guard let createdName = created.metadata.name, let uid = created.metadata.uid else {
            throw ClientCertificateError(.request, csrName: name, message: "the created certificate signing request has no name or uid")
        }
        return (createdName, uid)
    }

    /// client-go's `ensureCompatible`, for a CSR found under our digested name.
    private static func ensureCompatible(_ existing: CertificateSigningRequest, requestPEM: [UInt8], keyPEM: [UInt8])
        throws(ClientCertificateError)
    {
        let name = existing.metadata.name
        guard let existingPEM = existing.spec.requestPEM else {
            throw ClientCertificateError(.incompatible, csrName: name, message: "spec.request is not base64")
        }
        if let reason = CertificateCrypto.incompatibility(existing: existingPEM, ours: requestPEM, keyPEM: keyPEM) {
            throw ClientCertificateError(.incompatible, csrName: name, message: "retrieved csr is not compatible: \(reason)")
        }
        if let signer = existing.spec.signerName, !signer.isEmpty, signer != CertificateSigningRequest.kubeletClientSigner {
            throw ClientCertificateError(.incompatible, csrName: name,
                                         message: "retrieved csr is for signer \(signer), not \(CertificateSigningRequest.kubeletClientSigner)")
        }
        if let certificate = existing.issuedCertificatePEM,
           let reason = CertificateCrypto.keyMismatch(certificatePEM: certificate, keyPEM: keyPEM)
        {
            throw ClientCertificateError(.incompatible, csrName: name, message: "retrieved csr's certificate: \(reason)")
        }
    }

    /// client-go's `csr.WaitForCertificate`: lists the CSR by name, then watches it, until it is
    /// approved and its certificate issued (returned, PEM). A `Denied` or `Failed` condition, the
    /// CSR's deletion or a new uid under its name end the wait with an error, as does `timeout`
    /// (``ClientCertificateError/Kind-swift.struct/timeout``). Watches that end are resumed;
    /// transient failures are retried with backoff.
    static func waitForCertificate(client: KubeClient, name: String, uid: String, timeout: Duration,
                                   log: (@Sendable (String) -> Void)?) async throws(ClientCertificateError) -> [UInt8] {
        let outcome: Result<[UInt8], ClientCertificateError>
        do {
            outcome = try await withThrowingTaskGroup(of: Result<[UInt8], ClientCertificateError>?.self) { group in
                group.addTask {
                    do throws(ClientCertificateError) {
                        return .success(try await watchUntilIssued(client: client, name: name, uid: uid, log: log))
                    } catch {
                        return .failure(error)
                    }
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let result = first else {
                    return .failure(ClientCertificateError(.timeout, csrName: name, message: "waited \(timeout)"))
                }
                return result
            }
        } catch {
            throw ClientCertificateError(.cancelled, csrName: name, message: "cancelled while waiting for the certificate")
        }
        return try outcome.get()
    }

    private static func watchUntilIssued(client: KubeClient, name: String, uid: String,
                                         log: (@Sendable (String) -> Void)?) async throws(ClientCertificateError) -> [UInt8] {
        let selector = "metadata.name=\(name)"
        var reportedApproval = false
        var failures = 0
        while true {
            if Task.isCancelled { throw ClientCertificateError(.cancelled, csrName: name, message: "cancelled while waiting") }
            do {
                let list = try await client.list(CertificateSigningRequest.collectionPath, fieldSelector: selector)
                guard let item = list["items"]?.arrayValue?.first else {
                    throw ClientCertificateError(.deleted, csrName: name, message: "the certificate signing request was deleted")
                }
                if let certificate = try evaluate(try item.decode(as: CertificateSigningRequest.self), name: name, uid: uid,
                                                  reportedApproval: &reportedApproval, log: log) {
                    return certificate
                }
                let events = client.watch(CertificateSigningRequest.collectionPath, resourceVersion: list.resourceVersion,
                                          fieldSelector: selector, timeoutSeconds: 300)
                for try await event in events {
                    switch event.type {
                    case .added, .modified:
                        if let certificate = try evaluate(try event.decode(as: CertificateSigningRequest.self), name: name, uid: uid,
                                                          reportedApproval: &reportedApproval, log: log) {
                            return certificate
                        }
                    case .deleted:
                        throw ClientCertificateError(.deleted, csrName: name, message: "the certificate signing request was deleted")
                    default:
                        continue
                    }
                }
                failures = 0  // the server ended the watch: list and watch again
            } catch let error as ClientCertificateError {
                throw error
            } catch let error as KubeAPIError {
                if error.kind == .cancelled || Task.isCancelled {
                    throw ClientCertificateError(.cancelled, csrName: name, message: "cancelled while waiting")
                }
                if error.isGone { continue }
                guard error.isTransient else {
                    throw ClientCertificateError.request("watching the certificate signing request", csrName: name, error)
                }
                log?("waiting for CSR \(name): \(error); retrying")
                do {
                    try await Task.sleep(for: Backoff.transient.delay(afterAttempt: min(failures, 6)))
                } catch {
                    throw ClientCertificateError(.cancelled, csrName: name, message: "cancelled while waiting")
                }
                failures += 1
            } catch {
                throw ClientCertificateError(.cancelled, csrName: name, message: "cancelled while waiting")
            }
        }
    }

    /// The certificate when issued; nil to keep waiting; an error for a refused request.
    private static func evaluate(_ csr: CertificateSigningRequest, name: String, uid: String, reportedApproval: inout Bool,
                                 log: (@Sendable (String) -> Void)?) throws(ClientCertificateError) -> [UInt8]? {
        guard csr.metadata.uid == uid else {
            throw ClientCertificateError(.deleted, csrName: name, message: "the certificate signing request changed uids (deleted and made again)")
        }
        var approved = false
        for condition in csr.status?.conditions ?? [] {
            switch condition.type {
            case CertificateSigningRequestCondition.denied:
                throw ClientCertificateError(.denied, csrName: name, reason: condition.reason, message: condition.message ?? "")
            case CertificateSigningRequestCondition.failed:
                throw ClientCertificateError(.failed, csrName: name, reason: condition.reason, message: condition.message ?? "")
            case CertificateSigningRequestCondition.approved:
                approved = true
            default:
                continue
            }
        }
        guard approved else { return nil }
        if let certificate = csr.issuedCertificatePEM {
            log?("CSR \(name) is issued")
            return certificate
        }
        if !reportedApproval {
            reportedApproval = true
            log?("CSR \(name) is approved, waiting to be issued")
        }
        return nil
    }
}
