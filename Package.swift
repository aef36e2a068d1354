// swift-tools-version: 6.0
//
// Swiftlet: a Kubernetes-compatible node agent. One concern per target; C only in the
// small `CSwiftlet*` bridge targets, never in a public signature of a Swift target.
import PackageDescription

let package = Package(
    name: "swiftlet",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "swiftlet", targets: ["swiftlet"]),
        .executable(name: "swiftlet-monitor", targets: ["swiftlet-monitor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // MARK: C bridges

        /// Hand-written shim over the gRPC C core (Debian libgrpc-dev): server, completion
        /// queue, per-call state and batches behind opaque handles.
        .target(
            name: "CSwiftletGRPC",
            linkerSettings: [.linkedLibrary("grpc"), .linkedLibrary("gpr"), .linkedLibrary("absl_synchronization")]
        ),
        /// swiftlet-monitor: the per-container supervisor (C, single-threaded, ~1 MB): clones the
        /// container into its namespaces and cgroups, writes its CRI log, records its exit.
        .executableTarget(
            name: "swiftlet-monitor",
            path: "Sources/CSwiftletMonitor",
            cSettings: [.define("_GNU_SOURCE")],
            // SwiftPM links executables through swiftc, which adds the Swift runtime and
            // libstdc++ to this C program (~600 KiB PSS per monitor). Installs use
            // hack/build-monitor.sh (plain cc: ~240 KiB PSS); this copy serves tests.
            linkerSettings: [.linkedLibrary("seccomp")]
        ),
        /// A minimal gRPC client for the bridge's own tests (stalled streams and the like).
        .target(
            name: "CSwiftletGRPCTestClient",
            linkerSettings: [.linkedLibrary("grpc"), .linkedLibrary("gpr")]
        ),
        /// protoc-c output for runtime.v1 (hack/update-codegen.sh), on Debian libprotobuf-c.
        .target(
            name: "CSwiftletCRI",
            cSettings: [.unsafeFlags(["-Wno-everything"])],
            linkerSettings: [.linkedLibrary("protobuf-c")]
        ),

        // MARK: CRI

        /// The CRI's messages as Swift value types, and the RuntimeService/ImageService
        /// handler protocols. Pure Swift.
        .target(name: "CRI"),
        /// Encodes and decodes CRI messages through protobuf-c.
        .target(name: "CRIProtobufC", dependencies: ["CRI", "CSwiftletCRI"]),
        /// A gRPC server on the C core: calls, statuses, deadlines, cancellation, shutdown.
        .target(name: "GRPCServer", dependencies: ["CSwiftletGRPC"]),
        /// The gRPC health checking protocol's client (`grpc.health.v1.Health/Check`) on the C
        /// core, for the node's gRPC probes.
        .target(name: "GRPCHealthCheck", dependencies: ["CSwiftletGRPC", "GRPCServer"]),
        /// Serves CRI handlers under runtime.v1 and runtime.v1alpha2 on a unix socket.
        .target(
            name: "CRIServer",
            dependencies: ["CRI", "CRIProtobufC", "GRPCServer", .product(name: "Logging", package: "swift-log")]
        ),

        // MARK: Containers

        /// The Mesos-style containerizer: a launcher (swiftlet-monitor per container) and
        /// isolators (cgroups v1/v2, namespaces, filesystem), checkpointing and recovery.
        .target(name: "Containerizer", dependencies: ["CSwiftletSyscalls"]),
        /// The few system calls Swift cannot reach directly (pidfd_open, pipe2).
        .target(name: "CSwiftletSyscalls"),

        /// CNI: network configs and the plugin protocol (ADD/DEL/CHECK, cached results).
        .target(name: "CNI", dependencies: ["CSwiftletSyscalls"]),

        // MARK: Images

        /// Content-addressed blobs, layer unpacking, snapshots: the image store.
        .target(name: "ImageStore", dependencies: ["CSwiftletArchive", "CSwiftletSyscalls"]),
        /// SHA-256 (OpenSSL), gzip (zlib) and openat2 for the image store.
        .target(
            name: "CSwiftletArchive",
            linkerSettings: [.linkedLibrary("crypto"), .linkedLibrary("z")]
        ),

        /// Docker Registry HTTP API v2 / OCI distribution client: auth challenges, hosts.toml,
        /// retries, verified downloads into the content store.
        .target(name: "RegistryClient", dependencies: ["ImageStore", "CSwiftletHTTP"]),
        /// libcurl for the registry client and the Kubernetes API client.
        .target(name: "CSwiftletHTTP", linkerSettings: [.linkedLibrary("curl")]),

        // MARK: Kubernetes

        /// The Kubernetes API client: kubeconfig (KUBECONFIG conventions), HTTPS through libcurl
        /// (client certificates, bearer tokens), typed verbs on JSON-backed resources, watches,
        /// metav1.Status errors, retries.
        .target(name: "KubeClient", dependencies: ["CSwiftletHTTP", "CSwiftletTLS", "Yams"]),
        /// Static pods: manifests (YAML/JSON) in a directory, watched with inotify and rescanned,
        /// turned into pods as the kubelet names and annotates them.
        .target(name: "StaticPods", dependencies: ["KubeClient", "Yams"]),
        /// One account of the node's resources: capacity (the machine, or the enclosing cgroup's
        /// limits), reservations, eviction thresholds, allocatable, what each side uses, pressure.
        .target(name: "ResourceLedger"),
        /// The kubelet API (10250): HTTPS, authentication by client certificate or TokenReview,
        /// authorization by SubjectAccessReview, the kubelet's paths, streaming proxied.
        .target(
            name: "KubeletServer",
            dependencies: ["CSwiftletTLS", .product(name: "Logging", package: "swift-log")]
        ),
        /// OpenSSL (Debian libssl-dev) server-side TLS for the kubelet API.
        .target(name: "CSwiftletTLS", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        /// The Kubernetes face: registers the Node, renews its Lease, reports its status, runs the
        /// pods bound to it and the static pods through the runtime, probes, pod status.
        .target(
            name: "KubeNode",
            dependencies: [
                "KubeClient", "StaticPods", "ResourceLedger", "KubeletServer", "GRPCHealthCheck", "SwiftletRuntime", "CRI", "SwiftletConfig",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: Streaming

        /// The streaming server behind Exec/Attach/PortForward: HTTP on loopback, SPDY/3.1 and
        /// WebSocket, the k8s channel and port-forward protocols, single-use tokens.
        .target(
            name: "StreamingServer",
            dependencies: ["CSwiftletStreaming", .product(name: "Logging", package: "swift-log")]
        ),
        /// zlib streams (SPDY header blocks) and sockets for the streaming server.
        .target(name: "CSwiftletStreaming", linkerSettings: [.linkedLibrary("z"), .linkedLibrary("crypto")]),

        // MARK: Agent

        /// Swiftlet's configuration: defaults, the YAML config file, validation.
        .target(name: "SwiftletConfig", dependencies: ["Yams"]),
        /// Log output in the formats operators know (logfmt text as containerd, or JSON).
        .target(name: "SwiftletLogging", dependencies: [.product(name: "Logging", package: "swift-log")]),
        /// The CRI runtime and image services: what each method means on this node.
        .target(
            name: "SwiftletRuntime",
            dependencies: [
                "CRI", "CRIProtobufC", "Containerizer", "ImageStore", "RegistryClient", "CNI", "StreamingServer", "SwiftletConfig",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "swiftlet",
            dependencies: [
                "CRIServer", "SwiftletRuntime", "StreamingServer", "KubeNode", "KubeClient", "SwiftletConfig", "SwiftletLogging", "Containerizer", "ImageStore", "RegistryClient", "CNI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: Tests

        .testTarget(name: "CRIProtobufCTests", dependencies: ["CRI", "CRIProtobufC"]),
        .testTarget(name: "GRPCServerTests", dependencies: ["GRPCServer", "CSwiftletGRPCTestClient"]),
        .testTarget(name: "GRPCHealthCheckTests", dependencies: ["GRPCHealthCheck", "GRPCServer"]),
        .testTarget(name: "SwiftletConfigTests", dependencies: ["SwiftletConfig"]),
        /// Helpers shared by the test targets (temporary directory trees).
        .target(name: "SwiftletTestSupport", path: "Tests/SwiftletTestSupport"),
        .testTarget(name: "ContainerizerTests", dependencies: ["Containerizer", "SwiftletTestSupport"]),
        .testTarget(name: "ImageStoreTests", dependencies: ["ImageStore", "SwiftletTestSupport"]),
        .testTarget(
            name: "StreamingServerTests",
            dependencies: ["StreamingServer", "CSwiftletStreaming", "SwiftletTestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "KubeClientTests", dependencies: ["KubeClient", "SwiftletTestSupport"]),
        .testTarget(name: "StaticPodsTests", dependencies: ["StaticPods", "KubeClient", "SwiftletTestSupport"]),
        .testTarget(name: "ResourceLedgerTests", dependencies: ["ResourceLedger", "SwiftletTestSupport"]),
        .testTarget(
            name: "KubeletServerTests",
            dependencies: ["KubeletServer", "SwiftletTestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "KubeNodeTests",
            dependencies: ["KubeNode", "KubeClient", "ResourceLedger", "StaticPods", "SwiftletTestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "SwiftletLoggingTests", dependencies: ["SwiftletLogging", .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "SwiftletRuntimeTests",
            dependencies: ["SwiftletRuntime", "SwiftletConfig", "CRI", "Containerizer", "ImageStore", "SwiftletTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
