/// A router file that cannot be read, or that does not belong to the model
/// and experts it is used with. `key` is the JSON path of the value at fault,
/// such as `experts[1].fingerprint`.
public enum RouterFileError: Error, CustomStringConvertible, Equatable {
    case cannotRead(file: String, reason: String)
    case cannotWrite(file: String, reason: String)
    case invalidJSON(file: String, detail: String)
    case missingKey(file: String, key: String)
    case unknownKey(file: String, key: String)
    case invalidValue(file: String, key: String, expected: String, actual: String)
    /// The model in use differs from the one the router was fitted with.
    case modelMismatch(file: String, key: String, expected: String, actual: String, model: String)
    /// Another number of experts than the router was fitted with.
    case expertCountMismatch(file: String, expected: [String], actual: [String])
    /// One expert differs in name, position or adapter files.
    case expertMismatch(file: String, key: String, expected: String, actual: String, hint: String)

    public var description: String {
        switch self {
        case let .cannotRead(file, reason):
            return "\(file): cannot read router file: \(reason)"
        case let .cannotWrite(file, reason):
            return "\(file): cannot write router file: \(reason)"
        case let .invalidJSON(file, detail):
            return "\(file): not a valid router file: \(detail)"
        case let .missingKey(file, key):
            return "\(file): missing key '\(key)'"
        case let .unknownKey(file, key):
            return "\(file): unknown key '\(key)'; \(RouterFile.formatName) version \(RouterFile.formatVersion) does not define it (see docs/ROUTING.md)"
        case let .invalidValue(file, key, expected, actual):
            return "\(file): \(key): expected \(expected), got \(actual)"
        case let .modelMismatch(file, key, expected, actual, model):
            return "\(file): \(key): the router was fitted with a model that has \(expected), but \(model) has \(actual); "
                + "use the model the router was fitted with, or fit a new router with 'lora-moe router fit'"
        case let .expertCountMismatch(file, expected, actual):
            return "\(file): the router was fitted with \(expected.count) experts (\(expected.joined(separator: ", "))), "
                + "but \(actual.count == 1 ? "1 was" : "\(actual.count) were") given (\(actual.joined(separator: ", "))); pass the same experts in the same order"
        case let .expertMismatch(file, key, expected, actual, hint):
            return "\(file): \(key): expected \(expected), got \(actual); \(hint)"
        }
    }
}
