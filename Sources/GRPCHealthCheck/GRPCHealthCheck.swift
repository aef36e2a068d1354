/// The client side of the gRPC health checking protocol (`grpc.health.v1.Health/Check`), as
/// the kubelet's gRPC probes use it: plain-text gRPC to `host:port`, one Check call with the
/// service name, healthy only on `SERVING`.
///
/// ```swift
/// let status = try await GRPCHealthCheck.check(host: "10.88.0.7", port: 9090, service: "", timeout: .seconds(1))
/// // or, with the kubelet's verdict and probe output:
/// let result = await GRPCHealthCheck.probe(host: "10.88.0.7", port: 9090, service: "", timeout: .seconds(1))
/// ```
///
/// Each check dials a connection of its own (no connection or reconnect backoff is shared
/// with earlier checks) and closes it when done. The blocking gRPC core work runs on a thread
/// of its own, never on the Swift cooperative pool; cancelling the calling task cancels the
/// connection attempt or the call.
public enum GRPCHealthCheck {
    /// The serving status (`UNKNOWN`, `SERVING`, `NOT_SERVING`, `SERVICE_UNKNOWN`) a server
    /// reports; raw values are the protocol's enum names, as the kubelet prints them.
    public enum ServingStatus: String, Sendable, CaseIterable {
        case unknown = "UNKNOWN"
        case serving = "SERVING"
        case notServing = "NOT_SERVING"
        /// Meant for Watch; some servers answer Check with it for a service they do not know
        /// (standard servers end the call with `NOT_FOUND` instead).
        case serviceUnknown = "SERVICE_UNKNOWN"

        /// The status for its wire number; numbers this version does not know are `UNKNOWN`.
        public init(wireValue: Int32) {
            switch wireValue {
            case 1: self = .serving
            case 2: self = .notServing
            case 3: self = .serviceUnknown
            default: self = .unknown
            }
        }

        /// The wire number (`SERVING` = 1).
        public var wireValue: Int32 {
            switch self {
            case .unknown: 0
            case .serving: 1
            case .notServing: 2
            case .serviceUnknown: 3
            }
        }
    }

    /// Calls Check on `host:port` (plain text, no TLS) for `service` ("" = the server overall), within `timeout`.
    ///
    /// The timeout covers connecting and the call, as the kubelet's does. A connection that
    /// cannot be made (refused, unreachable, unresolvable) fails at once rather than at the
    /// deadline.
    ///
    /// - Parameters:
    ///   - host: an IP address (IPv6 without brackets) or a DNS name.
    ///   - userAgent: leads the `user-agent` header (the kubelet sends
    ///     `kube-probe/<major>.<minor>`); nil sends the gRPC core's own.
    /// - Returns: the status the server reported, whatever it is; only ``ServingStatus/serving``
    ///   means healthy.
    /// - Throws: ``GRPCHealthCheckError`` when there is no status: no connection, a call that
    ///   did not end OK (`NOT_FOUND` for a service the server does not know, `UNIMPLEMENTED`
    ///   without a health service, `DEADLINE_EXCEEDED`), a malformed response, cancellation.
    public static func check(
        host: String, port: Int, service: String, timeout: Duration, userAgent: String? = nil
    ) async throws(GRPCHealthCheckError) -> ServingStatus {
        let address = joinHostPort(host, port)
        func failure(_ kind: GRPCHealthCheckError.Kind, _ code: GRPCHealthCheckError.Code, _ message: String) -> GRPCHealthCheckError {
            GRPCHealthCheckError(kind, code: code, message: message, address: address, timeout: timeout)
        }
        guard (1...65535).contains(port) else {
            throw failure(.connectFailed, .invalidArgument, "invalid port \(port)")
        }
        guard !Task.isCancelled else {
            throw failure(.cancelled, .cancelled, "cancelled")
        }
        let call = UnaryCall(
            target: "dns:///" + address, method: HealthMessages.checkMethod,
            request: HealthMessages.encodeRequest(service: service), userAgent: userAgent
        )
        let outcome: UnaryCall.Outcome
        switch await call.run(timeout: timeout) {
        case .success(let result): outcome = result
        case .failure(.thread(let errno)): throw failure(.rpc, .resourceExhausted, "cannot start a thread for the call: errno \(errno)")
        case .failure(.outOfMemory): throw failure(.rpc, .resourceExhausted, "out of memory for the call")
        }
        let code = GRPCHealthCheckError.Code(rawValue: outcome.code)
        switch outcome.kind {
        case .connectFailed: throw failure(.connectFailed, code, outcome.details)
        case .connectTimeout: throw failure(.connectTimeout, code, outcome.details)
        case .cancelled: throw failure(.cancelled, code, outcome.details)
        case .completed: break
        }
        guard code == .ok else { throw failure(.rpc, code, outcome.details) }
        guard let response = outcome.response else {
            throw failure(.rpc, .internal, "received no response message from non-streaming RPC")
        }
        do {
            return ServingStatus(wireValue: try HealthMessages.decodeResponse(response))
        } catch {
            throw failure(.rpc, .internal, "grpc: failed to unmarshal the received message: \(error)")
        }
    }

    /// A probe's verdict and output, as the kubelet's gRPC prober gives them.
    public struct ProbeResult: Sendable, Equatable {
        /// Whether the server reported `SERVING`.
        public var success: Bool
        /// `service healthy`, `service unhealthy (responded with "NOT_SERVING")`, or the
        /// failure's ``GRPCHealthCheckError/description``.
        public var output: String

        public init(success: Bool, output: String) {
            self.success = success
            self.output = output
        }
    }

    /// Runs ``check(host:port:service:timeout:userAgent:)`` and judges it as the kubelet does:
    /// success only on `SERVING`, every failure a probe failure with the kubelet's message.
    public static func probe(
        host: String, port: Int, service: String, timeout: Duration, userAgent: String? = nil
    ) async -> ProbeResult {
        do {
            let status = try await check(host: host, port: port, service: service, timeout: timeout, userAgent: userAgent)
            guard status == .serving else {
                return ProbeResult(success: false, output: "service unhealthy (responded with \"\(status.rawValue)\")")
            }
            return ProbeResult(success: true, output: "service healthy")
        } catch {
            return ProbeResult(success: false, output: error.description)
        }
    }

    /// `host:port`, with an IPv6 host in brackets (Go's `net.JoinHostPort`).
    static func joinHostPort(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
