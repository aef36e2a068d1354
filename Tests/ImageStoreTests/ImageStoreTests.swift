import Foundation
import SwiftletTestSupport
import Testing
@testable import ImageStore

/// A temporary directory removed at the end.
typealias Scratch = TemporaryTree

/// Runs a command; returns its standard output.
@discardableResult
func run(_ arguments: [String], in directory: String? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw POSIXError(.EINVAL) }
    return output
}

func stat(_ path: String) -> stat? {
    var info = Glibc.stat()
    return lstat(path, &info) == 0 ? info : nil
}

@Suite("digests and content")
struct ContentTests {
    @Test("SHA-256 digests are the standard ones")
    func digests() {
        #expect(Digest.of(Array("abc".utf8)).description == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest.of([UInt8]()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Digest("sha256:ABC") == nil)
        #expect(Digest("md5:" + String(repeating: "0", count: 64)) == nil)
    }

    @Test("a blob is stored only when its digest and size match; nothing is left of a bad one")
    func ingest() throws {
        let scratch = try Scratch()
        let store = try ContentStore(root: scratch.path)
        let bytes = Array("hello layer".utf8)
        let digest = Digest.of(bytes)
        #expect(try store.ingest(bytes: bytes, expected: digest) == Int64(bytes.count))
        #expect(try store.read(digest) == bytes)
        let tampered = Array("hello LAYER".utf8)
        let other = Digest.of(Array("something else".utf8))
        #expect(throws: ImageStoreError.self) { try store.ingest(bytes: tampered, expected: other) }
        #expect(throws: ImageStoreError.self) {
            try store.ingest(ByteArrayStream(tampered), expected: Digest.of(tampered), size: 3)
        }
        #expect(!store.contains(other))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path + "/content/ingest").isEmpty)
        #expect(store.digests() == [digest])
    }
}

@Suite("layers")
struct LayerTests {
    /// A layer built by GNU tar from a directory tree, as image builders produce them.
    func layer(_ scratch: Scratch, _ name: String, gzip: Bool = true, setup: (String) throws -> Void) throws -> String {
        let source = scratch.path + "/src-" + name
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try setup(source)
        let archive = scratch.path + "/" + name + (gzip ? ".tar.gz" : ".tar")
        try run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=user.*", gzip ? "-czf" : "-cf", archive, "-C", source, "."])
        return archive
    }

