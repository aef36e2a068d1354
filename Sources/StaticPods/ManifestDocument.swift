import Foundation
import KubeClient
import Yams

/// A manifest file's text as a JSON document: JSON directly, anything else through YAML (YAML 1.1
/// scalars as sigs.k8s.io/yaml reads them: `0644` is octal, `yes`/`no` are booleans; a quoted
/// scalar is always a string; timestamps stay strings).
enum ManifestDocument {
    static func parse(_ bytes: [UInt8], path: String) throws(StaticPodError) -> JSONValue {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw StaticPodError(path: path, reason: .unparsable, message: "not UTF-8 text")
        }
        let trimmed = text.drop(while: { $0.isWhitespace || $0 == "\u{FEFF}" })
        if trimmed.isEmpty {
            throw StaticPodError(path: path, reason: .unparsable, message: "empty manifest")
        }
        if trimmed.first == "{" {
            do {
                return try JSONDecoder().decode(JSONValue.self, from: Data(trimmed.utf8))
            } catch {
                throw StaticPodError(path: path, reason: .unparsable, message: "invalid JSON: \(describe(error))")
            }
        }
        var documents: [Yams.Node] = []
        do {
            var sequence = try Yams.compose_all(yaml: text)
            while let node = sequence.next() { documents.append(node) }
            if let error = sequence.error { throw error }
        } catch {
            throw StaticPodError(path: path, reason: .unparsable, message: "invalid YAML: \(error)")
        }
        let nonEmpty = documents.filter { !($0.tag.rawValue == Tag.Name.null.rawValue) }
        guard let document = nonEmpty.first else {
            throw StaticPodError(path: path, reason: .unparsable, message: "empty manifest")
        }
        guard nonEmpty.count == 1 else {
            throw StaticPodError(path: path, reason: .unparsable,
                                 message: "\(nonEmpty.count) YAML documents: a static pod manifest holds exactly one Pod")
        }
        return try json(document, path: path, at: "")
    }

    private static func json(_ node: Yams.Node, path: String, at location: String) throws(StaticPodError) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            return value(of: scalar, tag: Tag.Name(rawValue: node.tag.rawValue))
        case .sequence(let sequence):
            var elements: [JSONValue] = []
            for (index, element) in sequence.enumerated() {
                elements.append(try json(element, path: path, at: "\(location)[\(index)]"))
            }
            return .array(elements)
        case .mapping(let mapping):
            var members: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw StaticPodError(path: path, reason: .unparsable, message: "\(display(location)): a mapping key that is not a scalar")
                }
                let name = keyScalar.string
                if members[name] != nil {
                    throw StaticPodError(path: path, reason: .unparsable, message: "\(display(location)): key \"\(name)\" appears twice")
                }
                members[name] = try json(value, path: path, at: location.isEmpty ? name : "\(location).\(name)")
            }
            return .object(members)
        case .alias:
            throw StaticPodError(path: path, reason: .unparsable, message: "\(display(location)): unresolved YAML alias")
        }
    }

    private static func value(of scalar: Yams.Node.Scalar, tag: Tag.Name) -> JSONValue {
        guard scalar.style == .plain || scalar.style == .any else { return .string(scalar.string) }
        switch tag {
        case .null:
            return .null
        case .bool:
            if let value = Bool.construct(from: scalar) { return .bool(value) }
        case .int:
            if let value = Int64.construct(from: scalar) { return .int(value) }
            if let value = Double.construct(from: scalar) { return .double(value) }
        case .float:
            if let value = Double.construct(from: scalar), value.isFinite { return .double(value) }
        default:
            break
        }
        return .string(scalar.string)
    }

    private static func display(_ location: String) -> String { location.isEmpty ? "the document" : location }

    /// A decoding error as a path and a problem: `spec.containers[0].name: missing`.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func place(_ path: [any CodingKey]) -> String {
            var text = ""
            for key in path {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text.isEmpty ? "the document" : text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(place(context.codingPath + [key])): required"
        case .typeMismatch(let type, let context):
            return "\(place(context.codingPath)): expected \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "\(place(context.codingPath)): expected \(typeName(type)), found null"
        case .dataCorrupted(let context):
            return "\(place(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int32.Type, is Int64.Type, is Int.Type: return "an integer"
        case is Double.Type: return "a number"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "a mapping" }
            return "an object (\(name))"
        }
    }
}
