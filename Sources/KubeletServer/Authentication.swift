/// Who made a request to the kubelet API (apiserver's `user.Info`).
public struct KubeletUser: Sendable, Hashable, CustomStringConvertible {
    /// The user name: a certificate's CN, or what the TokenReview answered.
    public var name: String
    public var uid: String
    /// A certificate's O entries in order, or the TokenReview's groups; authenticated
    /// users also get `system:authenticated`.
    public var groups: [String]
    public var extra: [String: [String]]

    public init(name: String, uid: String = "", groups: [String] = [], extra: [String: [String]] = [:]) {
        self.name = name
        self.uid = uid
        self.groups = groups
        self.extra = extra
    }

    /// `system:anonymous` in `system:unauthenticated`: a request with no credentials, when
    /// anonymous authentication is enabled.
    public static let anonymous = KubeletUser(name: "system:anonymous", groups: ["system:unauthenticated"])

    /// The group every authenticated user is given (`system:authenticated`).
    public static let authenticatedGroup = "system:authenticated"

    public var description: String { "\(name) \(groups)" }
}

/// Authenticates bearer tokens (the kubelet's `authentication.webhook`): the lead's
/// implementation asks the API server with a TokenReview, and caches.
public protocol TokenReviewer: Sendable {
    /// The user `token` belongs to, or nil when the token is not valid. Either nil or a thrown
    /// error answers 401 `Unauthorized` (the error is logged).
    func review(token: String) async throws -> KubeletUser?
}

/// How the kubelet API authenticates requests, in the kubelet's order: a client certificate
/// verified against the client CA (user = CN, groups = O), else a bearer token through the
/// ``TokenReviewer``, else anonymous when enabled; otherwise 401.
struct RequestAuthenticator: Sendable {
    var x509Enabled: Bool
    var tokenReviewer: (any TokenReviewer)?
    var anonymousEnabled: Bool

    enum Outcome: Equatable {
        case authenticated(KubeletUser)
        /// 401: no credentials (anonymous disabled), or credentials that failed.
        case unauthorized(reason: String)
    }

    /// apiserver's `DelegatingAuthenticatorConfig`: union(x509, bearer token) with
    /// `system:authenticated` added, then anonymous only when that found neither credentials
    /// nor an error.
    func authenticate(certificate: PeerCertificate?, authorization: String?) async -> Outcome {
        var errors: [String] = []
        if x509Enabled, let certificate {
            if !certificate.verified {
                errors.append("verifying certificate failed: \(certificate.verifyError)")
            } else if let name = certificate.commonNames.last, !name.isEmpty {
                // Go's pkix.Name keeps the last CN, and every O in order.
                return .authenticated(Self.addingAuthenticatedGroup(KubeletUser(name: name, groups: certificate.organizations)))
            }
        }
        if let tokenReviewer, let token = Self.bearerToken(authorization) {
            do {
                if let user = try await tokenReviewer.review(token: token) {
                    return .authenticated(Self.addingAuthenticatedGroup(user))
                }
                errors.append("invalid bearer token")
            } catch {
                errors.append("token review failed: \(error)")
            }
        }
        if !errors.isEmpty { return .unauthorized(reason: errors.joined(separator: "; ")) }
        if anonymousEnabled { return .authenticated(.anonymous) }
        return .unauthorized(reason: "no credentials")
    }

    /// apiserver's bearer token authenticator: `Authorization: Bearer <token>` (scheme
    /// case-insensitive); nil for anything else.
    static func bearerToken(_ header: String?) -> String? {
        guard let header = header?.trimmingCharacters(in: " \t"), !header.isEmpty else { return nil }
        let parts = header.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else { return nil }
        return String(parts[1])
    }

    /// apiserver's `AuthenticatedGroupAdder`.
    static func addingAuthenticatedGroup(_ user: KubeletUser) -> KubeletUser {
        if user.groups.contains(KubeletUser.authenticatedGroup) || user.groups.contains("system:unauthenticated") {
            return user
        }
        var user = user
        user.groups.append(KubeletUser.authenticatedGroup)
        return user
    }
}
