@testable import ResourceLedger
import Testing

@Suite("Quantity: Kubernetes quantity syntax, exact amounts, canonical text")
struct QuantityTests {
    static let canonical: [(String, String)] = [
        ("100m", "100m"), ("1.5", "1500m"), ("2", "2"), ("1Gi", "1Gi"), ("512Mi", "512Mi"), ("1e3", "1e3"),
        ("1k", "1k"), ("1M", "1M"), ("128974848", "128974848"), ("0.5Gi", "512Mi"), ("1000", "1k"),
        ("1500m", "1500m"), ("0.1", "100m"), ("1n", "1n"), ("0.0000000001", "1n"), ("1.5Gi", "1536Mi"),
        ("1023Ki", "1023Ki"), ("1024", "1024"), ("0.5Ki", "512"), ("-1", "-1"), ("+1", "1"), ("0", "0"),
        ("0Mi", "0"), ("1.5e3", "1500"), ("12e-3", "12e-3"), ("0.012", "12m"), ("1E", "1E"), ("1.5k", "1500"), ("8029264Ki", "8029264Ki"),
        (".5", "500m"), ("5.", "5"), ("1Ei", "1Ei"), ("16Ei", "16Ei"), ("2000m", "2"), ("1048576Ki", "1Gi"), ("250u", "250u"),
        // From apimachinery's quantity_test.go.
        ("1024Mi", "1Gi"), ("1000M", "1G"), (".001Ki", "1024m"), (".000001Ki", "1024u"), (".000000001Ki", "1024n"),
        (".000000000001Ki", "2n"), ("1000E", "1e21"), ("5000E", "5e21"), ("1.08", "1080m"), ("1080000000n", "1080m"),
        ("0.001e12", "1e9"), ("1000e-12", "1e-9"), ("1025", "1025"), ("307200Ki", "300Mi"), ("1025024Mi", "1001Gi"),
    ]

    @Test("parses and prints as the API server does", arguments: canonical)
    func canonicalText(input: String, expected: String) throws {
        let quantity = try Quantity(parsing: input)
        #expect(quantity.description == expected)
        // The canonical text parses back to the same amount and prints the same.
        let again = try Quantity(parsing: expected)
        #expect(again == quantity)
        #expect(again.description == expected)
    }

    @Test("value rounds up to whole units, milliValue to thousandths")
    func values() throws {
        #expect(try Quantity(parsing: "100m").value == 1)
        #expect(try Quantity(parsing: "100m").milliValue == 100)
        #expect(try Quantity(parsing: "1.5").value == 2)
        #expect(try Quantity(parsing: "1.5").milliValue == 1500)
        #expect(try Quantity(parsing: "0.5Gi").value == 536_870_912)
        #expect(try Quantity(parsing: "1n").milliValue == 1)
        #expect(try Quantity(parsing: "7Ei").value == 7 << 60)
        #expect(try Quantity(parsing: "1E").value == 1_000_000_000_000_000_000)
        #expect(try Quantity(parsing: "16Ei").value == Int64.max)  // beyond Int64: clamped, amount kept exactly
        #expect(try Quantity(parsing: "16Ei").nanoValue == Int128(1) << 64 * 1_000_000_000)
        #expect(Quantity(milli: 1500).description == "1500m")
        #expect(Quantity.bytes(8_221_966_336).description == "8029264Ki")
        #expect(Quantity(110).description == "110")
    }

    @Test("bad text is refused, naming it", arguments: ["", "abc", "1K", "1.2.3", "Mi", "1 Gi", " 1", "1 ", "1e", "1Gb", "--1", ".", "1e1.5", "1Mi5",
                                                    "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-"])
    func refusesBadText(text: String) {
        #expect {
            _ = try Quantity(parsing: text)
        } throws: { error in
            let error = error as? ResourceLedgerError
            return error?.kind == .invalidQuantity && error?.context == text && error!.description.contains("\"\(text)\"")
        }
    }

    @Test("too large for the exact representation is an error, not a crash")
    func tooLarge() {
        #expect(throws: ResourceLedgerError.self) { try Quantity(parsing: "1e200") }
        #expect(throws: ResourceLedgerError.self) { try Quantity(parsing: String(repeating: "9", count: 60)) }
    }

    @Test("arithmetic keeps the left format, compares amounts, clamps where asked")
    func arithmetic() throws {
        let gi = try Quantity(parsing: "1Gi"), hundredMi = try Quantity(parsing: "100Mi")
        #expect((gi - hundredMi).description == "924Mi")
        #expect((hundredMi - gi) < .zero)
        #expect((hundredMi - gi).clampedAtZero == .zero)
        #expect((Quantity(milli: 1500) + (try Quantity(parsing: "500m"))).description == "2")
        #expect((Quantity.zero + gi).description == "1Gi")  // zero takes the other's format, as Quantity.Add
        #expect(try Quantity(parsing: "1000m") == Quantity(parsing: "1"))
        #expect(Set([try Quantity(parsing: "1000m"), try Quantity(parsing: "1")]).count == 1)
        #expect(try Quantity(parsing: "999m") < Quantity(parsing: "1"))
        var total = Quantity.zero
        total += gi
        total -= hundredMi
        #expect(total.description == "924Mi")
    }

    @Test("resource names and API strings")
    func names() throws {
        #expect(ResourceName.hugePages(pageSizeBytes: 2 << 20) == "hugepages-2Mi")
        #expect(ResourceName.hugePages(pageSizeBytes: 1 << 30) == "hugepages-1Gi")
        #expect(ResourceName.isHugePages("hugepages-2Mi"))
        let list = try ResourceList(parsing: ["cpu": "2", "memory": "8029264Ki", "pods": "110"])
        #expect(list.apiStrings == ["cpu": "2", "memory": "8029264Ki", "pods": "110"])
        #expect(list.adding(["cpu": Quantity(milli: 500)])["cpu"]?.description == "2500m")
        #expect(list.subtractingClamped(["cpu": Quantity(3), "gpu": Quantity(1)]) == ["cpu": .zero, "memory": list["memory"]!, "pods": Quantity(110)])
    }
}
