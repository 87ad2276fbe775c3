/// The chat templates the built-in renderer reproduces, and how each renders
/// user, assistant and system messages (tools are not supported).
enum KnownChatTemplate: Sendable, Equatable {
    /// `<|im_start|>role\ncontent<|im_end|>\n` per message. With a default system
    /// prompt, it is inserted when the first message is not a system message.
    case chatML(name: String, defaultSystemPrompt: String?)
    /// Qwen2.5 (instruct and coder-instruct) without tools: a system block always comes first.
    case qwen25(defaultSystemPrompt: String)
    /// Qwen3 without tools: `enable_thinking`, and reasoning removed from assistant turns before the last user query.
    case qwen3

    /// Templates by `ChatTemplateCanonicalForm.fingerprint`. The sources are the
    /// chat_template.jinja files of HuggingFaceTB/SmolLM2-135M-Instruct,
    /// Qwen/Qwen2.5-Coder-0.5B-Instruct and Qwen/Qwen3 models, and the common
    /// ChatML template without a system prompt.
    static let byFingerprint: [UInt64: KnownChatTemplate] = [
        0x6684_4fb5_ad7d_044b: .chatML(
            name: "smollm2",
            defaultSystemPrompt: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
        0x7c98_ada2_411b_1542: .qwen25(
            defaultSystemPrompt: "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
        0xb0e4_284f_e696_f4f6: .qwen3,
        0xed67_0679_5e45_7d49: .chatML(name: "chatml", defaultSystemPrompt: nil),
    ]

    var name: String {
        switch self {
        case let .chatML(name, _): return name
        case .qwen25: return "qwen2.5"
        case .qwen3: return "qwen3"
        }
    }

    var supportsThinking: Bool { self == .qwen3 }

    /// Renders as transformers' `apply_chat_template(…, tokenize=False)` does; `file` names the template in errors.
    func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, enableThinking: Bool?, file: String) throws -> String {
        guard !messages.isEmpty else {
            throw TokenizerError.invalidValue(
                file: file, key: "messages", expected: "at least one message", actual: "an empty conversation")
        }
        if let enableThinking, !supportsThinking {
            throw TokenizerError.unsupported(
                file: file, key: "enable_thinking",
                expected: "nil, because the \(name) template has no thinking mode", actual: String(enableThinking))
        }
        switch self {
        case let .chatML(_, defaultSystemPrompt):
            return renderChatML(messages, defaultSystemPrompt: defaultSystemPrompt, addGenerationPrompt: addGenerationPrompt)
        case let .qwen25(defaultSystemPrompt):
            try checkRoles(messages, file: file)
            return renderQwen25(messages, defaultSystemPrompt: defaultSystemPrompt, addGenerationPrompt: addGenerationPrompt)
        case .qwen3:
            try checkRoles(messages, file: file)
            return renderQwen3(messages, addGenerationPrompt: addGenerationPrompt, enableThinking: enableThinking)
        }
    }

    /// Rejects roles other than system, user and assistant for the Qwen templates.
    /// A "tool" message needs tool support, and the templates drop other roles silently.
    private func checkRoles(_ messages: [ChatMessage], file: String) throws {
        for (index, message) in messages.enumerated() where !["system", "user", "assistant"].contains(message.role) {
            throw TokenizerError.unsupported(
                file: file, key: "messages[\(index)].role",
                expected: "system, user or assistant for the \(name) template", actual: "\"\(message.role)\"")
        }
    }

    private static func block(_ role: String, _ content: String) -> String {
        "<|im_start|>" + role + "\n" + content + "<|im_end|>\n"
    }

    private func renderChatML(_ messages: [ChatMessage], defaultSystemPrompt: String?, addGenerationPrompt: Bool) -> String {
        var output = ""
        if let defaultSystemPrompt, messages[0].role != "system" {
            output += Self.block("system", defaultSystemPrompt)
        }
        for message in messages {
            output += Self.block(message.role, message.content)
        }
        if addGenerationPrompt { output += "<|im_start|>assistant\n" }
        return output
    }

    private func renderQwen25(_ messages: [ChatMessage], defaultSystemPrompt: String, addGenerationPrompt: Bool) -> String {
        var output = messages[0].role == "system"
            ? Self.block("system", messages[0].content)
            : Self.block("system", defaultSystemPrompt)
        for (index, message) in messages.enumerated() where !(index == 0 && message.role == "system") {
            output += Self.block(message.role, message.content)
        }
        if addGenerationPrompt { output += "<|im_start|>assistant\n" }
        return output
    }

    private func renderQwen3(_ messages: [ChatMessage], addGenerationPrompt: Bool, enableThinking: Bool?) -> String {
        var output = ""
        if messages[0].role == "system" {
            output += Self.block("system", messages[0].content)
        }
        // The last user message that is not a tool response wrapped in user content;
        // reasoning is kept only for assistant turns after it.
        var lastQueryIndex = messages.count - 1
        for (index, message) in messages.enumerated().reversed() where message.role == "user" {
            let content = message.content
            let isToolResponse = PythonString.hasPrefix(content, "<tool_response>")
                && PythonString.hasSuffix(content, "</tool_response>")
            if !isToolResponse {
                lastQueryIndex = index
                break
            }
        }
        for (index, message) in messages.enumerated() {
            switch message.role {
            case "user":
                output += Self.block("user", message.content)
            case "system":
                if index != 0 { output += Self.block("system", message.content) }
            default:  // "assistant"; checkRoles rejected the others
                var content = message.content
                var reasoning = ""
                if PythonString.contains(message.content, "</think>") {
                    let parts = PythonString.split(message.content, separator: "</think>")
                    content = PythonString.lstrip(parts[parts.count - 1], "\n")
                    let beforeClose = PythonString.rstrip(parts[0], "\n")
                    let thinkParts = PythonString.split(beforeClose, separator: "<think>")
                    reasoning = PythonString.lstrip(thinkParts[thinkParts.count - 1], "\n")
                }
                let isLast = index == messages.count - 1
                output += "<|im_start|>assistant\n"
                if index > lastQueryIndex && (isLast || !reasoning.isEmpty) {
                    output += "<think>\n" + PythonString.strip(reasoning, "\n") + "\n</think>\n\n"
                        + PythonString.lstrip(content, "\n")
                } else {
                    output += content
                }
                output += "<|im_end|>\n"
            }
        }
        if addGenerationPrompt {
            output += "<|im_start|>assistant\n"
            if enableThinking == false { output += "<think>\n\n</think>\n\n" }
        }
        return output
    }
}
