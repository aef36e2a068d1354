import Foundation
import KubeClient

/// A pod from a manifest file, as the kubelet turns it into a pod of this node: named
/// `<name>-<node>`, in `default` unless the manifest says otherwise, bound to the node, with a UID
/// that is a hash of the manifest (and of the node and the file), annotated with that hash, the
/// source (`file`) and when it was first seen, tolerating every `NoExecute` taint.
public struct StaticPod: Sendable, Hashable {
    /// The defaulted pod (`metadata.uid` set; no status).
    public var pod: Pod
    /// The manifest file.
    public var path: String
    /// The node the pod is named and bound for.
    public var nodeName: String

    public init(pod: Pod, path: String, nodeName: String) {
        self.pod = pod
        self.path = path
        self.nodeName = nodeName
    }

    /// `metadata.uid`, equal to the `kubernetes.io/config.hash` annotation: a changed manifest
    /// is a new pod.
    public var uid: String { pod.metadata.uid ?? "" }
    public var name: String { pod.metadata.name ?? "" }
    public var namespace: String { pod.metadata.namespace ?? "default" }
    /// The kubelet's full name, `<name>_<namespace>` (what mirror pods are matched by).
    public var fullName: String { "\(name)_\(namespace)" }
}

/// The annotations the kubelet puts on static and mirror pods (`k8s.io/kubernetes/pkg/kubelet/types`).
public enum StaticPodAnnotation {
    /// The static pod's UID (the manifest's hash).
    public static let configHash = "kubernetes.io/config.hash"
    /// Where the pod came from: `file` (static), `http`, or `api`.
    public static let configSource = "kubernetes.io/config.source"
    /// When the node first saw the pod (RFC 3339 with nanoseconds).
    public static let configSeen = "kubernetes.io/config.seen"
    /// On a mirror pod: the hash of the static pod it mirrors.
    public static let configMirror = "kubernetes.io/config.mirror"
    /// The value of ``configSource`` for static pods from files.
    public static let fileSource = "file"
}

/// The static pods in a manifest directory, and the manifests that did not give one.
public struct StaticPodManifests: Sendable, Hashable {
    /// By file name.
    public var pods: [StaticPod]
    /// One per bad file (or one for the directory), by file name.
    public var errors: [StaticPodError]

    public init(pods: [StaticPod] = [], errors: [StaticPodError] = []) {
        self.pods = pods
        self.errors = errors
    }

    /// Reads every regular file of `directory` not starting with a dot (sorted by name; no
    /// recursion into subdirectories) as one Pod each, as the kubelet's file source does. `directory`
    /// may also be one manifest file. A missing directory has no pods (it may be created later).
    /// Throws only when the directory itself cannot be read.
    ///
    /// - Parameters:
    ///   - nodeName: the node's name (its lowercased form ends the pods' names).
    ///   - now: the `kubernetes.io/config.seen` time written on every pod.
    public static func load(directory: String, nodeName: String, now: Date = Date()) throws(StaticPodError) -> StaticPodManifests {
        var info = stat()
        if stat(directory, &info) != 0 {
            let code = errno
            if code == ENOENT { return StaticPodManifests() }
            throw StaticPodError(path: directory, reason: .unreadable, message: String(cString: strerror(code)))
        }
        let files: [String]
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            files = [directory]
        case S_IFDIR:
            do {
                files = try FileManager.default.contentsOfDirectory(atPath: directory)
                    .filter { !$0.hasPrefix(".") }
                    .sorted()
                    .map { directory.hasSuffix("/") ? directory + $0 : directory + "/" + $0 }
            } catch {
                throw StaticPodError(path: directory, reason: .unreadable, message: "cannot list the directory: \(error.localizedDescription)")
            }
        default:
            throw StaticPodError(path: directory, reason: .unreadable, message: "neither a directory nor a file")
        }

