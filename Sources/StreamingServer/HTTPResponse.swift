/// The few HTTP/1.1 responses the streaming server writes before (or instead of) an upgrade.
enum HTTPResponse {
    /// An error with a text body, as Go's `http.Error` writes it; the connection then closes.
    static func error(_ status: Int, _ message: String, extraHeaders: [(String, String)] = []) -> [UInt8] {
        let body = message.hasSuffix("\n") ? message : message + "\n"
        var head = "HTTP/1.1 \(status) \(reason(status))\r\n"
        for (name, value) in extraHeaders { head += "\(name): \(value)\r\n" }
        head += "Content-Type: text/plain; charset=utf-8\r\n"
        head += "X-Content-Type-Options: nosniff\r\n"
        head += "Content-Length: \(body.utf8.count)\r\n"
        head += "Connection: close\r\n\r\n"
        return Array((head + body).utf8)
    }

    /// `101 Switching Protocols` with the given fields.
    static func switchingProtocols(_ headers: [(String, String)]) -> [UInt8] {
        var head = "HTTP/1.1 101 Switching Protocols\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        return Array(head.utf8)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 101: "Switching Protocols"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        default: "Status \(status)"
        }
    }
}
