import KubeClient

/// The pod the node creates in the API server to show a static pod there (the kubelet's
/// `mirror_client.go`): the static pod with `kubernetes.io/config.mirror: <hash>` added, owned by the
/// Node (when its UID is known), without the static pod's UID and status (the API server assigns a
/// UID; the node reports status separately).
public func mirrorPod(of staticPod: StaticPod, nodeUID: String? = nil) -> Pod {
    var pod = staticPod.pod
    var annotations = pod.metadata.annotations ?? [:]
    annotations[StaticPodAnnotation.configMirror] = annotations[StaticPodAnnotation.configHash] ?? staticPod.uid
    pod.metadata.annotations = annotations
    pod.metadata.uid = nil
    pod.metadata.resourceVersion = nil
    pod.status = nil
    if let nodeUID, !nodeUID.isEmpty {
        pod.metadata.ownerReferences = [OwnerReference(apiVersion: "v1", kind: "Node", name: staticPod.nodeName, uid: nodeUID, controller: true)]
    }
    return pod
}

/// Whether `pod` (from the API server) is a mirror pod: it carries `kubernetes.io/config.mirror`.
public func isMirrorPod(_ pod: Pod) -> Bool {
    pod.metadata.annotations?[StaticPodAnnotation.configMirror] != nil
}

/// Whether `mirror` mirrors exactly this static pod: same namespace and name, and its
/// `kubernetes.io/config.mirror` is the static pod's hash (a mirror of an older version of the
/// manifest does not match: the kubelet deletes and recreates it).
public func isMirrorPod(_ mirror: Pod, of staticPod: StaticPod) -> Bool {
    guard let hash = mirror.metadata.annotations?[StaticPodAnnotation.configMirror] else { return false }
    return mirror.metadata.name == staticPod.name && (mirror.metadata.namespace ?? "default") == staticPod.namespace
        && hash == (staticPod.pod.metadata.annotations?[StaticPodAnnotation.configHash] ?? staticPod.uid)
}

/// Whether `pod` is a static pod as the node holds it: a `kubernetes.io/config.source` other than
/// `api`, and not a mirror pod (which carries the static pod's annotations plus `config.mirror`).
public func isStaticPod(_ pod: Pod) -> Bool {
    guard let source = pod.metadata.annotations?[StaticPodAnnotation.configSource] else { return false }
    return source != "api" && !isMirrorPod(pod)
}
