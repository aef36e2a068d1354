import Yams

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads Swiftlet's YAML config file.
public enum ConfigFile {
    /// Parses `text` (the file at `path`, named in errors) over the defaults. Unknown keys are
    /// errors, so a misspelt key does not silently keep its default.
    public static func parse(_ text: String, path: String) throws(ConfigError) -> SwiftletConfiguration {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(.syntax, path: path, detail: "\(error)")
        }
        guard let node else { return SwiftletConfiguration() }  // an empty file
        guard let mapping = node.mapping else {
            throw ConfigError(.syntax, path: path, detail: "the top level must be a mapping of keys to values")
        }
        for key in mapping.keys {
            guard let name = key.string, SwiftletConfiguration.keys.contains(name) else {
                let known = SwiftletConfiguration.keys.sorted().joined(separator: ", ")
                throw ConfigError(.unknownKey, path: path, key: key.string ?? "\(key)", detail: "known keys: \(known)")
            }
        }
        let configuration: SwiftletConfiguration
        do {
            configuration = try YAMLDecoder().decode(SwiftletConfiguration.self, from: node)
        } catch let error as DecodingError {
            throw ConfigError.from(error, path: path)
        } catch {
            throw ConfigError(.syntax, path: path, detail: "\(error)")
        }
        do {
            try configuration.validate()
        } catch {
            var error = error
            error.path = path
            throw error
        }
        return configuration
    }

    /// Loads `path`. A missing file is an error when `required`, else the defaults.
    public static func load(_ path: String, required: Bool) throws(ConfigError) -> SwiftletConfiguration {
        guard let file = fopen(path, "r") else {
            let code = errno
            if code == ENOENT && !required { return SwiftletConfiguration() }
            throw ConfigError(.unreadable, path: path, detail: String(cString: strerror(code)), errno: code)
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count > 0 { bytes.append(contentsOf: buffer[0..<count]) }
            if count < buffer.count {
                if ferror(file) != 0 {
                    let code = errno
                    throw ConfigError(.unreadable, path: path, detail: String(cString: strerror(code)), errno: code)
                }
                break
            }
        }
        return try parse(String(decoding: bytes, as: UTF8.self), path: path)
    }
}

/// A config file that cannot be used, with where and why.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case unreadable, syntax, unknownKey, invalidValue
    }

    public var kind: Kind
    /// The file, when the error is in one.
    public var path: String?
    /// The key concerned, when there is one.
    public var key: String?
    public var detail: String
    public var errno: Int32?

    public init(_ kind: Kind, path: String? = nil, key: String? = nil, detail: String, errno: Int32? = nil) {
        self.kind = kind
        self.path = path
        self.key = key
        self.detail = detail
        self.errno = errno
    }

    public var description: String {
        let place = path.map { "config \($0)" } ?? "configuration"
        switch kind {
        case .unreadable: return "\(place): cannot read: \(detail)"
        case .syntax: return "\(place): \(detail)"
        case .unknownKey: return "\(place): unknown key \"\(key ?? "")\" (\(detail))"
        case .invalidValue: return "\(place): invalid \(key ?? "value"): \(detail)"
        }
    }

    static func from(_ error: DecodingError, path: String) -> ConfigError {
        func keyPath(_ codingPath: [any CodingKey]) -> String {
            codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context):
            return ConfigError(.invalidValue, path: path, key: keyPath(context.codingPath), detail: "expected \(type)")
        case .valueNotFound(_, let context), .keyNotFound(_, let context):
            return ConfigError(.invalidValue, path: path, key: keyPath(context.codingPath), detail: context.debugDescription)
        case .dataCorrupted(let context):
            return ConfigError(.invalidValue, path: path, key: keyPath(context.codingPath), detail: context.debugDescription)
        @unknown default:
            return ConfigError(.syntax, path: path, detail: "\(error)")
        }
    }
}
