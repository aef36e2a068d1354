import Foundation
import SwiftletTestSupport
import Testing
@testable import KubeletServer

extension ServerTests {
    /// ``ServingCertificate``: the pair as client-go makes it, checked with the openssl CLI and a
    /// real handshake through ``KubeletAPIServer``; reuse, replacement, modes. Nested in the
    /// serialized ``ServerTests``: it opens descriptors the shutdown test counts.
    @Suite struct ServingCertificateTests {
        private static let hostnames = ["node-1.example", "node-1"]
        private static let ipAddresses = ["127.0.0.1", "10.0.0.7", "fd00::7"]

        private func make(_ directory: String) throws -> (certificateFile: String, keyFile: String) {
            try ServingCertificate.ensureSelfSigned(directory: directory, hostnames: Self.hostnames, ipAddresses: Self.ipAddresses)
        }

        private func openssl(_ arguments: [String]) throws -> String {
            let result = try runProcess("/usr/bin/openssl", arguments)
            guard result.status == 0 else { throw ClientError("openssl \(arguments.joined(separator: " ")): \(result.stderr)") }
            return result.stdout
        }

        /// The PEM certificates of a file, each with its BEGIN/END lines.
        private func certificates(in file: String) throws -> [String] {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            return text.components(separatedBy: "-----END CERTIFICATE-----\n").dropLast().map { $0 + "-----END CERTIFICATE-----\n" }
        }

