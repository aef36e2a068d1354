import CSwiftletTLS
import Foundation

/// The OpenSSL calls behind client-certificate bootstrap and rotation (CSwiftletTLS's
/// `swt_csr_*`), with Swift bytes in and out: every C buffer is copied and freed (wiped) here.
enum CertificateCrypto {
    /// A certificate's validity, in Unix seconds.
    struct Validity: Sendable, Hashable {
        var notBefore: Date
        var notAfter: Date
    }

    /// A new ECDSA P-256 key, SEC 1 PEM (`EC PRIVATE KEY`), as the kubelet's.
    static func generateKey() throws(ClientCertificateError) -> [UInt8] {
        var error = [CChar](repeating: 0, count: 256)
        var pem: UnsafeMutablePointer<UInt8>?
        var length = 0
        guard swt_csr_generate_key(&pem, &length, &error, error.count) == 0 else {
            throw ClientCertificateError(.key, message: "generating a P-256 key: \(text(error))")
        }
        return take(pem, length)
    }

    /// The first private key in `pem` (other blocks skipped), re-encoded as traditional PEM; nil
    /// when there is no usable key (client-go's `verifyKeyData`).
    static func loadKey(_ pem: [UInt8]) -> [UInt8]? {
        var error = [CChar](repeating: 0, count: 256)
        var out: UnsafeMutablePointer<UInt8>?
        var length = 0
        let status = pem.withUnsafeBufferPointer { swt_csr_load_key($0.baseAddress, $0.count, &out, &length, &error, error.count) }
        return status == 0 ? take(out, length) : nil
    }

    /// A PKCS #10 request for `O=<organizations>, CN=<commonName>` signed with the key, and the
    /// key's SubjectPublicKeyInfo (DER).
    static func makeRequest(keyPEM: [UInt8], commonName: String, organizations: [String])
        throws(ClientCertificateError) -> (requestPEM: [UInt8], publicKeyDER: [UInt8])
    {
        var error = [CChar](repeating: 0, count: 256)
        var request: UnsafeMutablePointer<UInt8>?
        var requestLength = 0
        var publicKey: UnsafeMutablePointer<UInt8>?
        var publicKeyLength = 0
        let copies = organizations.map { strdup($0) }
        defer { for copy in copies { free(copy) } }
        let pointers = copies.map { UnsafePointer($0) }
        let status = keyPEM.withUnsafeBufferPointer { key in
            pointers.withUnsafeBufferPointer { names in
                swt_csr_create(key.baseAddress, key.count, commonName, names.baseAddress, names.count, &request, &requestLength,
                               &publicKey, &publicKeyLength, &error, error.count)
            }
        }
        guard status == 0 else {
            throw ClientCertificateError(.key, message: "making a certificate request for \(commonName): \(text(error))")
        }
        return (take(request, requestLength), take(publicKey, publicKeyLength))
    }

    /// client-go's `ensureCompatible`: nil when `existing` may stand for `ours` (same subject,
    /// our key, a valid signature); the reason otherwise.
    static func incompatibility(existing: [UInt8], ours: [UInt8], keyPEM: [UInt8]) -> String? {
        var error = [CChar](repeating: 0, count: 256)
        let status = existing.withUnsafeBufferPointer { existing in
            ours.withUnsafeBufferPointer { ours in
                keyPEM.withUnsafeBufferPointer { key in
                    swt_csr_compatible(existing.baseAddress, existing.count, ours.baseAddress, ours.count, key.baseAddress, key.count,
                                       &error, error.count)
                }
            }
        }
        return status == 1 ? nil : text(error)
    }

    /// Nil when the first certificate in `certificatePEM` holds the key's public key; the reason
    /// otherwise.
    static func keyMismatch(certificatePEM: [UInt8], keyPEM: [UInt8]) -> String? {
        var error = [CChar](repeating: 0, count: 256)
        let status = certificatePEM.withUnsafeBufferPointer { cert in
            keyPEM.withUnsafeBufferPointer { key in
                swt_csr_certificate_matches_key(cert.baseAddress, cert.count, key.baseAddress, key.count, &error, error.count)
            }
        }
        return status == 1 ? nil : text(error)
    }

    /// The validity of each certificate in `pem` (other blocks skipped), leaf first.
    static func validity(_ pem: [UInt8]) -> Result<[Validity], ClientCertificateError> {
        let capacity = 32
        var notBefore = [Int64](repeating: 0, count: capacity)
        var notAfter = [Int64](repeating: 0, count: capacity)
        var error = [CChar](repeating: 0, count: 256)
        let count = pem.withUnsafeBufferPointer {
            swt_csr_certificate_validity($0.baseAddress, $0.count, &notBefore, &notAfter, capacity, &error, error.count)
        }
        guard count > 0 else { return .failure(ClientCertificateError(.certificate, message: text(error))) }
        return .success((0..<min(Int(count), capacity)).map {
            Validity(notBefore: Date(timeIntervalSince1970: Double(notBefore[$0])),
                     notAfter: Date(timeIntervalSince1970: Double(notAfter[$0])))
        })
    }

    /// SHA-512/256 of `bytes`.
    static func sha512_256(_ bytes: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        let status = bytes.withUnsafeBufferPointer { swt_csr_sha512_256($0.baseAddress, $0.count, &digest) }
        precondition(status == 0, "SHA-512/256 is unavailable in this OpenSSL")
        return digest
    }

    /// base64url without padding (Go's `base64.RawURLEncoding`).
    static func rawURLBase64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Copies a C buffer and frees it (wiped).
    private static func take(_ pointer: UnsafeMutablePointer<UInt8>?, _ length: Int) -> [UInt8] {
        guard let pointer else { return [] }
        defer { swt_csr_free(pointer, length) }
        return Array(UnsafeBufferPointer(start: pointer, count: length))
    }

    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
