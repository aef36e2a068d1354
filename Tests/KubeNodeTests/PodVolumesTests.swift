import CRI
import Foundation
import KubeClient
import SwiftletTestSupport
import Testing
@testable import KubeNode

#if canImport(Glibc)
import Glibc
#endif

/// A pods root in a temporary directory; every pod's volumes are torn down (tmpfs unmounted)
/// before the directory goes.
final class VolumesFixture {
    let tree: TemporaryTree
    var objects = FakeObjects()
    private var uids: Set<String> = []

    init() throws {
        tree = try TemporaryTree(prefix: "kubenode-volumes")
    }

    var root: String { tree.path + "/pods" }
    var volumes: PodVolumes { PodVolumes(podsRoot: root, objects: objects, allocatable: ["cpu": "2", "memory": "4Gi"]) }

    func prepare(_ pod: Pod) async throws {
        uids.insert(pod.uid)
        try await volumes.prepare(pod)
    }

    func volumeDirectory(_ plugin: String, _ name: String, uid: String = "uid-1") -> String {
        "\(root)/\(uid)/volumes/kubernetes.io~\(plugin)/\(name)"
    }

    deinit {
        for uid in uids { volumes.tearDown(podUID: uid) }
    }
}

func link(_ path: String) -> String? { try? FileManager.default.destinationOfSymbolicLink(atPath: path) }

/// The file system type and options of the mount at `path` (from /proc/self/mounts).
func mountEntry(_ path: String) -> (type: String, options: [String])? {
    let mounts = readProcFile("/proc/self/mounts")
    for line in mounts.split(separator: "\n").reversed() {
        let fields = line.split(separator: " ")
        if fields.count > 3, fields[1] == path { return (String(fields[2]), fields[3].split(separator: ",").map(String.init)) }
    }
    return nil
}

