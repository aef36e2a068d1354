/// What this build of Swiftlet is.
public enum BuildInfo {
    /// Swiftlet's version (semver).
    public static let version = "0.1.0"
    /// The runtime name reported by the CRI's Version and the Node's containerRuntimeVersion.
    public static let runtimeName = "swiftlet"
    /// The kubelet–runtime API version of CRI `Version` (the same value containerd reports).
    public static let kubeletAPIVersion = "0.1.0"
}
