/// The outcome of an exec or attach as the error stream carries it: a `metav1.Status` in
/// JSON (protocol v4 and v5), or for older protocols the error's text (nothing on success),
/// worded as the kubelet words them.
enum RemoteCommandStatus {
    /// The bytes to write on the error stream; empty for none.
    static func encode(_ result: Result<Int32?, StreamingError>, command: [String]?, json: Bool) -> [UInt8] {
        switch result {
        case .success(let code) where code == nil || code == 0:
            return json ? Array(#"{"metadata":{},"status":"Success"}"#.utf8) : []
        case .success(let code):
            let exitCode = code ?? 0
            let commandText = "[" + (command ?? []).joined(separator: " ") + "]"
            let message = "command terminated with non-zero exit code: error executing command \(commandText), exit code \(exitCode)"
            guard json else { return Array(message.utf8) }
            return Array((#"{"metadata":{},"status":"Failure","message":"# + quote(message)
                + #","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":""# + "\(exitCode)"
                + #""}]}}"#).utf8)
        case .failure(let error):
            let cause = command == nil
                ? "error attaching to container: \(error.message)"
                : "error executing command in container: \(error.message)"
            let message = "Internal error occurred: \(cause)"
            guard json else { return Array(message.utf8) }
            return Array((#"{"metadata":{},"status":"Failure","message":"# + quote(message)
                + #","reason":"InternalError","details":{"causes":[{"message":"# + quote(cause)
                + #"}]},"code":500}"#).utf8)
        }
    }

    /// A JSON string literal.
    static func quote(_ text: String) -> String {
        var output = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "<": output += "\\u003c"
            case ">": output += "\\u003e"
            case "&": output += "\\u0026"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        return output + "\""
    }
}
