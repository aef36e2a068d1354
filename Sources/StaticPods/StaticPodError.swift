/// Why one manifest (or the manifest directory) did not give a static pod. A bad file never
/// hides the good ones: ``StaticPodManifests`` carries the pods and the errors side by side.
public struct StaticPodError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: String, Sendable, Hashable {
        /// The file (or the directory) could not be read.
        case unreadable
        /// Neither YAML nor JSON, or not one document.
        case unparsable
        /// Parsed, but not a v1 Pod (`kind`/`apiVersion`, or a member of the wrong type).
        case notAPod
        /// A Pod the kubelet's validation would refuse (names, images, volumes).
        case invalid
        /// Another manifest (earlier by file name) already defines a pod of this name and namespace.
        case duplicate
    }

    /// The manifest file (or the directory, for a directory-level error).
    public var path: String
    public var reason: Reason
    /// What is wrong, for a person: `spec.containers[1].name: "Web" is not a DNS-1123 label`.
    public var message: String

    public init(path: String, reason: Reason, message: String) {
        self.path = path
        self.reason = reason
        self.message = message
    }

    public var description: String { "static pod manifest \(path): \(message)" }
}