        var result = StaticPodManifests()
        var owners: [String: String] = [:]
        for file in files {
            var fileInfo = stat()
            guard stat(file, &fileInfo) == 0 else {
                let code = errno
                // Removed between the listing and now: no longer a manifest.
                if code != ENOENT {
                    result.errors.append(StaticPodError(path: file, reason: .unreadable, message: String(cString: strerror(code))))
                }
                continue
            }
            switch fileInfo.st_mode & S_IFMT {
            case S_IFDIR:
                continue  // the kubelet does not recurse either
            case S_IFREG:
                break
            default:
                result.errors.append(StaticPodError(path: file, reason: .unreadable, message: "not a regular file"))
                continue
            }
            do throws(StaticPodError) {
                let bytes = try readManifest(file)
                let pod = try staticPod(manifest: bytes, path: file, nodeName: nodeName, now: now)
                if let owner = owners[pod.fullName] {
                    throw StaticPodError(path: file, reason: .duplicate,
                                         message: "pod \(pod.namespace)/\(pod.name) is already defined by \(owner)")
                }
                owners[pod.fullName] = file
                result.pods.append(pod)
            } catch {
                result.errors.append(error)
            }
        }
        return result
    }

    /// One manifest's bytes as a static pod of `nodeName` (decoded, defaulted, validated).
    /// `path` is part of the UID, as in the kubelet: the same manifest in another file is another pod.
    public static func staticPod(manifest bytes: [UInt8], path: String, nodeName: String,
                                 now: Date = Date()) throws(StaticPodError) -> StaticPod {
        let document = try ManifestDocument.parse(bytes, path: path)
        guard case .object = document else {
            throw StaticPodError(path: path, reason: .notAPod, message: "the document is not a mapping")
        }
        guard document["kind"]?.stringValue == "Pod" else {
            let found = document["kind"]?.stringValue.map { "kind \"\($0)\"" } ?? "no kind"
            throw StaticPodError(path: path, reason: .notAPod, message: "\(found): a static pod manifest is a single kind: Pod")
        }
        guard document["apiVersion"]?.stringValue == "v1" else {
            let found = document["apiVersion"]?.stringValue.map { "apiVersion \"\($0)\"" } ?? "no apiVersion"
            throw StaticPodError(path: path, reason: .notAPod, message: "\(found): a Pod is apiVersion v1")
        }
        var pod: Pod
        do {
            pod = try JSONDecoder().decode(Pod.self, from: Data(document.serialized()))
        } catch {
            throw StaticPodError(path: path, reason: .notAPod, message: ManifestDocument.describe(error))
        }
        guard pod.spec != nil else {
            throw StaticPodError(path: path, reason: .invalid, message: "spec: required")
        }
        let problems = StaticPodValidation.problems(in: pod)
        if !problems.isEmpty {
            throw StaticPodError(path: path, reason: .invalid, message: problems.joined(separator: "; "))
        }

        // The kubelet hashes the decoded pod with the node and the file; the canonical (sorted-key)
        // JSON of the document is the same idea: formatting and comments do not change the UID,
        // any value does.
        let uid: String
        if let given = pod.metadata.uid, !given.isEmpty {
            uid = given
        } else {
            var md5 = MD5()
            md5.update("host:\(nodeName)")
            md5.update("file:\(path)")
            md5.update(document.serialized())
            uid = md5.hexDigest()
        }
        StaticPodDefaults.apply(to: &pod)
        pod.metadata.uid = uid
        pod.metadata.name = "\(pod.metadata.name ?? "")-\(nodeName.lowercased())"
        if (pod.metadata.namespace ?? "").isEmpty { pod.metadata.namespace = "default" }
        pod.spec?.nodeName = nodeName
        var annotations = pod.metadata.annotations ?? [:]
        annotations[StaticPodAnnotation.configHash] = uid
        annotations[StaticPodAnnotation.configSource] = StaticPodAnnotation.fileSource
        annotations[StaticPodAnnotation.configSeen] = rfc3339Nano(now)
        pod.metadata.annotations = annotations
        // Static pods stay through node problems: tolerate every NoExecute taint.
        let tolerateAll = Toleration(operator: "Exists", effect: "NoExecute")
        var tolerations = pod.spec?.tolerations ?? []
        if let index = tolerations.firstIndex(where: { ($0.key ?? "").isEmpty && $0.effect == "NoExecute" && $0.operator == "Exists" }) {
            tolerations[index] = tolerateAll
        } else {
            tolerations.append(tolerateAll)
        }
        pod.spec?.tolerations = tolerations
        pod.status = nil
        let made = StaticPod(pod: pod, path: path, nodeName: nodeName)
        let nameProblems = StaticPodValidation.nameProblems(made.name, namespace: made.namespace)
        if !nameProblems.isEmpty {
            throw StaticPodError(path: path, reason: .invalid, message: nameProblems.joined(separator: "; "))
        }
        return made
    }

    private static let maximumManifestSize = 10 << 20

    private static func readManifest(_ path: String) throws(StaticPodError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StaticPodError(path: path, reason: .unreadable, message: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw StaticPodError(path: path, reason: .unreadable, message: String(cString: strerror(errno)))
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > maximumManifestSize {
                throw StaticPodError(path: path, reason: .unreadable, message: "larger than \(maximumManifestSize >> 20) MiB")
            }
        }
        return bytes
    }
}

/// Go's RFC3339Nano in UTC (trailing zeros of the fraction dropped): `2024-05-01T12:00:00.123456Z`.
func rfc3339Nano(_ date: Date) -> String {
    let seconds = date.timeIntervalSince1970.rounded(.down)
    var time = time_t(seconds)
    var parts = tm()
    gmtime_r(&time, &parts)
    var text = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    let nanos = min(999_999_999, Int(((date.timeIntervalSince1970 - seconds) * 1_000_000_000).rounded()))
    if nanos > 0 {
        var fraction = String(format: "%09d", nanos)
        while fraction.hasSuffix("0") { fraction.removeLast() }
        text += "." + fraction
    }
    return text + "Z"
}
