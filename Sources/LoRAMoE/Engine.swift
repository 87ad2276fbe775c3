import Foundation

/// A loaded model directory: weights, tokenizer, chat template and the tokens
/// that end a generation. Immutable and shareable across threads.
public final class Engine: Sendable {
    public let directory: URL
    public let model: LanguageModel
    public let tokenizer: Tokenizer
    public let chatTemplate: ChatTemplate?
    /// End-of-sequence tokens from generation_config.json, config.json and the
    /// tokenizer's `eos_token`.
    public let stopTokens: Set<Int>
    /// Sampling defaults: lora-moe's own, replaced by each sampling field that
    /// generation_config.json sets (`temperature`, `top_k`, `top_p`, `min_p`,
    /// `repetition_penalty`); `do_sample: false` there means greedy.
    public let samplingDefaults: SamplingParameters

    public init(directory: URL, options: ModelLoadOptions = ModelLoadOptions()) throws {
        self.directory = directory
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw EngineError.modelDirectoryNotFound(directory.path)
        }
        model = try LanguageModel(directory: directory, options: options)
        tokenizer = try Tokenizer(directory: directory)
        // A model may have more embedding rows than tokens (padding), never fewer.
        guard tokenizer.vocabularySize <= model.config.vocabSize else {
            throw EngineError.vocabularyMismatch(directory: directory.path, tokenizer: tokenizer.vocabularySize, model: model.config.vocabSize)
        }
        chatTemplate = try ChatTemplate.load(directory: directory)
        stopTokens = try Self.readStopTokens(directory: directory, config: model.config, tokenizer: tokenizer)
        samplingDefaults = try Self.readSamplingDefaults(directory: directory)
    }

    private static func readSamplingDefaults(directory: URL) throws -> SamplingParameters {
        var sampling = SamplingParameters()
        let url = directory.appendingPathComponent("generation_config.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return sampling }
        let fields = try JSONFields(url: url)
        if let value = try fields.double("temperature") { sampling.temperature = Float(value) }
        if let value = try fields.int("top_k") { sampling.topK = value }
        if let value = try fields.double("top_p") { sampling.topP = Float(value) }
        if let value = try fields.double("min_p") { sampling.minP = Float(value) }
        if let value = try fields.double("repetition_penalty") { sampling.repeatPenalty = Float(value) }
        if try fields.bool("do_sample") == false { sampling.temperature = 0 }
        do {
            try sampling.validate()
        } catch {
            throw ModelError.invalidConfig(file: url.path, key: "sampling defaults", expected: "valid sampling values", actual: "\(error)")
        }
        return sampling
    }

    private static func readStopTokens(directory: URL, config: ModelConfig, tokenizer: Tokenizer) throws -> Set<Int> {
        var tokens = Set(config.eosTokenIds)
        let generationConfig = directory.appendingPathComponent("generation_config.json")
        if FileManager.default.fileExists(atPath: generationConfig.path) {
            let fields = try JSONFields(url: generationConfig)
            tokens.formUnion(try fields.intOrIntArray("eos_token_id") ?? [])
        }
        if let eos = tokenizer.eosToken, let id = tokenizer.id(forToken: eos) {
            tokens.insert(id)
        }
        return tokens
    }

    /// Element type of the experts' fused stacks. A quantized model gets
    /// Q8_0, whose rounding is far below the weights' own and whose bytes are
    /// a quarter of float32. Otherwise f32, so the model matches PEFT exactly.
    public var expertStackType: DType { model.options.quantization == nil ? .f32 : .q8_0 }

    /// Loads and validates experts against this model. Names must be distinct.
    public func loadExperts(_ specs: [ExpertSpec]) throws -> [LoRAAdapter] {
        var seen = Set<String>()
        for spec in specs where !seen.insert(spec.name).inserted {
            throw EngineError.duplicateExpertName(spec.name)
        }
        return try specs.map { spec in
            try LoRAAdapter(directory: URL(fileURLWithPath: spec.path), name: spec.name, modelConfig: model.config,
                            stackType: expertStackType)
        }
    }

    /// Token ids of a chat rendered with the model's template, ending with the
    /// assistant prompt. Special tokens written by the template are parsed as
    /// such, as transformers does after `apply_chat_template`.
    public func chatTokens(_ messages: [ChatMessage], enableThinking: Bool? = nil) throws -> [Int] {
        tokenizer.encode(try renderChat(messages, enableThinking: enableThinking))
    }

    /// The chat rendered as text.
    public func renderChat(_ messages: [ChatMessage], enableThinking: Bool? = nil) throws -> String {
        guard let chatTemplate else {
            throw EngineError.missingChatTemplate(directory: directory.path)
        }
        return try chatTemplate.render(messages, addGenerationPrompt: true, enableThinking: enableThinking)
    }
}
