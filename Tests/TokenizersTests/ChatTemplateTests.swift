import Foundation
import Testing
import Tokenizers

/// A file written by scripts/fixtures/make_chat_fixtures.py.
private struct ChatFixture: Decodable {
    struct Message: Decodable {
        let role: String
        let content: String
    }

    struct Case: Decodable {
        let title: String
        let messages: [Message]
        let addGenerationPrompt: Bool
        let enableThinking: Bool?
        let rendered: String

        enum CodingKeys: String, CodingKey {
            case title, messages, rendered
            case addGenerationPrompt = "add_generation_prompt"
            case enableThinking = "enable_thinking"
        }
    }

    let template: String
    let sources: [String]
    let cases: [Case]

    static func load(_ name: String) throws -> ChatFixture {
        try JSONDecoder().decode(ChatFixture.self, from: Data(contentsOf: TestPaths.fixture("chat/\(name).json")))
    }
}

/// Fixture file name and the name `ChatTemplate` gives the recognized template.
private let chatFixtures = [
    ("smollm2-135m-instruct", "smollm2"),
    ("qwen2.5-coder-instruct", "qwen2.5"),
    ("qwen3", "qwen3"),
    ("chatml", "chatml"),
]

@Suite("Chat templates")
struct ChatTemplateTests {
    @Test("rendering matches apply_chat_template", arguments: chatFixtures)
    func renderingMatchesReference(fixtureName: String, templateName: String) throws {
        let fixture = try ChatFixture.load(fixtureName)
        #expect(!fixture.cases.isEmpty)
        for (index, source) in fixture.sources.enumerated() {
            let template = try ChatTemplate(source: source, file: "\(fixtureName) source \(index)")
            #expect(template.name == templateName)
            #expect(template.supportsThinking == (templateName == "qwen3"))
            for testCase in fixture.cases {
                let messages = testCase.messages.map { ChatMessage(role: $0.role, content: $0.content) }
                let rendered = try template.render(
                    messages, addGenerationPrompt: testCase.addGenerationPrompt, enableThinking: testCase.enableThinking)
                #expect(
                    rendered == testCase.rendered,
                    "\(fixtureName) source \(index): \(testCase.title), add_generation_prompt=\(testCase.addGenerationPrompt), enable_thinking=\(String(describing: testCase.enableThinking))")
            }
        }
    }

    @Test("model directory templates load",
          arguments: [("smollm2-135m-instruct", "smollm2"), ("qwen2.5-coder-0.5b-instruct", "qwen2.5")])
    func modelDirectoryTemplatesLoad(modelName: String, templateName: String) throws {
        let template = try #require(try ChatTemplate.load(directory: TestPaths.modelDirectory(modelName)))
        #expect(template.name == templateName)
        #expect(template.file.hasSuffix("chat_template.jinja"))
    }

    @Test("template read from tokenizer_config.json")
    func templateFromTokenizerConfig() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = try ChatFixture.load("qwen3").sources[0]
        let config = try JSONSerialization.data(withJSONObject: ["chat_template": source, "eos_token": "<|im_end|>"])
        try config.write(to: directory.appendingPathComponent("tokenizer_config.json"))
        let template = try #require(try ChatTemplate.load(directory: directory))
        #expect(template.name == "qwen3")
    }

    @Test("directory without template gives nil")
    func directoryWithoutTemplate() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("{\"eos_token\": \"</s>\"}".utf8).write(to: directory.appendingPathComponent("tokenizer_config.json"))
        #expect(try ChatTemplate.load(directory: directory) == nil)
    }

    @Test("unknown template rejected with hint")
    func unknownTemplateRejected() throws {
        let llama2Style = "{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}"
        #expect {
            try ChatTemplate(source: llama2Style, file: "custom.jinja")
        } throws: { error in
            guard case let TokenizerError.unsupportedChatTemplate(file, _) = error else { return false }
            return file == "custom.jinja" && String(describing: error).contains("--raw")
        }
    }

    @Test("edited system prompt rejected")
    func editedTemplateRejected() throws {
        let source = try ChatFixture.load("smollm2-135m-instruct").sources[0]
        let edited = source.replacingOccurrences(of: "named SmolLM", with: "named Bob")
        #expect(edited != source)
        #expect(throws: TokenizerError.self) { try ChatTemplate(source: edited, file: "edited.jinja") }
    }

    @Test("enable_thinking rejected without support")
    func thinkingRejectedWithoutSupport() throws {
        let template = try ChatTemplate(source: ChatFixture.load("smollm2-135m-instruct").sources[0], file: "smollm2.jinja")
        #expect {
            try template.render([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true, enableThinking: false)
        } throws: { error in
            guard case let TokenizerError.unsupported(file, key, _, actual) = error else { return false }
            return file == "smollm2.jinja" && key == "enable_thinking" && actual == "false"
        }
    }

    @Test("empty conversation is rejected", arguments: chatFixtures)
    func emptyConversationRejected(fixtureName: String, templateName: String) throws {
        let template = try ChatTemplate(source: ChatFixture.load(fixtureName).sources[0], file: "\(templateName).jinja")
        #expect {
            try template.render([], addGenerationPrompt: true, enableThinking: nil)
        } throws: { error in
            guard case let TokenizerError.invalidValue(_, key, _, _) = error else { return false }
            return key == "messages"
        }
    }

    @Test("Qwen templates reject tool role", arguments: ["qwen3", "qwen2.5-coder-instruct"])
    func toolRoleRejected(fixtureName: String) throws {
        let template = try ChatTemplate(source: ChatFixture.load(fixtureName).sources[0], file: "\(fixtureName).jinja")
        let messages = [ChatMessage(role: "user", content: "q"), ChatMessage(role: "tool", content: "42")]
        #expect {
            try template.render(messages, addGenerationPrompt: true, enableThinking: nil)
        } throws: { error in
            guard case let TokenizerError.unsupported(_, key, _, actual) = error else { return false }
            return key == "messages[1].role" && actual == "\"tool\""
        }
    }

    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("chat-template-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
