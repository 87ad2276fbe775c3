import Models

/// A PEFT adapter that cannot be loaded, or cannot be applied exactly as PEFT
/// would apply it to this base model. Nothing of a rejected adapter is applied.
public enum AdapterError: Error, CustomStringConvertible, Equatable {
    case missingFile(path: String, hint: String)
    /// The adapter path does not exist, or is a file rather than a directory.
    case notADirectory(path: String, exists: Bool)
    /// An adapter_config.json field is missing, has the wrong type or an invalid value.
    case invalidConfig(file: String, key: String, expected: String, actual: String)
    /// A PEFT feature whose effect this engine does not reproduce.
    case unsupported(file: String, key: String, value: String, hint: String)
    /// A tensor whose shape does not fit the base model or the config.
    case shapeMismatch(file: String, tensor: String, expected: String, actual: String, hint: String)
    /// A tensor name that is not a LoRA weight of a module the config targets.
    case unexpectedTensor(file: String, tensor: String, reason: String)
    /// A targeted module without its lora_A or lora_B weight.
    case missingTensor(file: String, tensor: String)
    /// Neither the config nor the weights refer to any module of the base model.
    case noMatchingModules(file: String, detail: String)
    case invalidWeights(file: String, detail: String)

    public var description: String {
        switch self {
        case let .missingFile(path, hint):
            return "\(path): file not found. \(hint)"
        case let .notADirectory(path, exists):
            return exists
                ? "\(path): not a directory; give the PEFT adapter directory that holds adapter_config.json and adapter_model.safetensors"
                : "\(path): adapter directory not found"
        case let .invalidConfig(file, key, expected, actual) where key == "(file)":
            return describeWholeFile(file: file, expected: expected, actual: actual)
        case let .invalidConfig(file, key, expected, actual):
            return "\(file): '\(key)' is \(actual), expected \(expected)"
        case let .unsupported(file, key, value, hint):
            return "\(file): '\(key)' = \(value) is not supported. \(hint)"
        case let .shapeMismatch(file, tensor, expected, actual, hint):
            return "\(file): tensor '\(tensor)' has shape \(actual), expected \(expected). \(hint)"
        case let .unexpectedTensor(file, tensor, reason):
            return "\(file): unexpected tensor '\(tensor)': \(reason)"
        case let .missingTensor(file, tensor):
            return "\(file): tensor '\(tensor)' is missing, but adapter_config.json targets its module"
        case let .noMatchingModules(file, detail):
            return "\(file): the adapter matches no module of the base model (\(detail)). Was it trained for a different base model?"
        case let .invalidWeights(file, detail):
            return "\(file): \(detail)"
        }
    }
}
