/// A model directory that cannot be loaded or run as given.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    /// A config.json field is missing, has the wrong type or an invalid value.
    case invalidConfig(file: String, key: String, expected: String, actual: String)
    /// The config asks for a feature this engine does not implement.
    case unsupported(file: String, key: String, value: String, hint: String)
    /// A weight is missing or has the wrong shape.
    case invalidWeight(file: String, tensor: String, expected: String, actual: String)
    /// A weight file holds a tensor the architecture does not use.
    case unexpectedWeight(file: String, tensor: String)
    case tokenOutOfRange(token: Int, vocabularySize: Int)
    case contextOverflow(requested: Int, maximum: Int)

    public var description: String {
        switch self {
        case let .invalidConfig(file, key, expected, actual) where key == "(file)":
            return describeWholeFile(file: file, expected: expected, actual: actual)
        case let .invalidConfig(file, key, expected, actual):
            return "\(file): '\(key)' is \(actual), expected \(expected)"
        case let .unsupported(file, key, value, hint):
            return "\(file): '\(key)' = \(value) is not supported. \(hint)"
        case let .invalidWeight(file, tensor, expected, actual):
            return "\(file): tensor '\(tensor)' is \(actual), expected \(expected)"
        case let .unexpectedWeight(file, tensor):
            return "\(file): tensor '\(tensor)' is not part of this architecture; the checkpoint may need a feature lora-moe does not implement"
        case let .tokenOutOfRange(token, vocabularySize):
            return "token id \(token) is outside the model's vocabulary of \(vocabularySize) tokens (ids 0 to \(vocabularySize - 1))"
        case let .contextOverflow(requested, maximum):
            return "sequence of \(requested) tokens exceeds the context length of \(maximum) tokens"
        }
    }
}

/// Formats the message for a problem with a whole JSON file rather than one
/// key: missing, unreadable, not JSON, or not an object.
public func describeWholeFile(file: String, expected: String, actual: String) -> String {
    if actual == "not found" { return "\(file): file not found" }
    if actual.hasPrefix("invalid JSON") { return "\(file): \(actual)" }
    return "\(file): \(actual), expected \(expected)"
}
