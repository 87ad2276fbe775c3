import Foundation
import Models
import Routing
import Tensor
import Tokenizers

/// Why generation ended, with OpenAI's names.
public enum FinishReason: String, Sendable, Equatable {
    /// An end-of-sequence token or a stop string.
    case stop
    /// `maxTokens` reached, or the context is full.
    case length
    /// The model produced NaN or infinite logits; the output is cut there.
    case error
}

/// One generation request on token ids.
public struct GenerationRequest: Sendable {
    public var promptTokens: [Int]
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Generation ends when the decoded text contains one of these; the
    /// stop string itself is not part of the output.
    public var stopStrings: [String]
    /// Tokens that end generation (end-of-sequence); they are not part of the output.
    public var stopTokens: Set<Int>

    public init(promptTokens: [Int], maxTokens: Int, sampling: SamplingParameters = SamplingParameters(),
                stopStrings: [String] = [], stopTokens: Set<Int> = []) {
        self.promptTokens = promptTokens
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.stopTokens = stopTokens
    }
}

/// Timings and counts of one generation.
public struct GenerationStatistics: Sendable, Equatable {
    public var promptTokens = 0
    /// Prompt tokens whose keys and values were already cached (not recomputed).
    public var cachedPromptTokens = 0
    public var promptSeconds = 0.0
    public var generatedTokens = 0
    public var generationSeconds = 0.0

    public init() {}

    /// Prompt tokens computed per second (prefill, cached tokens excluded), 0 when nothing was timed.
    public var promptTokensPerSecond: Double {
        promptSeconds > 0 ? Double(promptTokens - cachedPromptTokens) / promptSeconds : 0
    }
    /// Generated tokens per second, counted from the first sampled token on.
    public var generationTokensPerSecond: Double { generationSeconds > 0 ? Double(generatedTokens) / generationSeconds : 0 }
}

public struct GenerationResult: Sendable {
    public var text: String
    /// Generated tokens, without a final end-of-sequence token.
    public var tokens: [Int]
    public var finishReason: FinishReason
    public var statistics: GenerationStatistics
}

/// Runs the decoding loop: prefill the prompt, then sample one token at a
/// time, streaming text through a detokenizer that never splits a UTF-8
/// character and a stop-string matcher.
public struct Generator {
    public let model: LanguageModel
    public let tokenizer: Tokenizer
    public let pool: ComputePool

    public init(model: LanguageModel, tokenizer: Tokenizer, pool: ComputePool = .allCores) {
        self.model = model
        self.tokenizer = tokenizer
        self.pool = pool
    }

    /// Generates with one fixed delta (or none, for the base model).
    public func generate(
        _ request: GenerationRequest,
        state: ModelState,
        delta: (any ProjectionDelta)?,
        onText: (String) -> Void = { _ in }
    ) throws -> GenerationResult {
        try generate(request, state: state, source: FixedDelta(delta), onText: onText)
    }

    /// Generates from `request.promptTokens`, calling `onText` with each piece
    /// of text as soon as it is final. `state` must be empty or hold exactly a
    /// prefix of the prompt (its cached positions are reused). The blend comes
    /// from `source` once per forward pass, so a router's weights may change
    /// between tokens.
    public func generate(
        _ request: GenerationRequest,
        state: ModelState,
        source: any DeltaSource,
        onText: (String) -> Void = { _ in }
    ) throws -> GenerationResult {
        try request.sampling.validate()
        guard request.maxTokens >= 0 else {
            throw GenerationError.invalidParameter(name: "max-tokens", value: "\(request.maxTokens)", expected: "an integer >= 0")
        }
        guard !request.promptTokens.isEmpty else {
            throw GenerationError.emptyPrompt(hint: "give at least one token of prompt")
        }
        guard request.promptTokens.count <= state.contextLength else {
            throw GenerationError.promptTooLong(tokens: request.promptTokens.count, contextLength: state.contextLength)
        }
        guard state.count < request.promptTokens.count else {
            throw GenerationError.invalidParameter(name: "state", value: "\(state.count) cached positions", expected: "fewer than the \(request.promptTokens.count) prompt tokens")
        }

        var statistics = GenerationStatistics()
        statistics.promptTokens = request.promptTokens.count
        statistics.cachedPromptTokens = state.count

        // Prefill: run every prompt token not yet cached; keep the last logits.
        let prefillStart = Date()
        let uncached = Array(request.promptTokens[state.count...])
        var logits = try model.forward(uncached, state: state, delta: source.deltaForStep(), logits: .last, pool: pool)
        statistics.promptSeconds = Date().timeIntervalSince(prefillStart)

        var decoder = SequenceDecoder(request: request, tokenizer: tokenizer)
        let decodeStart = Date()
        while true {
            let (text, next) = decoder.step(logits: logits)
            if !text.isEmpty { onText(text) }
            guard let next else { break }
            guard state.count < state.contextLength else {
                // The context is full: the sampled token cannot be run.
                let rest = decoder.finish(.length)
                if !rest.isEmpty { onText(rest) }
                break
            }
            logits = try model.forward([next], state: state, delta: source.deltaForStep(), logits: .last, pool: pool)
        }

        if decoder.finishReason == .error {
            throw GenerationError.nonFiniteLogits(position: state.count)
        }
        statistics.generatedTokens = decoder.generated.count
        statistics.generationSeconds = Date().timeIntervalSince(decodeStart)
        return GenerationResult(text: decoder.text, tokens: decoder.generated,
                                finishReason: decoder.finishReason ?? .length, statistics: statistics)
    }
}
