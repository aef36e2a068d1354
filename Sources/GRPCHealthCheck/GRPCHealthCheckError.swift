import GRPCServer

/// Why a health check gave no serving status: no connection, or a call that did not end OK.
///
/// Its ``description`` is the kubelet's probe output for the same failure (kubelet
/// `pkg/probe/grpc`), so a probe can report it as it is.
public struct GRPCHealthCheckError: Error, Sendable, Equatable, CustomStringConvertible {
    /// At which step the check failed.
    public enum Kind: Sendable, Equatable {
        /// No connection could be made: refused, unreachable, or the name did not resolve.
        /// Reported as soon as the attempt fails, not at the deadline. Code `UNAVAILABLE`.
        case connectFailed
        /// The timeout passed before a connection was ready (nothing answered the TCP or
        /// HTTP/2 handshake). Code `DEADLINE_EXCEEDED`.
        case connectTimeout
        /// The call ended with a status other than OK, including `DEADLINE_EXCEEDED` when
        /// the server did not answer in time and `UNIMPLEMENTED` when it has no health
        /// service; a response that is not a HealthCheckResponse is `INTERNAL`.
        case rpc
        /// The calling task was cancelled. Code `CANCELLED`.
        case cancelled
    }

    /// The gRPC status codes: the server side's (`GRPCServer`), shared.
    public typealias Code = RPCStatus.Code

    /// At which step the check failed.
    public var kind: Kind
    /// The gRPC status code.
    public var code: Code
    /// The status message: the server's, or the gRPC core's (why a connection failed).
    public var message: String
    /// The address checked (`host:port`, an IPv6 host in brackets).
    public var address: String
    /// The check's timeout.
    public var timeout: Duration

    public init(_ kind: Kind, code: Code, message: String, address: String, timeout: Duration) {
        self.kind = kind
        self.code = code
        self.message = message
        self.address = address
        self.timeout = timeout
    }

    /// The kubelet's probe output for this failure, for example
    /// `timeout: failed to connect service "10.0.0.7:9090" within 1s: context deadline exceeded`
    /// or `error: health rpc probe failed: rpc error: code = NotFound desc = unknown service`.
    public var description: String {
        switch kind {
        case .connectTimeout:
            return "timeout: failed to connect service \(goQuoted(address)) within \(goDuration(timeout)): context deadline exceeded"
        case .connectFailed:
            return "error: failed to connect service at \(goQuoted(address)): \(message)"
        case .cancelled:
            return "error: health rpc probe failed: rpc error: code = Canceled desc = context canceled"
        case .rpc:
            switch code {
            case .unimplemented:
                return "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): \(message)"
            case .deadlineExceeded:
                return "timeout: health rpc did not complete within \(goDuration(timeout))"
            default:
                return "error: health rpc probe failed: rpc error: code = \(code.goName) desc = \(message)"
            }
        }
    }
}

/// A string as Go's `%q` prints it, for the printable ASCII addresses probes use.
func goQuoted(_ text: String) -> String {
    var quoted = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": quoted += "\\\""
        case "\\": quoted += "\\\\"
        case "\n": quoted += "\\n"
        case "\t": quoted += "\\t"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                quoted += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            } else {
                quoted.unicodeScalars.append(scalar)
            }
        }
    }
    return quoted + "\""
}

/// A duration as Go's `time.Duration.String` prints it: `1s`, `1.5s`, `500ms`, `2m0s`.
func goDuration(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    let totalNanoseconds = Int128(seconds) * 1_000_000_000 + Int128(attoseconds / 1_000_000_000)
    if totalNanoseconds == 0 { return "0s" }
    let negative = totalNanoseconds < 0
    let nanoseconds = negative ? -totalNanoseconds : totalNanoseconds
    let sign = negative ? "-" : ""
    /// `value / 10^digits` with trailing zeros (and a bare point) dropped.
    func decimal(_ value: Int128, _ digits: Int) -> String {
        var scale: Int128 = 1
        for _ in 0..<digits { scale *= 10 }
        var fraction = String(value % scale)
        fraction = String(repeating: "0", count: digits - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return String(value / scale) + (fraction.isEmpty ? "" : "." + fraction)
    }
    if nanoseconds < 1_000 { return sign + "\(nanoseconds)ns" }
    if nanoseconds < 1_000_000 { return sign + decimal(nanoseconds, 3) + "µs" }
    if nanoseconds < 1_000_000_000 { return sign + decimal(nanoseconds, 6) + "ms" }
    let hours = nanoseconds / 3_600_000_000_000
    let minutes = nanoseconds / 60_000_000_000 % 60
    let secondsPart = decimal(nanoseconds % 60_000_000_000, 9) + "s"
    if hours > 0 { return sign + "\(hours)h\(minutes)m" + secondsPart }
    if minutes > 0 { return sign + "\(minutes)m" + secondsPart }
    return sign + secondsPart
}

extension RPCStatus.Code {
    private static let goNames = [
        "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
        "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
        "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
        "Unauthenticated",
    ]

    /// The name grpc-go prints in `rpc error: code = …` (`Unimplemented`).
    public var goName: String {
        Self.goNames.indices.contains(Int(rawValue)) ? Self.goNames[Int(rawValue)] : "Code(\(rawValue))"
    }
}
