import Foundation
@_exported import JSON

/// Typed access to the members of a JSON object read from `file`. Every
/// failure names the file, the key path, the expected type and the value found.
public struct JSONFields: Sendable {
    /// Builds the error thrown for a field that is missing or of the wrong type.
    public typealias ErrorBuilder = @Sendable (_ file: String, _ key: String, _ expected: String, _ actual: String) -> Error

    public let file: String
    public let value: JSONValue
    let members: [(key: String, value: JSONValue)]
    let keyPrefix: String
    let makeError: ErrorBuilder

    public static let modelErrors: ErrorBuilder = { file, key, expected, actual in
        ModelError.invalidConfig(file: file, key: key, expected: expected, actual: actual)
    }

    /// Wraps `value`, which must be an object.
    public init(file: String, value: JSONValue, keyPrefix: String = "", errors: @escaping ErrorBuilder = JSONFields.modelErrors) throws {
        guard case let .object(members) = value else {
            throw errors(file, keyPrefix.isEmpty ? "(file)" : keyPrefix, "a JSON object", value.summary)
        }
        self.file = file
        self.value = value
        self.members = members
        self.keyPrefix = keyPrefix
        makeError = errors
    }

    /// Parses `data` as a JSON object.
    public init(file: String, data: Data, errors: @escaping ErrorBuilder = JSONFields.modelErrors) throws {
        let parsed: JSONValue
        do {
            parsed = try JSONValue.parse([UInt8](data))
        } catch {
            throw errors(file, "(file)", "a JSON object", "invalid JSON (\(error))")
        }
        try self.init(file: file, value: parsed, errors: errors)
    }

    /// Reads and parses the JSON object in the file at `url`.
    public init(url: URL, errors: @escaping ErrorBuilder = JSONFields.modelErrors) throws {
        let data: Data
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw errors(url.path, "(file)", "an existing file", "not found")
        }
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw errors(url.path, "(file)", "a readable file", "unreadable (\(error.localizedDescription))")
        }
        try self.init(file: url.path, data: data, errors: errors)
    }

    /// Member names in file order.
    public var keys: [String] { members.map(\.key) }

    /// The member `key`, or nil when absent.
    public subscript(key: String) -> JSONValue? { value[key] }

    /// True when the key is absent or JSON null.
    public func isAbsent(_ key: String) -> Bool {
        switch self[key] {
        case nil, .null?: return true
        default: return false
        }
    }

    /// `key` as error messages show it, including the path of nested objects.
    public func path(_ key: String) -> String {
        keyPrefix.isEmpty ? key : "\(keyPrefix).\(key)"
    }

    /// The error for `key` holding something other than `expected`.
    public func failure(_ key: String, _ expected: String) -> Error {
        makeError(file, path(key), expected, self[key].map(\.summary) ?? "missing")
    }

    public func int(_ key: String) throws -> Int? {
        guard let value = self[key], value != .null else { return nil }
        guard let integer = Self.exactInteger(value) else { throw failure(key, "an integer") }
        return integer
    }

    public func requiredInt(_ key: String, minimum: Int = Int.min) throws -> Int {
        guard let value = try int(key) else { throw failure(key, "an integer (required)") }
        guard value >= minimum else { throw failure(key, "an integer >= \(minimum)") }
        return value
    }

    public func double(_ key: String) throws -> Double? {
        guard let value = self[key], value != .null else { return nil }
        guard case let .number(number) = value else { throw failure(key, "a number") }
        return number
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let value = self[key], value != .null else { return nil }
        guard case let .bool(flag) = value else { throw failure(key, "true or false") }
        return flag
    }

    public func string(_ key: String) throws -> String? {
        guard let value = self[key], value != .null else { return nil }
        guard case let .string(text) = value else { throw failure(key, "a string") }
        return text
    }

    public func stringArray(_ key: String) throws -> [String]? {
        guard let value = self[key], value != .null else { return nil }
        guard case let .array(items) = value else { throw failure(key, "an array of strings") }
        return try items.map { item in
            guard case let .string(text) = item else { throw failure(key, "an array of strings") }
            return text
        }
    }

    public func intArray(_ key: String) throws -> [Int]? {
        guard let value = self[key], value != .null else { return nil }
        guard case let .array(items) = value else { throw failure(key, "an array of integers") }
        return try items.map { item in
            guard let integer = Self.exactInteger(item) else { throw failure(key, "an array of integers") }
            return integer
        }
    }

    /// An integer or an array of integers (like `eos_token_id`).
    public func intOrIntArray(_ key: String) throws -> [Int]? {
        guard let value = self[key], value != .null else { return nil }
        if let single = Self.exactInteger(value) { return [single] }
        return try intArray(key)
    }

    /// The object member `key`, or nil when absent or null.
    public func nested(_ key: String) throws -> JSONFields? {
        guard let value = self[key], value != .null else { return nil }
        guard case .object = value else { throw failure(key, "a JSON object") }
        return try JSONFields(file: file, value: value, keyPrefix: path(key), errors: makeError)
    }

    /// The value of a JSON number that is an exact integer, or nil.
    public static func exactInteger(_ value: JSONValue) -> Int? {
        guard case let .number(number) = value, number.rounded() == number, abs(number) < 9.0e15 else { return nil }
        return Int(number)
    }
}
