/// What a container is: its process, isolation and resources. The CRI runtime and the
/// `swiftlet containers` commands build one; the isolators turn it into a launch.
public struct ContainerConfig: Sendable, Equatable, Codable {
    /// The root filesystem (a directory, or an overlay mount the image store prepared).
    public var rootfs: String
    public var readonlyRootfs = false
    /// The command and its arguments; `args[0]` is looked up in the container's PATH.
    public var args: [String]
    public var env: [String] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    public var workingDirectory = "/"
    public var hostname = ""
    public var user = User()
    public var namespaces = Namespaces()
    public var mounts: [Mount] = []
    public var resources = ResourceLimits()
    /// Paths masked inside the container (/dev/null over files, an empty read-only tmpfs
    /// over directories). Defaults to containerd's list.
    public var maskedPaths = ContainerConfig.defaultMaskedPaths
    /// Paths made read-only. Defaults to containerd's list.
    public var readonlyPaths = ContainerConfig.defaultReadonlyPaths
    /// Capabilities kept (names as `CAP_CHOWN`); defaults to the CRI's default set.
    public var capabilities = Capabilities.criDefault
    public var noNewPrivileges = false
    public var seccomp: SeccompProfile = .unconfined
    /// Values below 0 are raised to 0: hosts without CAP_SYS_RESOURCE refuse them.
    public var oomScoreAdj: Int? = nil
    public var rlimits: [Rlimit] = []
    public var tty = false
    /// The CRI log file; nil discards output.
    public var logPath: String? = nil
    /// Privileged: the host's /dev, every capability, no masked or read-only paths.
    public var privileged = false
    /// Labels kept with the container (the CRI's labels, or the CLI's).
    public var labels: [String: String] = [:]
    /// The cgroup the container's cgroup is made in, relative to each hierarchy's root (a
    /// pod's `cgroup_parent`, such as `/kubepods/besteffort/pod<uid>`); nil: the
    /// containerizer's cgroups root.
    public var cgroupParent: String? = nil
    /// The container runs no command: its first process holds a pod's shared pid namespace
    /// (PID 1 there, reaping orphans) until it is stopped.
    public var holdsPIDNamespace: Bool? = nil
    /// Host devices made available inside (the CRI's devices): bound into the container's
    /// /dev and allowed in its devices cgroup (v1) with their permissions.
    public var devices: [Device]? = nil
    /// The container's stdin stays open for attached clients (the CRI's `stdin`); without
    /// it the container reads /dev/null.
    public var stdin: Bool? = nil
    /// The first attached client's end of input ends the container's (`stdin_once`).
    public var stdinOnce: Bool? = nil
    /// The user namespace the container runs in (a pod's pinned one); nil: the host's. Its
    /// root filesystem must be seen through it (an idmapped rootfs from the image store).
    public var userNamespace: UserNamespace? = nil

    public init(rootfs: String, args: [String]) {
        self.rootfs = rootfs
        self.args = args
    }

    public struct User: Sendable, Equatable, Codable {
        public var uid: UInt32 = 0
        public var gid: UInt32 = 0
        public var additionalGids: [UInt32] = []
        public init(uid: UInt32 = 0, gid: UInt32 = 0, additionalGids: [UInt32] = []) {
            self.uid = uid
            self.gid = gid
            self.additionalGids = additionalGids
        }
    }

    /// A user namespace to join: the mounts, hostname and limits are set up with the host's
    /// privileges, then the container's process enters it as its root and becomes its user.
    public struct UserNamespace: Sendable, Equatable, Codable {
        /// The namespace's file (a bind-mounted nsfs file).
        public var path: String
        /// The namespace's root (its uid and gid 0) on the host: the owner of the mount points
        /// and devices made in the container's root filesystem.
        public var rootUID: UInt32
        public var rootGID: UInt32
        public init(path: String, rootUID: UInt32, rootGID: UInt32) {
            self.path = path
            self.rootUID = rootUID
            self.rootGID = rootGID
        }
    }

    /// New namespaces by default; a path joins an existing one (a pod sandbox's).
    public struct Namespaces: Sendable, Equatable, Codable {
        public enum Mode: Sendable, Equatable, Codable {
            /// A new namespace for this container.
            case new
            /// The host's namespace.
            case host
            /// The namespace at this path (`/proc/<pid>/ns/net`, a bind-mounted ns file).
            case join(String)
        }
        public var pid: Mode = .new
        public var network: Mode = .new
        public var ipc: Mode = .new
        public var uts: Mode = .new
        public init() {}
    }

    public struct Mount: Sendable, Equatable, Codable {
        public enum Propagation: String, Sendable, Codable { case rprivate, rslave, rshared }
        public var source: String
        public var target: String
        public var readonly = false
        /// Read-only all the way down (mount_setattr AT_RECURSIVE).
        public var recursiveReadonly = false
        public var propagation: Propagation = .rprivate
        /// An idmapped mount through the container's user namespace (the host's 0 is the
        /// container's root); not recursive. Needs ``ContainerConfig/userNamespace``.
        public var idmapped: Bool? = nil
        public init(source: String, target: String, readonly: Bool = false, recursiveReadonly: Bool = false,
                    propagation: Propagation = .rprivate, idmapped: Bool? = nil) {
            self.source = source
            self.target = target
            self.readonly = readonly
            self.recursiveReadonly = recursiveReadonly
            self.propagation = propagation
            self.idmapped = idmapped
        }
    }

    public struct Device: Sendable, Equatable, Codable {
        public var hostPath: String
        public var containerPath: String
        /// Some of "rwm".
        public var permissions: String
        public init(hostPath: String, containerPath: String, permissions: String = "rwm") {
            self.hostPath = hostPath
            self.containerPath = containerPath
            self.permissions = permissions
        }
    }

    public struct Rlimit: Sendable, Equatable, Codable {
        /// NOFILE, NPROC, CORE, … (RLIMIT_ without the prefix).
        public var name: String
        public var soft: UInt64
        public var hard: UInt64
        public init(name: String, soft: UInt64, hard: UInt64) {
            self.name = name
            self.soft = soft
            self.hard = hard
        }
    }

    /// containerd's default masked paths.
    public static let defaultMaskedPaths = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ]
    /// containerd's default read-only paths.
    public static let defaultReadonlyPaths = [
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    ]
}
