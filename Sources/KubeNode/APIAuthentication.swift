import Foundation
import KubeClient
import KubeletServer
import Synchronization

/// Bearer tokens for the kubelet API checked with the API server's TokenReview, answers cached
/// for 2 minutes (the kubelet's `authentication.webhook.cacheTTL`).
final class APITokenReviewer: TokenReviewer {
    let client: KubeClient
    private let cache = Mutex<[String: (user: KubeletUser?, until: ContinuousClock.Instant)]>([:])

    init(client: KubeClient) { self.client = client }

    func review(token: String) async throws -> KubeletUser? {
        if let hit = cache.withLock({ $0[token] }), hit.until > .now { return hit.user }
        let review = try await client.create("/apis/authentication.k8s.io/v1/tokenreviews", TokenReview(spec: TokenReviewSpec(token: token)),
                                             as: TokenReview.self)
        var user: KubeletUser?
        if review.status?.authenticated == true, let info = review.status?.user {
            user = KubeletUser(name: info.username ?? "", uid: info.uid ?? "", groups: info.groups ?? [], extra: info.extra ?? [:])
        }
        cache.withLock { cache in
            if cache.count > 1000 { cache.removeAll() }
            cache[token] = (user, .now + .seconds(120))
        }
        return user
    }
}

/// Kubelet API requests authorized with the API server's SubjectAccessReview, allowed answers
/// cached 5 minutes and denials 30 seconds (the kubelet's `authorization.webhook` TTLs).
final class APIAuthorizer: Authorizer {
    let client: KubeClient
    private let cache = Mutex<[String: (decision: AuthorizationDecision, until: ContinuousClock.Instant)]>([:])

    init(client: KubeClient) { self.client = client }

    func authorize(_ attributes: KubeletRequestAttributes) async throws -> AuthorizationDecision {
        let key = "\(attributes.user.name)|\(attributes.user.groups.joined(separator: ","))|\(attributes.verb)|\(attributes.subresource)|\(attributes.name)"
        if let hit = cache.withLock({ $0[key] }), hit.until > .now { return hit.decision }
        let spec = SubjectAccessReviewSpec(
            resourceAttributes: ResourceAttributes(namespace: attributes.namespace, verb: attributes.verb, group: attributes.apiGroup,
                                                   version: attributes.apiVersion, resource: attributes.resource,
                                                   subresource: attributes.subresource, name: attributes.name),
            user: attributes.user.name, groups: attributes.user.groups, extra: attributes.user.extra, uid: attributes.user.uid)
        let review = try await client.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", SubjectAccessReview(spec: spec),
                                             as: SubjectAccessReview.self)
        let allowed = review.status?.allowed == true
        let decision: AuthorizationDecision = allowed ? .allow : .deny(reason: review.status?.reason ?? "")
        cache.withLock { cache in
            if cache.count > 1000 { cache.removeAll() }
            cache[key] = (decision, .now + (allowed ? .seconds(300) : .seconds(30)))
        }
        return decision
    }
}
