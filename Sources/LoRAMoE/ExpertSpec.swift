import Foundation

/// An expert named on the command line or in a request: `NAME=PATH`, or a
/// bare `PATH` whose last path component becomes the name.
public struct ExpertSpec: Sendable, Equatable {
    public var name: String
    public var path: String

    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }

    /// Parses `NAME=PATH` or `PATH`.
    public init(parsing text: String) throws {
        if let equals = text.firstIndex(of: "="), !text[..<equals].contains("/") {
            name = String(text[..<equals])
            path = String(text[text.index(after: equals)...])
        } else {
            path = text
            name = URL(fileURLWithPath: text).standardizedFileURL.lastPathComponent
        }
        guard !name.isEmpty, !path.isEmpty else {
            throw EngineError.invalidExpertSpec(text)
        }
    }
}

/// Errors of the engine façade.
public enum EngineError: Error, CustomStringConvertible, Equatable {
    case invalidExpertSpec(String)
    case duplicateExpertName(String)
    case missingChatTemplate(directory: String)
    case modelDirectoryNotFound(String)
    case vocabularyMismatch(directory: String, tokenizer: Int, model: Int)
    case noThinkingSwitch(template: String)

    public var description: String {
        switch self {
        case let .invalidExpertSpec(text):
            return "invalid expert '\(text)': expected NAME=PATH or PATH"
        case let .duplicateExpertName(name):
            return "two experts are named '\(name)'; give them distinct names with NAME=PATH"
        case let .modelDirectoryNotFound(path):
            return "\(path): model directory not found"
        case let .vocabularyMismatch(directory, tokenizer, model):
            return "\(directory): tokenizer.json has \(tokenizer) tokens but config.json vocab_size is \(model); the tokenizer belongs to another model"
        case let .noThinkingSwitch(template):
            return "--think and --no-think need a chat template with a thinking switch (Qwen3); this model's template (\(template)) has none"
        case let .missingChatTemplate(directory):
            return "\(directory) has no chat template (chat_template.jinja or tokenizer_config.json); pass --raw and format the prompt yourself"
        }
    }
}
