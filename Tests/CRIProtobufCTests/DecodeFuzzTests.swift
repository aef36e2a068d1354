import CRI
import CRIProtobufC
import Testing

/// A seeded random driver over the decode path (protobuf-c unpack and the Swift
/// conversion): mutated valid messages and random bytes, decoded as every message type.
/// Whatever decodes must re-encode and decode to the same value. Runs under
/// AddressSanitizer in CI (`swift test --sanitize=address`).
@Suite("decode fuzzing")
struct DecodeFuzzTests {
    /// xorshift64*: deterministic, so a failure names a seed that reproduces it.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
        mutating func next() -> UInt64 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 0x2545_F491_4F6C_DD1D
        }
    }

    static let seeds: [[UInt8]] = [
        PodSandboxConfig(
            metadata: PodSandboxMetadata(name: "a", uid: "b", namespace: "c", attempt: 1),
            portMappings: [PortMapping(protocol: .sctp, containerPort: 1, hostPort: 2, hostIp: "::1")],
            labels: ["k": "v", "k2": "v2"],
            linux: LinuxPodSandboxConfig(sysctls: ["a": "b"])
        ).encode(),
        CreateContainerRequest(
            podSandboxId: "sandbox",
            config: ContainerConfig(
                metadata: ContainerMetadata(name: "c", attempt: 3),
                image: ImageSpec(image: "busybox", annotations: ["x": "y"]),
                command: ["/bin/sh", "-c", "echo hi"],
                envs: [KeyValue(key: "A", value: "1")],
                mounts: [Mount(containerPath: "/data", hostPath: "/tmp", readonly: true, propagation: .propagationHostToContainer)],
                linux: LinuxContainerConfig(resources: LinuxContainerResources(cpuPeriod: 100000, cpuQuota: 50000, memoryLimitInBytes: 1 << 30))
            )
        ).encode(),
        ExecSyncResponse(stdout: [1, 2, 3], stderr: [], exitCode: 7).encode(),
        StatusResponse(status: RuntimeStatus(conditions: [RuntimeCondition(type: "RuntimeReady", status: true)]), info: ["a": "{}"]).encode(),
    ]

    static func mutate(_ input: [UInt8], using random: inout Generator) -> [UInt8] {
        var bytes = input
        switch random.next() % 5 {
        case 0 where !bytes.isEmpty:  // flip bits
            for _ in 0...(random.next() % 4) {
                let index = Int(random.next() % UInt64(bytes.count))
                bytes[index] ^= UInt8(truncatingIfNeeded: 1 << (random.next() % 8))
            }
        case 1 where !bytes.isEmpty:  // truncate
            bytes.removeLast(Int(random.next() % UInt64(bytes.count)) + 1)
        case 2:  // insert random bytes
            let index = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count + 1))
            let extra = (0..<(random.next() % 8 + 1)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            bytes.insert(contentsOf: extra, at: index)
        case 3 where !bytes.isEmpty:  // overwrite a byte with a boundary value
            let index = Int(random.next() % UInt64(bytes.count))
            bytes[index] = [0x00, 0x7f, 0x80, 0xff][Int(random.next() % 4)]
        default:  // pure noise
            bytes = (0..<(random.next() % 64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        }
        return bytes
    }

    @Test("mutated and random input never crashes the decoder, and what decodes round-trips",
          arguments: [1, 2, 3, 4] as [UInt64])
    func fuzz(seed: UInt64) throws {
        var random = Generator(seed: seed)
        let types = CRIMessageCatalog.all
        var decodedCount = 0
        for iteration in 0..<5000 {
            let base = Self.seeds[Int(random.next() % UInt64(Self.seeds.count))]
            let input = Self.mutate(base, using: &random)
            let type = types[Int(random.next() % UInt64(types.count))]
            guard let message = try? type.decode(input) else { continue }
            decodedCount += 1
            let again = message.encode()
            let reparsed = try type.decode(again)
            // Encoding is deterministic (map entries in key order), so equal values give equal bytes.
            #expect(reparsed.encode() == again, "seed \(seed) iteration \(iteration) type \(type)")
        }
        #expect(decodedCount > 0)
    }
}
