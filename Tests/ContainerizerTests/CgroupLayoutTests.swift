@testable import Containerizer
import Foundation
import SwiftletTestSupport
import Testing

@Suite("cgroup layout (from mountinfo fixtures and a file tree, not the live hierarchy)")
struct CgroupLayoutTests {
    // As on the test machines: v1 controllers, and cgroup2 with only hugetlb.
    static let hybrid = """
        25 31 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
        26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
        28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
        29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
        30 25 0:27 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
        """

    @Test("hybrid: v1 controllers at their mounts, cgroup2 with what its root offers")
    func hybridLayout() {
        let layout = CgroupLayout.parse(mountinfo: Self.hybrid) { path in
            path == "/sys/fs/cgroup/unified/cgroup.controllers" ? "hugetlb\n" : nil
        }
        #expect(layout.v1["cpu"] == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(layout.v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct")
        #expect(layout.v1["memory"] == "/sys/fs/cgroup/memory")
        #expect(layout.v2Mount == "/sys/fs/cgroup/unified")
        #expect(layout.v2Controllers == ["hugetlb"])
        #expect(layout.missingControllers.isEmpty)
    }

    @Test("pure cgroup2: controllers come from the root's cgroup.controllers file")
    func unified() throws {
        let tree = try TemporaryTree()
        try tree.write("cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
        let mountinfo = "30 1 0:26 / \(tree.path)/cgroup rw,nosuid - cgroup2 cgroup2 rw\n"
        let layout = CgroupLayout.parse(mountinfo: mountinfo, readFile: CgroupLayout.readFile)
        #expect(layout.v2Mount == tree.path + "/cgroup")
        #expect(layout.v2Controllers == ["cpuset", "cpu", "io", "memory", "pids"])
        #expect(layout.missingControllers.isEmpty)
    }

    @Test("a controller on neither version is reported missing")
    func missing() {
        let mountinfo = "29 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        let layout = CgroupLayout.parse(mountinfo: mountinfo) { _ in nil }
        #expect(layout.missingControllers == ["cpu", "pids"])
    }

    @Test("mount points with escaped spaces are unescaped")
    func escapes() {
        #expect(CgroupLayout.unescapeMountPath("/mnt/with\\040space") == "/mnt/with space")
        #expect(CgroupLayout.unescapeMountPath("/plain") == "/plain")
    }

    @Test("the live machine's mountinfo parses (read from /proc/self/mountinfo)")
    func liveMountinfo() {
        let layout = CgroupLayout.current()
        #expect(layout.v2Mount != nil || !layout.v1.isEmpty)
    }
}
