import Foundation

/// Checks PEM text before libcurl sees it, so a bad certificate or key is reported with the
/// kubeconfig key that holds it rather than as a TLS failure at the first request.
enum PEM {
    /// The labels of the blocks in `bytes` ("CERTIFICATE", "RSA PRIVATE KEY", …), or a reason.
    static func blockLabels(_ bytes: [UInt8]) -> Result<[String], KubeConfigError.Reason> {
        guard let text = String(bytes: bytes, encoding: .utf8) else { return .failure(.invalidPEM("not UTF-8 text")) }
        var labels: [String] = []
        var current: String?
        var body = ""
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("-----BEGIN "), line.hasSuffix("-----") {
                if current != nil { return .failure(.invalidPEM("\"\(line)\" inside another block")) }
                current = String(line.dropFirst(11).dropLast(5))
                body = ""
            } else if line.hasPrefix("-----END "), line.hasSuffix("-----") {
                let label = String(line.dropFirst(9).dropLast(5))
                guard let open = current, open == label else { return .failure(.invalidPEM("\"\(line)\" without its BEGIN line")) }
                guard !body.isEmpty, Data(base64Encoded: body) != nil else {
                    return .failure(.invalidPEM("the \(label) block's body is not base64"))
                }
                labels.append(label)
                current = nil
            } else if current != nil {
                if line.contains(":") { continue }  // RFC 1421 headers (Proc-Type, DEK-Info)
                body += line
            }
        }
        if let open = current { return .failure(.invalidPEM("the \(open) block has no END line")) }
        if labels.isEmpty { return .failure(.invalidPEM("no \"-----BEGIN\" line")) }
        return .success(labels)
    }

    /// Nil when `bytes` holds at least one certificate; the reason otherwise.
    static func checkCertificates(_ bytes: [UInt8]) -> KubeConfigError.Reason? {
        switch blockLabels(bytes) {
        case .failure(let reason): return reason
        case .success(let labels):
            return labels.contains("CERTIFICATE") ? nil : .invalidPEM("no CERTIFICATE block (found \(labels.joined(separator: ", ")))")
        }
    }

    /// Nil when `bytes` holds a private key; the reason otherwise.
    static func checkPrivateKey(_ bytes: [UInt8]) -> KubeConfigError.Reason? {
        switch blockLabels(bytes) {
        case .failure(let reason): return reason
        case .success(let labels):
            if labels.contains("ENCRYPTED PRIVATE KEY") { return .unsupported("an encrypted private key") }
            return labels.contains { $0.hasSuffix("PRIVATE KEY") }
                ? nil : .invalidPEM("no PRIVATE KEY block (found \(labels.joined(separator: ", ")))")
        }
    }
}
