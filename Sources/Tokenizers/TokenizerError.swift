/// Errors from loading tokenizer files and chat templates, and from rendering chats.
///
/// `file` is the path given as the source, `key` is a JSON path such as
/// `pre_tokenizer.pretokenizers[0].type` (or a template variable for chat errors).
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// The file does not exist.
    case fileNotFound(file: String)
    /// The file exists but could not be read.
    case unreadableFile(file: String, reason: String)
    /// The file is not valid JSON (or, for a template, not valid text).
    case invalidJSON(file: String, reason: String)
    /// A required key is absent.
    case missingKey(file: String, key: String)
    /// A key contains a value of the wrong type or an inconsistent value.
    case invalidValue(file: String, key: String, expected: String, actual: String)
    /// A valid setting that this implementation does not support.
    case unsupported(file: String, key: String, expected: String, actual: String)
    /// A chat template that the built-in renderer does not recognize.
    case unsupportedChatTemplate(file: String, reason: String)

    public var description: String {
        switch self {
        case let .fileNotFound(file):
            return "\(file): file not found"
        case let .unreadableFile(file, reason):
            return "\(file): cannot read the file: \(reason)"
        case let .invalidJSON(file, reason):
            return "\(file): invalid JSON: \(reason)"
        case let .missingKey(file, key):
            return "\(file): missing key \"\(key)\""
        case let .invalidValue(file, key, expected, actual):
            return "\(file): invalid value for \"\(key)\": expected \(expected), found \(actual)"
        case let .unsupported(file, key, expected, actual):
            return "\(file): unsupported value for \"\(key)\": expected \(expected), found \(actual)"
        case let .unsupportedChatTemplate(file, reason):
            return "\(file): unsupported chat template: \(reason). "
                + "Pass --raw and format the prompt yourself."
        }
    }
}
