/// A Kubernetes resource quantity ("100m", "1.5", "512Mi", "1e3", "0.5Gi"), held exactly in
/// nano-units as `Quantity` in k8s.io/apimachinery does, and printed in its canonical form.
///
/// Equality, hashing and ordering compare amounts only; the ``format`` only decides printing.
public struct Quantity: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// How a quantity prints: decimal suffixes (`m`, `k`, `M`…), binary suffixes (`Ki`, `Mi`…),
    /// or a decimal exponent (`1e3`).
    public enum Format: Sendable, Hashable {
        case decimalSI, binarySI, decimalExponent
    }

    /// The exact amount in units of 10⁻⁹ (non-zero amounts finer than that round up to it).
    public let nanoValue: Int128
    /// How the quantity prints.
    public var format: Format

    static let nano: Int128 = 1_000_000_000

    /// A quantity of `nanoValue` × 10⁻⁹ units.
    public init(nanoValue: Int128, format: Format = .decimalSI) {
        self.nanoValue = nanoValue
        self.format = format
    }

    /// A whole number of units (cores, bytes, pods), like `resource.NewQuantity`.
    public init(_ value: Int64, format: Format = .decimalSI) {
        self.init(nanoValue: Int128(value) * Self.nano, format: format)
    }

    /// Thousandths of a unit (millicores), like `resource.NewMilliQuantity`.
    public init(milli: Int64, format: Format = .decimalSI) {
        self.init(nanoValue: Int128(milli) * 1_000_000, format: format)
    }

    /// A number of bytes, printed with binary suffixes.
    public static func bytes(_ count: Int64) -> Quantity { Quantity(count, format: .binarySI) }

    /// Zero.
    public static let zero = Quantity(nanoValue: 0)

    /// The amount in whole units, rounded up (away from zero) as `Quantity.Value()`; clamped to Int64.
    public var value: Int64 { Self.clamp(Self.divideRoundingUp(nanoValue, Self.nano)) }
    /// The amount in thousandths, rounded up as `Quantity.MilliValue()`; clamped to Int64.
    public var milliValue: Int64 { Self.clamp(Self.divideRoundingUp(nanoValue, 1_000_000)) }
    /// Whether the amount is zero.
    public var isZero: Bool { nanoValue == 0 }
    /// This quantity, or zero if it is negative (kubelet's "negative allocatable makes no sense").
    public var clampedAtZero: Quantity { nanoValue < 0 ? Quantity(nanoValue: 0, format: format) : self }

    public static func == (a: Quantity, b: Quantity) -> Bool { a.nanoValue == b.nanoValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(nanoValue) }
    public static func < (a: Quantity, b: Quantity) -> Bool { a.nanoValue < b.nanoValue }

    /// The sum, in `a`'s format (or `b`'s when `a` is zero, as `Quantity.Add`); saturating.
    public static func + (a: Quantity, b: Quantity) -> Quantity {
        let (sum, overflow) = a.nanoValue.addingReportingOverflow(b.nanoValue)
        return Quantity(nanoValue: overflow ? (b.nanoValue > 0 ? .max : .min) : sum, format: a.isZero ? b.format : a.format)
    }

    /// The difference, in `a`'s format (or `b`'s when `a` is zero, as `Quantity.Sub`); may be negative.
    public static func - (a: Quantity, b: Quantity) -> Quantity {
        let (difference, overflow) = a.nanoValue.subtractingReportingOverflow(b.nanoValue)
        return Quantity(nanoValue: overflow ? (b.nanoValue < 0 ? .max : .min) : difference, format: a.isZero ? b.format : a.format)
    }

    public static func += (a: inout Quantity, b: Quantity) { a = a + b }
    public static func -= (a: inout Quantity, b: Quantity) { a = a - b }

    // MARK: Parsing

    private static let decimalSuffixes: [String: Int] = ["n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18]
    private static let binarySuffixes: [String: Int] = ["Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60]

    /// Parses Kubernetes quantity syntax: `[+-]digits[.digits]` then a suffix (`n u m k M G T P E`,
    /// `Ki Mi Gi Ti Pi Ei`, or `e<int>`/`E<int>`). Throws ``ResourceLedgerError`` naming the text.
    public init(parsing text: String) throws(ResourceLedgerError) {
        func fail(_ why: String) -> ResourceLedgerError { ResourceLedgerError(.invalidQuantity, context: text, detail: why) }
        var rest = Substring(text)
        var negative = false
        if let sign = rest.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            rest = rest.dropFirst()
        }
        let integerDigits = rest.prefix { $0.isASCII && $0.isNumber }
        rest = rest.dropFirst(integerDigits.count)
        var fractionDigits = Substring("")
        if rest.first == "." {
            rest = rest.dropFirst()
            fractionDigits = rest.prefix { $0.isASCII && $0.isNumber }
            rest = rest.dropFirst(fractionDigits.count)
        }
        guard !integerDigits.isEmpty || !fractionDigits.isEmpty else {
            throw fail("expected a number, as in 100m, 1.5, 512Mi or 1e3")
        }
        let suffix = String(rest)
        var base2 = false
        var exponent: Int
        var format = Format.decimalSI
        if let e = Self.decimalSuffixes[suffix] {
            exponent = e
        } else if let e = Self.binarySuffixes[suffix] {
            (base2, exponent, format) = (true, e, .binarySI)
        } else if let first = suffix.first, first == "e" || first == "E",
                  let e = Int(suffix.dropFirst()), e.magnitude < 1000 {
            (exponent, format) = (e, .decimalExponent)
        } else {
            throw fail("unknown suffix \"\(suffix)\"")
        }

        // Fraction digits below what can reach the nano place only decide rounding up.
        let kept = base2 ? min(fractionDigits.count, 28) : max(0, min(fractionDigits.count, 9 + exponent))
        let sticky = fractionDigits.dropFirst(kept).contains { $0 != "0" }
        var mantissa: Int128 = 0
        for digit in (integerDigits.drop { $0 == "0" } + fractionDigits.prefix(kept)) {
            let (times10, o1) = mantissa.multipliedReportingOverflow(by: 10)
            let (next, o2) = times10.addingReportingOverflow(Int128(digit.wholeNumberValue!))
            guard !o1, !o2 else { throw fail("too large") }
            mantissa = next
        }
        var numerator = mantissa
        var denominator: Int128 = 1
        var power = 9 - kept
        if base2 {
            guard let scaled = Self.multiply(numerator, Int128(1) << exponent) else { throw fail("too large") }
            numerator = scaled
        } else {
            power += exponent
        }
        if power >= 0 {
            guard let scale = Self.power10(power), let scaled = Self.multiply(numerator, scale) else { throw fail("too large") }
            numerator = scaled
        } else if let scale = Self.power10(-power) {
            denominator = scale
        } else {
            (numerator, denominator) = (numerator == 0 ? 0 : 1, Int128.max)  // rounds up to 1n
        }
        var nanos = numerator / denominator
        if numerator % denominator != 0 || sticky { nanos += 1 }
        if format == .binarySI && nanos < Self.nano { format = .decimalSI }
        self.init(nanoValue: negative ? -nanos : nanos, format: format)
    }

    // MARK: Printing

    /// The canonical text, as the API server prints it: `"0"`, `"1500m"`, `"2"`, `"1k"`,
    /// `"128974848"`, `"512Mi"`, `"8029264Ki"`, `"1e3"`.
    public var description: String {
        if nanoValue == 0 { return "0" }
        let sign = nanoValue < 0 ? "-" : ""
        var magnitude = nanoValue.magnitude
        var format = self.format
        if format == .binarySI {
            if magnitude < 1024 * UInt128(Self.nano) || magnitude % UInt128(Self.nano) != 0 {
                format = .decimalSI
            } else {
                var units = magnitude / UInt128(Self.nano)
                var steps = 0
                while steps < 6 && units % 1024 == 0 { units /= 1024; steps += 1 }
                return sign + String(units) + ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][steps]
            }
        }
        var exponent = -9
        while magnitude % 10 == 0 { magnitude /= 10; exponent += 1 }
        while (exponent % 3 + 3) % 3 != 0 { magnitude *= 10; exponent -= 1 }
        // DecimalSI has no suffix beyond E (10¹⁸): larger amounts print as exponents ("1e21"), as apimachinery.
        if format == .decimalExponent || exponent > 18 {
            return sign + String(magnitude) + (exponent == 0 ? "" : "e\(exponent)")
        }
        let suffix = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"][(exponent + 9) / 3]
        return sign + String(magnitude) + suffix
    }

    // MARK: Arithmetic helpers

    static func divideRoundingUp(_ n: Int128, _ d: Int128) -> Int128 {
        let (q, r) = n.quotientAndRemainder(dividingBy: d)
        return r == 0 ? q : q + (n > 0 ? 1 : -1)
    }

    static func clamp(_ v: Int128) -> Int64 {
        v > Int128(Int64.max) ? .max : v < Int128(Int64.min) ? .min : Int64(v)
    }

    private static func multiply(_ a: Int128, _ b: Int128) -> Int128? {
        let (p, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? nil : p
    }

    private static func power10(_ n: Int) -> Int128? {
        guard n <= 38 else { return nil }
        var p: Int128 = 1
        for _ in 0..<n { p *= 10 }
        return p
    }
}
