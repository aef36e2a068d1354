import CRI
import CRIProtobufC
import Testing

@Suite("protobuf-c codecs")
struct CodecTests {
    @Test("a message with maps, nested messages, enums and repeated fields survives a round trip")
    func roundTrip() throws {
        let config = PodSandboxConfig(
            metadata: PodSandboxMetadata(name: "web", uid: "6f1c", namespace: "default", attempt: 2),
            hostname: "web-0",
            logDirectory: "/var/log/pods/default_web_6f1c",
            dnsConfig: DNSConfig(servers: ["10.96.0.10"], searches: ["svc.cluster.local", "cluster.local"], options: ["ndots:5"]),
            portMappings: [
                PortMapping(protocol: .udp, containerPort: 53, hostPort: 5353, hostIp: "127.0.0.1"),
                PortMapping(protocol: .tcp, containerPort: 80, hostPort: 8080),
            ],
            labels: ["app": "web", "tier": "front", "unicode": "ünïcødé ✓"],
            annotations: ["kubernetes.io/config.source": "file"],
            linux: LinuxPodSandboxConfig(
                cgroupParent: "/kubepods/burstable/pod6f1c",
                securityContext: LinuxSandboxSecurityContext(
                    namespaceOptions: NamespaceOption(network: .pod, pid: .container, ipc: .pod),
                    runAsUser: Int64Value(value: 1000),
                    supplementalGroups: [1, 2, 3, Int64.max, Int64.min]),
                sysctls: ["net.ipv4.ip_unprivileged_port_start": "0"])
        )
        let bytes = config.encode()
        #expect(!bytes.isEmpty)
        let decoded = try PodSandboxConfig.decode(bytes)
        #expect(decoded == config)
    }

    @Test("bytes fields, doubles and unsigned 64-bit values keep every bit")
    func scalars() throws {
        let response = ExecSyncResponse(stdout: [0, 1, 2, 255, 0], stderr: Array("err\n".utf8), exitCode: -1)
        #expect(try ExecSyncResponse.decode(response.encode()) == response)
        let usage = CpuUsage(timestamp: Int64.max, usageCoreNanoSeconds: UInt64Value(value: UInt64.max))
        #expect(try CpuUsage.decode(usage.encode()) == usage)
    }

    @Test("an all-default message encodes to zero bytes and decodes from them")
    func emptyMessage() throws {
        #expect(VersionRequest().encode().isEmpty)
        #expect(try VersionRequest.decode([UInt8]()) == VersionRequest())
        #expect(try StatusResponse.decode([UInt8]()) == StatusResponse())
    }

    @Test("enum values this API does not know are kept as sent")
    func unknownEnumValue() throws {
        let mapping = PortMapping(protocol: .unrecognized(42), containerPort: 1)
        let decoded = try PortMapping.decode(mapping.encode())
        #expect(decoded.protocol == .unrecognized(42))
        #expect(decoded.protocol.rawValue == 42)
    }

    @Test("the wire form is what protobuf specifies (field 1, length-delimited)")
    func wireForm() {
        // VersionRequest{version: "v1"}: tag (1 << 3 | 2) = 0x0a, length 2, "v1".
        #expect(VersionRequest(version: "v1").encode() == [0x0a, 0x02, 0x76, 0x31])
    }

    @Test("truncated and garbage input is an error, not a crash",
          arguments: [[0x0a, 0x05, 0x76], [0xff, 0xff, 0xff, 0xff], [0x0a], [0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]] as [[UInt8]])
    func malformed(bytes: [UInt8]) {
        #expect(throws: WireError.self) { try VersionRequest.decode(bytes) }
    }

    @Test("every message type round-trips its all-default value")
    func catalog() throws {
        #expect(CRIMessageCatalog.all.count > 150)
        for type in CRIMessageCatalog.all {
            let empty = try type.decode([UInt8]())
            #expect(empty.encode().isEmpty, "\(type)")
        }
    }
}
