import Foundation
import JSON

/// Typed access to one JSON object of a router file. Every failure names the
/// file and the JSON path of the value (`experts[2].prototype`).
struct RouterJSONObject {
    let file: String
    /// JSON path of this object, empty for the top level.
    let path: String
    let values: [String: Any]

    init(file: String, path: String, value: Any?) throws {
        self.file = file
        self.path = path
        guard let values = value as? [String: Any] else {
            throw RouterFileError.invalidValue(file: file, key: path.isEmpty ? "top level" : path, expected: "a JSON object", actual: describeJSON(value))
        }
        self.values = values
    }

    func key(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    /// Throws for the first key, in sorted order, that is not in `allowed`.
    func rejectUnknownKeys(_ allowed: Set<String>) throws {
        if let unknown = values.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw RouterFileError.unknownKey(file: file, key: key(unknown))
        }
    }

    func require(_ name: String) throws -> Any {
        guard let value = values[name] else {
            throw RouterFileError.missingKey(file: file, key: key(name))
        }
        return value
    }

    func invalid(_ name: String, expected: String, _ value: Any?) -> RouterFileError {
        .invalidValue(file: file, key: key(name), expected: expected, actual: describeJSON(value))
    }

    func string(_ name: String) throws -> String {
        let value = try require(name)
        guard let text = value as? String else { throw invalid(name, expected: "a string", value) }
        return text
    }

    func integer(_ name: String) throws -> Int {
        let value = try require(name)
        guard let integer = jsonInteger(value) else { throw invalid(name, expected: "an integer", value) }
        return integer
    }

    /// Reads an integer, or nil for JSON null.
    func optionalInteger(_ name: String) throws -> Int? {
        let value = try require(name)
        if value is NSNull { return nil }
        guard let integer = jsonInteger(value) else { throw invalid(name, expected: "an integer or null", value) }
        return integer
    }

    func number(_ name: String) throws -> Double {
        let value = try require(name)
        guard let number = jsonNumber(value), number.isFinite else { throw invalid(name, expected: "a number", value) }
        return number
    }

    func boolean(_ name: String) throws -> Bool {
        let value = try require(name)
        guard let boolean = jsonBoolean(value) else { throw invalid(name, expected: "true or false", value) }
        return boolean
    }

    /// Reads an array of `count` finite numbers as Float.
    func floats(_ name: String, count: Int) throws -> [Float] {
        let value = try require(name)
        guard let array = value as? [Any] else {
            throw invalid(name, expected: "an array of \(count) numbers", value)
        }
        guard array.count == count else {
            throw RouterFileError.invalidValue(file: file, key: key(name), expected: "\(count) numbers (the model's hidden size)", actual: "\(array.count) values")
        }
        var result: [Float] = []
        result.reserveCapacity(count)
        for (index, item) in array.enumerated() {
            guard let number = jsonNumber(item), number.isFinite, Float(number).isFinite else {
                throw RouterFileError.invalidValue(file: file, key: "\(key(name))[\(index)]", expected: "a finite number", actual: describeJSON(item))
            }
            result.append(Float(number))
        }
        return result
    }

    func array(_ name: String) throws -> [Any] {
        let value = try require(name)
        guard let array = value as? [Any] else { throw invalid(name, expected: "an array", value) }
        return array
    }
}

/// JSON booleans arrive as NSNumbers of type "c" (char), and numbers never do.
private func isJSONBoolean(_ number: NSNumber) -> Bool {
    String(cString: number.objCType) == "c"
}

private func jsonNumber(_ value: Any) -> Double? {
    guard let number = value as? NSNumber, !isJSONBoolean(number) else { return nil }
    return number.doubleValue
}

private func jsonInteger(_ value: Any) -> Int? {
    guard let number = jsonNumber(value), number.rounded() == number, abs(number) < 9.0e15 else { return nil }
    return Int(number)
}

private func jsonBoolean(_ value: Any) -> Bool? {
    guard let number = value as? NSNumber, isJSONBoolean(number) else { return nil }
    return number.boolValue
}

/// Describes a JSON value in a few words for error messages.
private func describeJSON(_ value: Any?) -> String {
    switch value {
    case nil: return "nothing"
    case is NSNull: return "null"
    case let text as String:
        return text.count > 60 ? "the string \"\(text.prefix(60))…\"" : "the string \"\(text)\""
    case let number as NSNumber:
        if isJSONBoolean(number) {
            return number.boolValue ? "true" : "false"
        }
        return "\(number)"
    case let array as [Any]: return "an array of \(array.count) values"
    case is [String: Any]: return "an object"
    default: return "an unsupported value"
    }
}

/// Writes the fixed layout of router.json: two-space indents, and each
/// object of plain values or array of numbers on one line.
enum RouterJSONWriter {
    static func string(_ value: String) -> String { JSONValue.quoted(value) }

    /// Swift prints the shortest text that reads back to the same Float,
    /// which is also valid JSON for every finite value.
    static func number(_ value: Float) -> String { "\(value)" }

    static func number(_ value: Double) -> String { "\(value)" }

    static func floats(_ values: [Float]) -> String {
        "[" + values.map(number).joined(separator: ", ") + "]"
    }

    /// `{"key": value, ...}` on one line, keys in the given order.
    static func inlineObject(_ members: [(String, String)]) -> String {
        "{" + members.map { "\(string($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }

    /// Formats a multi-line object of already formatted members.
    static func object(_ members: [(String, String)], indent: String = "") -> String {
        let inner = indent + "  "
        return "{\n" + members.map { "\(inner)\(string($0.0)): \($0.1)" }.joined(separator: ",\n") + "\n\(indent)}"
    }

    static func array(_ items: [String], indent: String) -> String {
        let inner = indent + "  "
        return "[\n" + items.map { inner + $0 }.joined(separator: ",\n") + "\n\(indent)]"
    }
}
