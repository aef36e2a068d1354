import CSwiftletHTTP
import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP response: status, headers (lowercased names, the last value of each), and the body
/// when it was not streamed elsewhere.
struct HTTPResponse: Sendable {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
}

/// One request through libcurl, run on a dispatch thread so no Swift concurrency thread blocks.
enum HTTP {
    /// Receives streamed body bytes; returning false aborts the transfer.
    final class Sink: @unchecked Sendable {
        let receive: (UnsafeRawBufferPointer) -> Bool
        var collected: [UInt8] = []
        let collect: Bool
        init(collect: Bool, receive: @escaping (UnsafeRawBufferPointer) -> Bool = { _ in true }) {
            self.collect = collect
            self.receive = receive
        }
    }

    static func perform(method: String, url: String, headers: [String], skipVerify: Bool, timeoutSeconds: Int = 0,
                        sink: Sink) async throws(RegistryError) -> HTTPResponse {
        let result: Result<HTTPResponse, RegistryError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: performBlocking(method: method, url: url, headers: headers, skipVerify: skipVerify,
                                                               timeoutSeconds: timeoutSeconds, sink: sink))
            }
        }
        return try result.get()
    }

    private static func performBlocking(method: String, url: String, headers: [String], skipVerify: Bool, timeoutSeconds: Int,
                                        sink: Sink) -> Result<HTTPResponse, RegistryError> {
        var cHeaders = headers.map { strdup($0) }
        defer { for pointer in cHeaders { free(pointer) } }
        var status = 0
        var raw: UnsafeMutablePointer<CChar>?
        var error = [CChar](repeating: 0, count: 512)
        let context = Unmanaged.passRetained(sink)
        defer { context.release() }
        let code = cHeaders.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { headerPointers in
                swh_perform(method, url, headerPointers.baseAddress, headers.count, skipVerify ? 1 : 0, timeoutSeconds, { context, data, length in
                    let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
                    let chunk = UnsafeRawBufferPointer(start: data, count: length)
                    if sink.collect { sink.collected.append(contentsOf: chunk) }
                    return sink.receive(chunk) ? 1 : 0
                }, context.toOpaque(), &status, &raw, &error, error.count)
            }
        }
        let headerText = raw.map { String(cString: $0) } ?? ""
        swh_free(raw)
        if code != 0 {
            return .failure(RegistryError(.transport, context: url, detail: String(cString: error)))
        }
        var parsed: [String: String] = [:]
        for line in headerText.split(whereSeparator: \.isNewline) {  // "\r\n" is one Character
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].drop { $0 == " " }
            parsed[name] = String(value)
        }
        return .success(HTTPResponse(status: status, headers: parsed, body: sink.collected))
    }
}
