import CSwiftletHTTP
import Foundation

/// One HTTP request for the transport (headers as "Name: value" lines).
struct HTTPRequest: Sendable {
    var method: String
    var url: String
    var headers: [String]
    var body: [UInt8]?
    /// The whole exchange's limit (0: none, for watches).
    var timeoutSeconds: Int
    var connectTimeoutSeconds: Int
}

/// A response: the status, the final header block's headers (lowercased names) and the body
/// (empty when it was streamed to a callback instead).
struct HTTPResponse: Sendable {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
}

/// TLS material for every request of one client.
struct TLSMaterial: Sendable {
    var caPEM: [UInt8]?
    var certificatePEM: [UInt8]?
    var keyPEM: [UInt8]?
    var skipVerify: Bool
}

/// A libcurl transfer (`swh_transfer`) that any thread may cancel; freed when the last
/// reference goes, which is after the blocking call that uses it has returned.
final class Transfer: @unchecked Sendable {
    // The handle is immutable; swh_transfer_cancel is thread-safe by contract.
    private let handle: OpaquePointer

    init() {
        guard let made = swh_transfer_new() else { fatalError("swh_transfer_new: out of memory") }
        handle = made
    }

    deinit { swh_transfer_free(handle) }

    /// Ends the transfer promptly, or makes it end at once if it has not started.
    func cancel() { swh_transfer_cancel(handle) }

    /// Performs the request on the calling thread (never a Swift concurrency thread: see
    /// ``Transport``), handing body bytes to `body` with the response's status; `body` returns
    /// false to stop. A cancelled transfer yields `.cancelled`.
    func performBlocking(_ request: HTTPRequest, tls: TLSMaterial,
                         body: @escaping (Int, UnsafeRawBufferPointer) -> Bool) -> Result<HTTPResponse, KubeAPIError> {
        let arena = CArena()
        var options = swh_request()
        options.method = arena.string(request.method)
        options.url = arena.string(request.url)
        let headerArray = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(request.headers.count, 1))
        defer { headerArray.deallocate() }
        for (index, header) in request.headers.enumerated() { headerArray[index] = arena.string(header) }
        options.headers = UnsafePointer(headerArray)
        options.header_count = request.headers.count
        if let body = request.body { (options.body, options.body_length) = arena.bytes(body) }
        if let ca = tls.caPEM { (options.ca_blob, options.ca_blob_length) = arena.bytes(ca) }
        if let cert = tls.certificatePEM { (options.cert_blob, options.cert_blob_length) = arena.bytes(cert) }
        if let key = tls.keyPEM { (options.key_blob, options.key_blob_length) = arena.bytes(key) }
        options.skip_verify = tls.skipVerify ? 1 : 0
        options.follow_redirects = 0
        options.timeout_seconds = request.timeoutSeconds
        options.connect_timeout_seconds = request.connectTimeoutSeconds
        options.stall_seconds = 0

        let sink = Unmanaged.passRetained(BodySink(transfer: handle, receive: body))
        defer { sink.release() }
        var status = 0
        var rawHeaders: UnsafeMutablePointer<CChar>?
        var error = [CChar](repeating: 0, count: 512)
        let code = swh_transfer_perform(handle, &options, { context, data, length in
            let sink = Unmanaged<BodySink>.fromOpaque(context!).takeUnretainedValue()
            let status = Int(swh_transfer_status(sink.transfer))
            return sink.receive(status, UnsafeRawBufferPointer(start: data, count: length)) ? 1 : 0
        }, sink.toOpaque(), &status, &rawHeaders, &error, error.count)
        let headerText = rawHeaders.map { String(cString: $0) } ?? ""
        swh_free(rawHeaders)
        let message = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        switch code {
        case 0: return .success(HTTPResponse(status: status, headers: Self.parseHeaders(headerText), body: []))
        case -2: return .failure(KubeAPIError(.cancelled, method: request.method, path: request.url, detail: "cancelled"))
        default: return .failure(KubeAPIError(.transport, method: request.method, path: request.url, detail: message))
        }
    }

    static func parseHeaders(_ text: String) -> [String: String] {
        var parsed: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {  // "\r\n" is one Character
            guard let colon = line.firstIndex(of: ":") else { continue }
            parsed[line[..<colon].lowercased()] = String(line[line.index(after: colon)...].drop { $0 == " " })
        }
        return parsed
    }
}

/// The body callback's context.
private final class BodySink {
    let transfer: OpaquePointer
    let receive: (Int, UnsafeRawBufferPointer) -> Bool
    init(transfer: OpaquePointer, receive: @escaping (Int, UnsafeRawBufferPointer) -> Bool) {
        self.transfer = transfer
        self.receive = receive
    }
}

/// C copies of Swift strings and byte arrays that live until the arena goes.
private final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []
    deinit { for pointer in allocations { free(pointer) } }

    func string(_ value: String) -> UnsafePointer<CChar> {
        let copy = strdup(value)!
        allocations.append(copy)
        return UnsafePointer(copy)
    }

    func bytes(_ value: [UInt8]) -> (UnsafePointer<UInt8>, Int) {
        let copy = malloc(max(value.count, 1))!
        value.withUnsafeBytes { copy.copyMemory(from: $0.baseAddress!, byteCount: value.count) }
        allocations.append(copy)
        return (UnsafePointer(copy.assumingMemoryBound(to: UInt8.self)), value.count)
    }
}

/// Runs libcurl's blocking transfers each on a thread of its own — never on the Swift
/// cooperative pool, nor on a dispatch pool whose width long watches could exhaust — and bridges
/// them to async callers with continuations.
enum Transport {
    /// Runs `work` (one blocking transfer) on a new thread that ends with it.
    static func start(_ work: @escaping @Sendable () -> Void) {
        let thread = Thread(block: work)
        thread.name = "kubeclient-http"
        thread.start()
    }

    /// Performs a request and collects the body (for every status). Cancelling the calling task
    /// cancels the transfer.
    static func perform(_ request: HTTPRequest, tls: TLSMaterial) async throws(KubeAPIError) -> HTTPResponse {
        let transfer = Transfer()
        let result: Result<HTTPResponse, KubeAPIError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                start {
                    let collected = Collector()
                    var result = transfer.performBlocking(request, tls: tls) { _, chunk in
                        collected.bytes.append(contentsOf: chunk)
                        return true
                    }
                    if case .success(var response) = result {
                        response.body = collected.bytes
                        result = .success(response)
                    }
                    continuation.resume(returning: result)
                }
            }
        } onCancel: {
            transfer.cancel()
        }
        return try result.get()
    }

    /// A body buffer owned by one blocking transfer.
    private final class Collector: @unchecked Sendable {
        var bytes: [UInt8] = []
    }
}
