import Foundation

/// A model's chat template, rendered by a built-in renderer instead of a Jinja interpreter.
///
/// Only known templates are accepted (see `KnownChatTemplate`): SmolLM2,
/// Qwen2.5, Qwen3 and plain ChatML, recognized by content up to spelling
/// differences that do not change the output. Others are rejected so that a
/// prompt is never formatted differently from what the model was trained on.
public struct ChatTemplate: Sendable {
    let template: KnownChatTemplate
    /// The file the template came from, used in error messages.
    public let file: String

    /// A short name of the recognized template: "smollm2", "qwen2.5", "qwen3" or "chatml".
    public var name: String { template.name }

    /// Whether `render` accepts `enableThinking` (only Qwen3).
    public var supportsThinking: Bool { template.supportsThinking }

    /// Reads chat_template.jinja, or the "chat_template" string of tokenizer_config.json;
    /// nil when the directory has neither.
    public static func load(directory: URL) throws -> ChatTemplate? {
        let templateURL = directory.appendingPathComponent("chat_template.jinja")
        if FileManager.default.fileExists(atPath: templateURL.path) {
            let data: Data
            do {
                data = try Data(contentsOf: templateURL)
            } catch {
                throw TokenizerError.unreadableFile(file: templateURL.path, reason: error.localizedDescription)
            }
            guard let source = String(data: data, encoding: .utf8) else {
                throw TokenizerError.unreadableFile(file: templateURL.path, reason: "the file is not valid UTF-8")
            }
            return try ChatTemplate(source: source, file: templateURL.path)
        }
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        guard FileManager.default.fileExists(atPath: configURL.path) else { return nil }
        let data: Data
        do {
            data = try Data(contentsOf: configURL)
        } catch {
            throw TokenizerError.unreadableFile(file: configURL.path, reason: error.localizedDescription)
        }
        guard let source = try TokenizerConfig.parse([UInt8](data), file: configURL.path).chatTemplate else {
            return nil
        }
        return try ChatTemplate(source: source, file: configURL.path)
    }

    /// Recognizes `source`; throws `TokenizerError.unsupportedChatTemplate` for a
    /// template the built-in renderer cannot reproduce exactly.
    public init(source: String, file: String) throws {
        guard let fingerprint = ChatTemplateCanonicalForm.fingerprint(source) else {
            throw TokenizerError.unsupportedChatTemplate(file: file, reason: "the template could not be parsed")
        }
        guard let template = KnownChatTemplate.byFingerprint[fingerprint] else {
            throw TokenizerError.unsupportedChatTemplate(
                file: file,
                reason: "it is not one of the known templates (SmolLM2, Qwen2.5, Qwen3, plain ChatML)")
        }
        self.template = template
        self.file = file
    }

    /// Renders a conversation as transformers' `apply_chat_template(messages,
    /// tokenize=False, add_generation_prompt:, enable_thinking:)` does.
    ///
    /// `enableThinking` nil means the variable is not passed. Throws for an empty
    /// conversation, for `enableThinking` on a template without thinking support,
    /// and for roles other than system, user and assistant with the Qwen templates.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, enableThinking: Bool?) throws -> String {
        try template.render(messages, addGenerationPrompt: addGenerationPrompt, enableThinking: enableThinking, file: file)
    }
}