    @Test("flatten: files, modes, owners, symlinks, hard links, devices, long names, then whiteouts and an opaque directory")
    func flatten() throws {
        let scratch = try Scratch()
        let longName = String(repeating: "n", count: 150)
        let first = try layer(scratch, "one") { root in
            try FileManager.default.createDirectory(atPath: root + "/etc/conf.d", withIntermediateDirectories: true)
            try "root:x:0:0\n".write(toFile: root + "/etc/passwd", atomically: false, encoding: .utf8)
            try "a\n".write(toFile: root + "/etc/conf.d/a", atomically: false, encoding: .utf8)
            try "b\n".write(toFile: root + "/etc/conf.d/b", atomically: false, encoding: .utf8)
            try "#!/bin/sh\n".write(toFile: root + "/tool", atomically: false, encoding: .utf8)
            chown(root + "/tool", 1000, 2000)  // before chmod: chown clears set-id bits
            chmod(root + "/tool", 0o4755)
            try FileManager.default.createSymbolicLink(atPath: root + "/link", withDestinationPath: "etc/passwd")
            link(root + "/etc/passwd", root + "/hard")
            mknod(root + "/null", S_IFCHR | 0o666, makedev(1, 3))
            mkfifo(root + "/fifo", 0o644)
            try "long\n".write(toFile: root + "/" + longName, atomically: false, encoding: .utf8)
            try run(["setfattr", "-n", "user.swiftlet", "-v", "yes", root + "/etc/passwd"])
        }
        let second = try layer(scratch, "two", gzip: false) { root in
            try FileManager.default.createDirectory(atPath: root + "/etc/conf.d", withIntermediateDirectories: true)
            try "".write(toFile: root + "/.wh.tool", atomically: false, encoding: .utf8)
            try "".write(toFile: root + "/etc/conf.d/.wh..wh..opq", atomically: false, encoding: .utf8)
            try "c\n".write(toFile: root + "/etc/conf.d/c", atomically: false, encoding: .utf8)
        }
        let target = scratch.path + "/rootfs"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let applier = LayerApplier(root: target, mode: .flatten)
        let summary = try applier.apply(GzipStream(try FileStream(path: first), name: "one"), name: "one")
        #expect(summary.entries >= 10)
        let tool = try #require(stat(target + "/tool"))
        #expect(tool.st_uid == 1000 && tool.st_gid == 2000 && tool.st_mode & 0o7777 == 0o4755)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: target + "/link") == "etc/passwd")
        #expect(stat(target + "/hard")!.st_ino == stat(target + "/etc/passwd")!.st_ino)
        #expect(stat(target + "/null")!.st_mode & S_IFMT == S_IFCHR && stat(target + "/null")!.st_rdev == makedev(1, 3))
        #expect(stat(target + "/fifo")!.st_mode & S_IFMT == S_IFIFO)
        #expect(FileManager.default.fileExists(atPath: target + "/" + longName))
        #expect(try run(["getfattr", "--only-values", "-n", "user.swiftlet", target + "/etc/passwd"]) == "yes")

        _ = try applier.apply(GzipStream(try FileStream(path: second), name: "two"), name: "two")
        #expect(!FileManager.default.fileExists(atPath: target + "/tool"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: target + "/etc/conf.d").sorted() == ["c"])
        #expect(FileManager.default.fileExists(atPath: target + "/etc/passwd"))
    }

    @Test("overlay: whiteouts become 0/0 character devices, opaque directories get the overlay xattr")
    func overlay() throws {
        let scratch = try Scratch()
        let archive = try layer(scratch, "wh") { root in
            try FileManager.default.createDirectory(atPath: root + "/dir", withIntermediateDirectories: true)
            try "".write(toFile: root + "/.wh.gone", atomically: false, encoding: .utf8)
            try "".write(toFile: root + "/dir/.wh..wh..opq", atomically: false, encoding: .utf8)
        }
        let target = scratch.path + "/layer"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        _ = try LayerApplier(root: target, mode: .overlay).apply(GzipStream(try FileStream(path: archive), name: "wh"), name: "wh")
        let whiteout = try #require(stat(target + "/gone"))
        #expect(whiteout.st_mode & S_IFMT == S_IFCHR && whiteout.st_rdev == 0)
        #expect(try run(["getfattr", "--only-values", "-n", "trusted.overlay.opaque", target + "/dir"]) == "y")
    }

    /// A tar crafted by Python's tarfile, which writes whatever names it is given.
    func crafted(_ scratch: Scratch, _ script: String) throws -> String {
        let archive = scratch.path + "/crafted.tar"
        let program = scratch.path + "/craft.py"
        try """
            import io, tarfile
            t = tarfile.open('\(archive)', 'w')
            def add(name, data=b'', kind=tarfile.REGTYPE, link=''):
                info = tarfile.TarInfo(name); info.type = kind; info.linkname = link; info.size = len(data)
                t.addfile(info, io.BytesIO(data) if data else None)
            \(script)
            t.close()
            """.write(toFile: program, atomically: false, encoding: .utf8)
        try run(["python3", program])
        return archive
    }