        private func bytes(_ file: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: file)) }

        private func mode(_ path: String) throws -> Int {
            try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
        }

        @Test func makesTheKubeletsPair() throws {
            let tree = try TemporaryTree(prefix: "serving-cert")
            let directory = tree.path + "/var/lib/swiftlet/pki"
            let before = Int(Date().timeIntervalSince1970)
            let files = try make(directory)
            #expect(files.certificateFile == directory + "/kubelet.crt" && files.keyFile == directory + "/kubelet.key")
            #expect(try mode(directory) == 0o700)
            #expect(try mode(files.keyFile) == 0o600)
            #expect(try mode(files.certificateFile) == 0o644)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["kubelet.crt", "kubelet.key"])

            // The serving certificate, then the self-signed CA that signed it (client-go's layout).
            let chain = try certificates(in: files.certificateFile)
            try #require(chain.count == 2)
            let leafFile = try tree.write("leaf.pem", chain[0])
            let caFile = try tree.write("ca.pem", chain[1])

            let leaf = try openssl(["x509", "-noout", "-text", "-nameopt", "RFC2253", "-in", leafFile])
            let subject = try openssl(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in", leafFile])
            let stamp = try #require(Int(subject.split(separator: "@").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
            #expect(subject == "subject=CN=node-1.example@\(stamp)\n")
            #expect(stamp >= before && stamp <= Int(Date().timeIntervalSince1970))
            #expect(leaf.contains("Issuer: CN=node-1.example-ca@\(stamp)\n"))
            #expect(leaf.contains("DNS:node-1.example, DNS:node-1, IP Address:127.0.0.1, IP Address:10.0.0.7, IP Address:FD00:0:0:0:0:0:0:7"))
            #expect(leaf.contains("CA:FALSE"))
            #expect(leaf.contains("TLS Web Server Authentication"))
            #expect(leaf.contains("Digital Signature, Key Encipherment"))
            #expect(leaf.contains("Public-Key: (2048 bit)"))
            #expect(leaf.contains("sha256WithRSAEncryption"))

            let ca = try openssl(["x509", "-noout", "-text", "-nameopt", "RFC2253", "-in", caFile])
            #expect(ca.contains("Issuer: CN=node-1.example-ca@\(stamp)\n") && ca.contains("Subject: CN=node-1.example-ca@\(stamp)\n"))
            #expect(ca.contains("CA:TRUE"))
            #expect(ca.contains("Certificate Sign"))

            // Self-signed CA; the leaf chains to it as a TLS server certificate (SAN checked).
            #expect(try openssl(["verify", "-x509_strict", "-CAfile", caFile, caFile]).contains("OK"))
            #expect(
                try openssl(["verify", "-x509_strict", "-purpose", "sslserver", "-verify_hostname", "node-1", "-CAfile", caFile, leafFile])
                    .contains("OK"))
            #expect(try runProcess("/usr/bin/openssl", ["verify", "-verify_hostname", "other", "-CAfile", caFile, leafFile]).status != 0)

            // Valid from an hour ago for 365 days: beyond 364 days, not beyond 365.
            for file in [leafFile, caFile] {
                #expect(try runProcess("/usr/bin/openssl", ["x509", "-noout", "-checkend", "\(364 * 86400)", "-in", file]).status == 0)
                #expect(try runProcess("/usr/bin/openssl", ["x509", "-noout", "-checkend", "\(365 * 86400)", "-in", file]).status != 0)
            }
            let notBefore = try openssl(["x509", "-noout", "-startdate", "-in", leafFile])
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "'notBefore='MMM d HH:mm:ss yyyy 'GMT'"
            let start = try #require(formatter.date(from: notBefore.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "  ", with: " ")))
            #expect(Int(start.timeIntervalSince1970) == stamp - 3600)

            // The key is the leaf's: PKCS #1 as the kubelet writes it, same modulus.
            let key = try String(contentsOfFile: files.keyFile, encoding: .utf8)
            #expect(key.hasPrefix("-----BEGIN RSA PRIVATE KEY-----\n"))
            #expect(try openssl(["x509", "-noout", "-modulus", "-in", leafFile]) == (try openssl(["rsa", "-noout", "-modulus", "-in", files.keyFile])))
        }

        @Test func servesTLSWithTheSANs() async throws {
            let tree = try TemporaryTree(prefix: "serving-cert")
            let files = try make(tree.path + "/pki")
            let tls = KubeletAPIServer.TLSFiles(certificateFile: files.certificateFile, keyFile: files.keyFile)
            let configuration = KubeletAPIServer.Configuration(address: "127.0.0.1", port: 0, nodeName: "node-1", tls: tls, anonymousAuthEnabled: true)
            try await withServer(configuration) { server, _ in
                let port = server.port
                // kubelet.crt as the trust bundle: curl verifies the chain and the name.
                @Sendable func get(_ url: String, _ extra: [String] = []) throws -> ProcessResult {
                    try runProcess("/usr/bin/curl", ["-sS", "--max-time", "20", "--cacert", files.certificateFile] + extra + [url])
                }
                let byIP = try await blocking { try get("https://127.0.0.1:\(port)/healthz") }
                #expect(byIP.status == 0 && byIP.stdout == "ok", "\(byIP.stderr)")
                let byName = try await blocking { try get("https://node-1:\(port)/healthz", ["--resolve", "node-1:\(port):127.0.0.1"]) }
                #expect(byName.status == 0 && byName.stdout == "ok", "\(byName.stderr)")
                let wrongName = try await blocking { try get("https://elsewhere:\(port)/healthz", ["--resolve", "elsewhere:\(port):127.0.0.1"]) }
                #expect(wrongName.status == 60, "\(wrongName.stderr)")  // CURLE_PEER_FAILED_VERIFICATION
            }
        }

        @Test func reusesAPairThatLoads() throws {
            let tree = try TemporaryTree(prefix: "serving-cert")
            let first = try make(tree.path)
            let certificate = try bytes(first.certificateFile)
            let key = try bytes(first.keyFile)
            // Other names on a later start: the pair still loads, so it stays (as the kubelet's).
            let second = try ServingCertificate.ensureSelfSigned(directory: tree.path, hostnames: ["renamed"], ipAddresses: [])
            #expect(second == first)
            #expect(try bytes(second.certificateFile) == certificate)
            #expect(try bytes(second.keyFile) == key)
        }

        @Test(arguments: ["corrupt certificate", "corrupt key", "missing key", "missing certificate", "mismatched key"])
        func replacesAPairThatDoesNotLoad(damage: String) throws {
            let tree = try TemporaryTree(prefix: "serving-cert")
            let files = try make(tree.path)
            let certificate = try bytes(files.certificateFile)
            let key = try bytes(files.keyFile)
            switch damage {
            case "corrupt certificate": try Data("-----BEGIN CERTIFICATE-----\ngarbage\n".utf8).write(to: URL(fileURLWithPath: files.certificateFile))
            case "corrupt key": try Data(key.prefix(200)).write(to: URL(fileURLWithPath: files.keyFile))
            case "missing key": try FileManager.default.removeItem(atPath: files.keyFile)
            case "missing certificate": try FileManager.default.removeItem(atPath: files.certificateFile)
            default:
                // A key from another pair: what a crash between the two renames would leave.
                let other = try TemporaryTree(prefix: "serving-cert")
                let otherFiles = try make(other.path)
                try FileManager.default.removeItem(atPath: files.keyFile)
                try FileManager.default.copyItem(atPath: otherFiles.keyFile, toPath: files.keyFile)
            }
            let again = try make(tree.path)
            #expect(again == files)
            #expect(try bytes(again.certificateFile) != certificate)
            #expect(try bytes(again.keyFile) != key)
            #expect(try mode(again.keyFile) == 0o600)
            #expect(try FileManager.default.contentsOfDirectory(atPath: tree.path).sorted() == ["kubelet.crt", "kubelet.key"])
            // The new pair loads as the server loads it.
            _ = try TLSContext(certificateFile: again.certificateFile, keyFile: again.keyFile, clientCAFile: nil)
        }

        @Test func concurrentCallersMakeOnePair() async throws {
            let tree = try TemporaryTree(prefix: "serving-cert")
            let directory = tree.path + "/pki"
            let results = try await withThrowingTaskGroup(of: Data.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await blocking {
                            let files = try ServingCertificate.ensureSelfSigned(directory: directory, hostnames: ["node-1"], ipAddresses: [])
                            return try Data(contentsOf: URL(fileURLWithPath: files.certificateFile))
                        }
                    }
                }
                return try await group.reduce(into: [Data]()) { $0.append($1) }
            }
            #expect(Set(results).count == 1)
        }

        @Test func hostFallsBackToTheFirstIPAddress() throws {
            let tree = try TemporaryTree(prefix: "serving-cert")
            let files = try ServingCertificate.ensureSelfSigned(directory: tree.path, hostnames: [], ipAddresses: ["::ffff:10.1.2.3", "::1"])
            let leaf = try openssl(["x509", "-noout", "-text", "-nameopt", "RFC2253", "-in", files.certificateFile])
            #expect(leaf.contains("Subject: CN=::ffff:10.1.2.3@"))
            // An IPv4-mapped address is certified as IPv4, as Go encodes it.
            #expect(leaf.contains("X509v3 Subject Alternative Name: \n                IP Address:10.1.2.3, IP Address:0:0:0:0:0:0:0:1\n"))
        }

        @Test func refusesWhatCannotBeCertified() throws {
            let tree = try TemporaryTree(prefix: "serving-cert")
            let cases: [([String], [String])] = [([], []), (["node-1"], ["not-an-ip"]), (["nødé"], []), ([""], []), (["a b"], [])]
            for (hostnames, ipAddresses) in cases {
                #expect(throws: KubeletServerError.self, "\(hostnames) \(ipAddresses)") {
                    try ServingCertificate.ensureSelfSigned(directory: tree.path + "/pki", hostnames: hostnames, ipAddresses: ipAddresses)
                }
                do {
                    _ = try ServingCertificate.ensureSelfSigned(directory: tree.path + "/pki", hostnames: hostnames, ipAddresses: ipAddresses)
                } catch {
                    #expect(error.code == .certificate)
                }
                // Nothing half-made is left behind.
                let left = (try? FileManager.default.contentsOfDirectory(atPath: tree.path + "/pki")) ?? []
                #expect(left.isEmpty, "\(left)")
            }
        }
    }
}
