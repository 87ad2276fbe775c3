import JSON

/// A JSON value together with the file and key path it came from, so that every
/// accessor can report a `TokenizerError` naming both.
struct JSONNode: Sendable {
    /// Parses `bytes` as the root node of `file`; a syntax error becomes
    /// `TokenizerError.invalidJSON` naming the file.
    static func parse(_ bytes: [UInt8], file: String) throws -> JSONNode {
        do {
            return JSONNode(value: try JSONValue.parse(bytes), file: file, path: "")
        } catch let error as JSONSyntaxError {
            throw TokenizerError.invalidJSON(file: file, reason: error.description)
        }
    }

    let value: JSONValue
    let file: String
    let path: String

    var isNull: Bool {
        if case .null = value { return true }
        return false
    }

    private func childPath(_ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    /// Returns the value of `key`; throws `missingKey` when this object lacks it.
    func child(_ key: String) throws -> JSONNode {
        guard let node = try optionalChild(key, allowNull: true) else {
            throw TokenizerError.missingKey(file: file, key: childPath(key))
        }
        return node
    }

    /// Returns the value of `key`, or nil when the key is absent or (unless `allowNull`) null.
    func optionalChild(_ key: String, allowNull: Bool = false) throws -> JSONNode? {
        guard case let .object(entries) = value else {
            throw invalid(expected: "an object")
        }
        // The last duplicate wins, as with serde_json maps.
        guard let entry = entries.last(where: { $0.key == key }) else { return nil }
        if case .null = entry.value, !allowNull { return nil }
        return JSONNode(value: entry.value, file: file, path: childPath(key))
    }

    /// Returns the value of `key`, or a null node when this object lacks it.
    func childOrNull(_ key: String) throws -> JSONNode {
        try optionalChild(key, allowNull: true) ?? JSONNode(value: .null, file: file, path: childPath(key))
    }

    func string() throws -> String {
        guard case let .string(text) = value else { throw invalid(expected: "a string") }
        return text
    }

    func bool() throws -> Bool {
        guard case let .bool(flag) = value else { throw invalid(expected: "true or false") }
        return flag
    }

    func double() throws -> Double {
        guard case let .number(number) = value else { throw invalid(expected: "a number") }
        return number
    }

    func int() throws -> Int {
        guard case let .number(number) = value, number == number.rounded(),
              abs(number) <= 9_007_199_254_740_992
        else { throw invalid(expected: "an integer") }
        return Int(number)
    }

    func array() throws -> [JSONNode] {
        guard case let .array(items) = value else { throw invalid(expected: "an array") }
        return items.enumerated().map { index, item in
            JSONNode(value: item, file: file, path: "\(path)[\(index)]")
        }
    }

    func entries() throws -> [(key: String, node: JSONNode)] {
        guard case let .object(entries) = value else { throw invalid(expected: "an object") }
        return entries.map { entry in
            (entry.key, JSONNode(value: entry.value, file: file, path: childPath(entry.key)))
        }
    }

    /// Returns `child(key).bool()`, or `defaultValue` when the key is absent or null.
    func bool(_ key: String, default defaultValue: Bool) throws -> Bool {
        try optionalChild(key)?.bool() ?? defaultValue
    }

    func invalid(expected: String) -> TokenizerError {
        .invalidValue(file: file, key: path, expected: expected, actual: value.summary)
    }

    func unsupported(expected: String) -> TokenizerError {
        .unsupported(file: file, key: path, expected: expected, actual: value.summary)
    }
}