    @Test("an entry climbing out with .. is refused")
    func dotDot() throws {
        let scratch = try Scratch()
        let archive = try crafted(scratch, "add('ok', b'fine'); add('../escaped', b'bad')")
        let target = scratch.path + "/rootfs"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        #expect {
            _ = try LayerApplier(root: target, mode: .flatten).apply(try FileStream(path: archive), name: "evil")
        } throws: { ($0 as? ImageStoreError)?.kind == .unsafePath }
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/escaped"))
    }

    @Test("a symlink planted by the layer cannot redirect later entries outside the root")
    func symlinkEscape() throws {
        let scratch = try Scratch()
        let outside = scratch.path + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        // The layer also holds a directory at the symlink's path, so the link resolves — inside.
        let archive = try crafted(scratch, "add('\(outside.dropFirst())', kind=tarfile.DIRTYPE); add('evil', kind=tarfile.SYMTYPE, link='\(outside)'); add('evil/planted', b'gotcha'); add('up', kind=tarfile.SYMTYPE, link='../../..'); add('up/tmp/also', b'x')")
        let target = scratch.path + "/rootfs"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        _ = try LayerApplier(root: target, mode: .flatten).apply(try FileStream(path: archive), name: "evil")
        #expect(!FileManager.default.fileExists(atPath: outside + "/planted"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/also"))
        // Both writes landed inside the root, where the symlinks resolve when confined to it.
        #expect(FileManager.default.fileExists(atPath: target + outside + "/planted"))
        #expect(FileManager.default.fileExists(atPath: target + "/tmp/also"))
    }

    @Test("corrupt gzip and truncated tar are errors, not crashes")
    func corrupt() throws {
        let scratch = try Scratch()
        let archive = try layer(scratch, "c") { root in try "data".write(toFile: root + "/f", atomically: false, encoding: .utf8) }
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: archive)))
        bytes[bytes.count / 2] ^= 0xff
        let target = scratch.path + "/rootfs"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        #expect(throws: ImageStoreError.self) {
            _ = try LayerApplier(root: target, mode: .flatten).apply(try GzipStream(ByteArrayStream(bytes), name: "c"), name: "c")
        }
        #expect(throws: ImageStoreError.self) {
            _ = try LayerApplier(root: target, mode: .flatten).apply(try GzipStream(ByteArrayStream(Array(bytes.prefix(40))), name: "c"), name: "c")
        }
    }
}

/// glibc's makedev (a macro Swift does not import).
func makedev(_ major: UInt32, _ minor: UInt32) -> dev_t {
    dev_t((UInt64(major & 0xfff) << 8) | UInt64(minor & 0xff) | (UInt64(minor & ~0xff) << 12) | (UInt64(major & ~0xfff) << 32))
}

@Suite("references and manifests")
struct ReferenceTests {
    @Test("references normalize as containerd normalizes them", arguments: [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest"),
        ("quay.io/team/app:v1", "quay.io/team/app:v1"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("registry.local/a/b/c@sha256:" + String(repeating: "a", count: 64), "registry.local/a/b/c@sha256:" + String(repeating: "a", count: 64)),
    ])
    func normalize(text: String, normalized: String) {
        #expect(ImageReference(text)?.description == normalized)
    }

    @Test("invalid references are refused", arguments: ["", "UPPER/case", "a//b", "name:", "name@sha256:short", "a:b:c/d"])
    func invalid(text: String) {
        #expect(ImageReference(text) == nil)
    }

    @Test("Docker schema 1 is refused with a clear error")
    func schema1() throws {
        let scratch = try Scratch()
        let store = try ImageStore(root: scratch.path)
        let bytes = Array(#"{"schemaVersion": 1, "name": "old", "tag": "v1", "fsLayers": []}"#.utf8)
        let digest = Digest.of(bytes)
        try store.content.ingest(bytes: bytes, expected: digest)
        #expect {
            try store.tag("old:v1", target: Descriptor(mediaType: MediaType.dockerSchema1Signed, digest: digest, size: Int64(bytes.count)))
        } throws: { error in
            (error as? ImageStoreError)?.description.contains("schema 1") == true
        }
    }

    @Test("chain ids follow the OCI definition")
    func chainIDs() {
        let a = Digest.of(Array("a".utf8)), b = Digest.of(Array("b".utf8))
        let chain = Digest.chainIDs([a, b])
        #expect(chain[0] == a)
        #expect(chain[1] == Digest.of(Array("\(a) \(b)".utf8)))
    }
}