func entries(_ path: String) -> Set<String> { Set((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []) }

@Suite struct PodVolumesTests {
    func pod(_ volumes: [Volume], containers: [ContainerSpec] = [makeContainer()], uid: String = "uid-1") -> Pod {
        makePod(uid: uid, containers: containers) { $0.volumes = volumes }
    }

    @Test func emptyDirIsAWorldWritableDirectory() async throws {
        let fixture = try VolumesFixture()
        try await fixture.prepare(pod([Volume(name: "cache", emptyDir: EmptyDirVolumeSource())]))
        let dir = fixture.volumeDirectory("empty-dir", "cache")
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) && isDirectory.boolValue)
        #expect(permissions(dir) == 0o777)
        #expect(!isMountPoint(dir))
        #expect(FileManager.default.fileExists(atPath: "\(fixture.root)/uid-1/containers"))
        #expect(fixture.volumes.path(of: pod([]), volume: Volume(name: "cache", emptyDir: EmptyDirVolumeSource())) == dir)
    }

    @Test func memoryEmptyDirIsATmpfs() async throws {
        let fixture = try VolumesFixture()
        try await fixture.prepare(pod([Volume(name: "shm", emptyDir: EmptyDirVolumeSource(medium: "Memory", sizeLimit: "16Mi"))]))
        let dir = fixture.volumeDirectory("empty-dir", "shm")
        #expect(isMountPoint(dir))
        let entry = try #require(mountEntry(dir))
        #expect(entry.type == "tmpfs")
        #expect(entry.options.contains("size=16384k") && entry.options.contains("nosuid") && entry.options.contains("nodev"))
        // Preparing again does not stack another mount.
        try await fixture.prepare(pod([Volume(name: "shm", emptyDir: EmptyDirVolumeSource(medium: "Memory", sizeLimit: "16Mi"))]))
        fixture.volumes.tearDown(podUID: "uid-1")
        #expect(!FileManager.default.fileExists(atPath: dir))
    }

    @Test func configMapFilesAreWrittenAsTheAtomicWriterDoes() async throws {
        let fixture = try VolumesFixture()
        fixture.objects.add(configMap: "web-config", data: ["index.html": "<h1>hi</h1>", "app.conf": "port=80"])
        fixture.objects.configMaps["ns/web-config"]?.binaryData = ["logo.bin": Data([0, 1, 2, 255]).base64EncodedString()]
        try await fixture.prepare(pod([Volume(name: "config", configMap: ConfigMapVolumeSource(name: "web-config"))]))
        let dir = fixture.volumeDirectory("configmap", "config")
        let data = try #require(link(dir + "/..data"))
        #expect(data.hasPrefix("..") && data != "..data")
        #expect(entries(dir) == ["..data", data, "index.html", "app.conf", "logo.bin"])
        #expect(link(dir + "/index.html") == "..data/index.html")
        #expect(readText(dir + "/index.html") == "<h1>hi</h1>")
        #expect(readText(dir + "/app.conf") == "port=80")
        #expect(FileManager.default.contents(atPath: dir + "/logo.bin") == Data([0, 1, 2, 255]))
        #expect(permissions(dir + "/app.conf") == 0o644)
        #expect(entries(dir + "/" + data) == ["index.html", "app.conf", "logo.bin"])
    }

    @Test func aRefreshSwitchesToNewContentAndDropsStaleKeys() async throws {
        let fixture = try VolumesFixture()
        fixture.objects.add(configMap: "settings", data: ["a": "1", "b": "2"])
        let spec = pod([Volume(name: "settings", configMap: ConfigMapVolumeSource(name: "settings"))])
        try await fixture.prepare(spec)
        let dir = fixture.volumeDirectory("configmap", "settings")
        let first = try #require(link(dir + "/..data"))

        // Unchanged content: nothing is rewritten.
        try await fixture.prepare(spec)
        #expect(link(dir + "/..data") == first)

        // Changed: a new timestamped directory, the old one gone, the stale key's link gone.
        fixture.objects.add(configMap: "settings", data: ["a": "10", "c": "3"])
        try await fixture.prepare(spec)
        let second = try #require(link(dir + "/..data"))
        #expect(second != first)
        #expect(entries(dir) == ["..data", second, "a", "c"])
        #expect(readText(dir + "/a") == "10" && readText(dir + "/c") == "3")
        #expect(!FileManager.default.fileExists(atPath: dir + "/b"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/" + first))
        #expect(link(dir + "/..data_tmp") == nil)
    }

    @Test func itemsPathsAndModes() async throws {
        let fixture = try VolumesFixture()
        fixture.objects.add(configMap: "settings", data: ["a": "1", "b": "2", "c": "3"])
        let source = ConfigMapVolumeSource(name: "settings", items: [KeyToPath(key: "a", path: "nested/dir/a.txt", mode: 0o400),
                                                                     KeyToPath(key: "b", path: "b.txt")],
                                           defaultMode: 0o640)
        try await fixture.prepare(pod([Volume(name: "settings", configMap: source)]))
        let dir = fixture.volumeDirectory("configmap", "settings")
        #expect(entries(dir).subtracting(["..data", link(dir + "/..data") ?? ""]) == ["nested", "b.txt"])
        #expect(link(dir + "/nested") == "..data/nested")
        #expect(readText(dir + "/nested/dir/a.txt") == "1")
        #expect(permissions(dir + "/nested/dir/a.txt") == 0o400)
        #expect(permissions(dir + "/b.txt") == 0o640)
        #expect(!FileManager.default.fileExists(atPath: dir + "/c"))

        // A missing key fails unless the source is optional.
        let missing = ConfigMapVolumeSource(name: "settings", items: [KeyToPath(key: "zzz", path: "z")])
        await #expect(throws: NodeError.self) { try await fixture.prepare(pod([Volume(name: "m", configMap: missing)], uid: "uid-2")) }
        var optional = missing
        optional.optional = true
        try await fixture.prepare(pod([Volume(name: "m", configMap: optional)], uid: "uid-3"))
        #expect(entries(fixture.volumeDirectory("configmap", "m", uid: "uid-3")).count == 2)  // ..data and its directory

        // Paths must stay inside the volume.
        let escaping = ConfigMapVolumeSource(name: "settings", items: [KeyToPath(key: "a", path: "../escape")])
        await #expect(throws: NodeError.self) { try await fixture.prepare(pod([Volume(name: "e", configMap: escaping)], uid: "uid-4")) }
        #expect(!FileManager.default.fileExists(atPath: fixture.root + "/uid-4/volumes/kubernetes.io~configmap/escape"))
    }

    @Test func missingConfigMapsAndSecrets() async throws {
        let fixture = try VolumesFixture()
        let optional = pod([Volume(name: "cm", configMap: ConfigMapVolumeSource(name: "absent", optional: true)),
                            Volume(name: "sec", secret: SecretVolumeSource(secretName: "absent", optional: true))])
        try await fixture.prepare(optional)
        for dir in [fixture.volumeDirectory("configmap", "cm"), fixture.volumeDirectory("secret", "sec")] {
            let data = try #require(link(dir + "/..data"))
            #expect(entries(dir) == ["..data", data])
        }
        do {
            try await fixture.prepare(pod([Volume(name: "cm", configMap: ConfigMapVolumeSource(name: "absent"))], uid: "uid-2"))
            Issue.record("a missing config map was accepted")
        } catch let error as NodeError {
            #expect(error.kind == .podSpec)
            #expect(error.detail == "MountVolume.SetUp failed for volume \"cm\" : configmap \"absent\" not found")
        }
        do {
            try await fixture.prepare(pod([Volume(name: "s", secret: SecretVolumeSource(secretName: "absent"))], uid: "uid-3"))
            Issue.record("a missing secret was accepted")
        } catch let error as NodeError {
            #expect(error.detail == "MountVolume.SetUp failed for volume \"s\" : secret \"absent\" not found")
        }
    }

    @Test func secretsAreOnATmpfsAndTearDownUnmountsThem() async throws {
        let fixture = try VolumesFixture()
        fixture.objects.add(secret: "creds", values: ["password": "s3cr3t", "user": "admin"])
        let spec = pod([Volume(name: "creds", secret: SecretVolumeSource(secretName: "creds", defaultMode: 0o400)),
                        Volume(name: "cache", emptyDir: EmptyDirVolumeSource())])
        try await fixture.prepare(spec)
        let dir = fixture.volumeDirectory("secret", "creds")
        #expect(isMountPoint(dir) && mountEntry(dir)?.type == "tmpfs")
        #expect(readText(dir + "/password") == "s3cr3t" && readText(dir + "/user") == "admin")
        #expect(permissions(dir + "/password") == 0o400)
        #expect(link(dir + "/user") == "..data/user")
        // A second prepare does not mount again.
        try await fixture.prepare(spec)
        let mounts = readProcFile("/proc/self/mounts")
        #expect(mounts.split(separator: "\n").filter { $0.contains(" \(dir) ") }.count == 1)

        #expect(fixture.volumes.podUIDsOnDisk() == ["uid-1"])
        fixture.volumes.tearDown(podUID: "uid-1")
        let after = readProcFile("/proc/self/mounts")
        #expect(!after.contains(fixture.root))
        #expect(!FileManager.default.fileExists(atPath: fixture.root + "/uid-1"))
        #expect(fixture.volumes.podUIDsOnDisk().isEmpty)
        fixture.volumes.tearDown(podUID: "uid-1")  // again: nothing to do
        fixture.volumes.tearDown(podUID: "never-seen")
    }

    @Test func downwardAPIAndProjectedVolumes() async throws {
        let fixture = try VolumesFixture()
        fixture.objects.add(configMap: "kube-root-ca.crt", data: ["ca.crt": "CERT"])
        fixture.objects.add(secret: "extra", values: ["key": "value"])
        fixture.objects.token = "eyJ.token"
        let spec = makePod(labels: ["app": "web"], containers: [makeContainer("app", limits: ["memory": "64Mi"])]) {
            $0.volumes = [
                Volume(name: "info", downwardAPI: DownwardAPIVolumeSource(items: [
                    DownwardAPIVolumeFile(path: "labels", fieldRef: ObjectFieldSelector(fieldPath: "metadata.labels")),
                    DownwardAPIVolumeFile(path: "meta/name", fieldRef: ObjectFieldSelector(fieldPath: "metadata.name"), mode: 0o600),
                    DownwardAPIVolumeFile(path: "mem", resourceFieldRef: ResourceFieldSelector(containerName: "app", resource: "limits.memory",
                                                                                               divisor: "1Mi")),
                ])),
                Volume(name: "kube-api-access", projected: ProjectedVolumeSource(sources: [
                    VolumeProjection(serviceAccountToken: ServiceAccountTokenProjection(expirationSeconds: 3607, path: "token")),
                    VolumeProjection(configMap: ConfigMapProjection(name: "kube-root-ca.crt", items: [KeyToPath(key: "ca.crt", path: "ca.crt")])),
                    VolumeProjection(downwardAPI: DownwardAPIProjection(items: [
                        DownwardAPIVolumeFile(path: "namespace", fieldRef: ObjectFieldSelector(fieldPath: "metadata.namespace")),
                    ])),
                    VolumeProjection(secret: SecretProjection(name: "extra")),
                    VolumeProjection(secret: SecretProjection(name: "absent", optional: true)),
                ], defaultMode: 0o444)),
            ]
        }
        try await fixture.prepare(spec)
        let info = fixture.volumeDirectory("downward-api", "info")
        #expect(readText(info + "/labels") == "app=\"web\"")
        #expect(readText(info + "/meta/name") == "web")
        #expect(permissions(info + "/meta/name") == 0o600 && permissions(info + "/labels") == 0o644)
        #expect(readText(info + "/mem") == "64")
        let projected = fixture.volumeDirectory("projected", "kube-api-access")
        #expect(isMountPoint(projected))
        #expect(readText(projected + "/token") == "eyJ.token")
        #expect(readText(projected + "/ca.crt") == "CERT")
        #expect(readText(projected + "/namespace") == "ns")
        #expect(readText(projected + "/key") == "value")
        #expect(permissions(projected + "/token") == 0o444)
    }

    @Test
    func downwardAPIVolumeUnsetLimitIsAllocatable() async throws {
        let fixture = try VolumesFixture()
        let spec = makePod(containers: [makeContainer("app")]) {
            $0.volumes = [Volume(name: "info", downwardAPI: DownwardAPIVolumeSource(items: [
                DownwardAPIVolumeFile(path: "cpu", resourceFieldRef: ResourceFieldSelector(containerName: "app", resource: "limits.cpu")),
            ]))]
        }
        try await fixture.prepare(spec)
        #expect(readText(fixture.volumeDirectory("downward-api", "info") + "/cpu") != "0")
    }

    @Test func hostPathTypeChecks() async throws {
        let fixture = try VolumesFixture()
        let host = try fixture.tree.directory("host")
        try fixture.tree.write("host/file.txt", "x")
        func check(_ path: String, _ type: String?) async -> NodeError? {
            do {
                try await fixture.prepare(pod([Volume(name: "h", hostPath: HostPathVolumeSource(path: path, type: type))]))
                return nil
            } catch {
                return error as? NodeError
            }
        }
        #expect(await check(host + "/made/deep", "DirectoryOrCreate") == nil)
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: host + "/made/deep", isDirectory: &isDirectory) && isDirectory.boolValue)
        #expect(permissions(host + "/made/deep") == 0o755)
        #expect(await check(host, "Directory") == nil)
        #expect(await check(host + "/file.txt", "File") == nil)
        #expect(await check(host + "/absent", nil) == nil)  // no type: no check
        #expect(await check(host + "/absent", "") == nil)
        #expect(await check(host + "/new.txt", "FileOrCreate") == nil)
        #expect(FileManager.default.fileExists(atPath: host + "/new.txt"))
        #expect(await check("/dev/null", "CharDevice") == nil)

        let notAFile = await check(host, "File")
        #expect(notAFile?.kind == .podSpec)
        #expect(notAFile?.detail == "MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: \(host) is not a file")
        #expect(await check(host + "/absent", "Directory") != nil)
        #expect(await check(host + "/file.txt", "Directory") != nil)
        #expect(await check(host + "/file.txt", "DirectoryOrCreate") != nil)
        #expect(await check(host, "FileOrCreate") != nil)
        #expect(await check(host + "/file.txt", "Socket") != nil)
        #expect(await check(host + "/file.txt", "CharDevice") != nil)
        #expect(await check("/dev/null", "BlockDevice") != nil)
        // hostPath volumes are the host's: tearDown leaves them.
        #expect(fixture.volumes.path(of: pod([]), volume: Volume(name: "h", hostPath: HostPathVolumeSource(path: host))) == host)
        fixture.volumes.tearDown(podUID: "uid-1")
        #expect(FileManager.default.fileExists(atPath: host + "/file.txt"))
    }

    @Test func unsupportedVolumesAreRefused() async throws {
        let fixture = try VolumesFixture()
        do {
            try await fixture.prepare(pod([Volume(name: "data", persistentVolumeClaim: PersistentVolumeClaimVolumeSource(claimName: "c"))]))
            Issue.record("a claim was accepted")
        } catch let error as NodeError {
            #expect(error.kind == .podSpec && error.detail.contains("persistentVolumeClaim"))
        }
        await #expect(throws: NodeError.self) {
            try await fixture.prepare(pod([Volume(name: "nfs", otherSources: ["nfs": ["server": "x", "path": "/"]])]))
        }
    }

    @Test func mountsOfAContainer() async throws {
        let fixture = try VolumesFixture()
        var container = makeContainer()
        container.volumeMounts = [
            VolumeMount(name: "cache", mountPath: "/cache"),
            VolumeMount(name: "cache", readOnly: true, mountPath: "/logs", subPath: "logs/app"),
            VolumeMount(name: "host", mountPath: "/host", mountPropagation: "HostToContainer"),
            VolumeMount(name: "host", mountPath: "/shared", mountPropagation: "Bidirectional"),
        ]
        let host = try fixture.tree.directory("host")
        let spec = pod([Volume(name: "cache", emptyDir: EmptyDirVolumeSource()), Volume(name: "host", hostPath: HostPathVolumeSource(path: host))],
                       containers: [container])
        try await fixture.prepare(spec)
        let mounts = try fixture.volumes.mounts(for: container, pod: spec, restartCount: 0)
        let cache = fixture.volumeDirectory("empty-dir", "cache")
        #expect(mounts.count == 5)
        #expect(mounts[0] == CRI.Mount(containerPath: "/cache", hostPath: cache, readonly: false, propagation: .propagationPrivate))
        #expect(mounts[1] == CRI.Mount(containerPath: "/logs", hostPath: cache + "/logs/app", readonly: true, propagation: .propagationPrivate))
        #expect(FileManager.default.fileExists(atPath: cache + "/logs/app"))
        #expect(mounts[2].hostPath == host && mounts[2].propagation == .propagationHostToContainer)
        #expect(mounts[3].propagation == .propagationBidirectional)
        // The termination message file: fresh per call, world-writable, under containers/<name>/.
        let message = mounts[4]
        #expect(message.containerPath == "/dev/termination-log")
        #expect(message.hostPath.hasPrefix("\(fixture.root)/uid-1/containers/app/"))
        #expect(FileManager.default.fileExists(atPath: message.hostPath) && permissions(message.hostPath) == 0o666)
        let again = try fixture.volumes.mounts(for: container, pod: spec, restartCount: 1)
        #expect(again[4].hostPath != message.hostPath)

        // A custom termination message path; none added when a volume is mounted there.
        var custom = makeContainer("custom")
        custom.terminationMessagePath = "/tmp/done"
        #expect(try fixture.volumes.mounts(for: custom, pod: spec, restartCount: 0).map(\.containerPath) == ["/tmp/done"])
        var covered = makeContainer("covered")
        covered.terminationMessagePath = "/cache"
        covered.volumeMounts = [VolumeMount(name: "cache", mountPath: "/cache")]
        #expect(try fixture.volumes.mounts(for: covered, pod: spec, restartCount: 0).map(\.containerPath) == ["/cache"])
    }

    @Test(arguments: ["../etc", "a/../../b", "/etc", ".."])
    func subPathsMayNotLeaveTheVolume(_ subPath: String) async throws {
        let fixture = try VolumesFixture()
        var container = makeContainer()
        container.volumeMounts = [VolumeMount(name: "cache", mountPath: "/data", subPath: subPath)]
        let spec = pod([Volume(name: "cache", emptyDir: EmptyDirVolumeSource())], containers: [container])
        try await fixture.prepare(spec)
        #expect(throws: NodeError.self) { try fixture.volumes.mounts(for: container, pod: spec, restartCount: 0) }
    }

    @Test func aMountNamingNoVolumeFails() async throws {
        let fixture = try VolumesFixture()
        var container = makeContainer()
        container.volumeMounts = [VolumeMount(name: "nope", mountPath: "/x")]
        do {
            _ = try fixture.volumes.mounts(for: container, pod: pod([], containers: [container]), restartCount: 0)
            Issue.record("a mount of no volume was accepted")
        } catch {
            #expect(error.kind == .podSpec && error.detail.contains("\"nope\""))
        }
    }

    @Test func tearDownRemovesEveryVolume() async throws {
        let fixture = try VolumesFixture()
        fixture.objects.add(configMap: "c", data: ["k": "v"])
        fixture.objects.add(secret: "s", values: ["k": "v"])
        let spec = pod([
            Volume(name: "a", emptyDir: EmptyDirVolumeSource()),
            Volume(name: "m", emptyDir: EmptyDirVolumeSource(medium: "Memory")),
            Volume(name: "c", configMap: ConfigMapVolumeSource(name: "c")),
            Volume(name: "s", secret: SecretVolumeSource(secretName: "s")),
            Volume(name: "p", projected: ProjectedVolumeSource(sources: [VolumeProjection(secret: SecretProjection(name: "s"))])),
        ])
        try await fixture.prepare(spec)
        try "data".write(toFile: fixture.volumeDirectory("empty-dir", "m") + "/f", atomically: false, encoding: .utf8)
        #expect(isMountPoint(fixture.volumeDirectory("secret", "s")) && isMountPoint(fixture.volumeDirectory("projected", "p")))
        fixture.volumes.tearDown(podUID: "uid-1")
        #expect(!FileManager.default.fileExists(atPath: fixture.root + "/uid-1"))
        let mounts = readProcFile("/proc/self/mounts")
        #expect(!mounts.contains(fixture.root))
    }
}
