import Models
import Tensor

/// Log-probabilities of a continuation under the model.
public struct ScoreResult: Sendable {
    /// Prompt ids followed by continuation ids.
    public var tokens: [Int]
    public var promptTokenCount: Int
    /// Natural-log probability of each continuation token given all tokens before it.
    public var logprobs: [Float]
    /// Sum of `logprobs`, accumulated in Double.
    public var totalLogprob: Double { logprobs.reduce(0.0) { $0 + Double($1) } }
}

extension LanguageModel {
    /// Positions whose logits one scoring step keeps in memory.
    static let scoringChunkRows = 64

    /// Scores `continuation` after `prompt`: one forward pass over all tokens
    /// but the last, reading each continuation token's log-probability from
    /// the logits of the position before it.
    public func score(
        prompt: [Int], continuation: [Int], delta: (any ProjectionDelta)?,
        contextLength: Int? = nil, pool: ComputePool = .allCores
    ) throws -> ScoreResult {
        guard !prompt.isEmpty else {
            throw GenerationError.emptyPrompt(hint: "the first continuation token needs at least one prompt token before it")
        }
        let tokens = prompt + continuation
        let state = makeState(contextLength: contextLength)
        guard tokens.count <= state.contextLength else {
            throw GenerationError.sequenceTooLong(promptTokens: prompt.count, continuationTokens: continuation.count, contextLength: state.contextLength)
        }
        var logprobs: [Float] = []
        guard !continuation.isEmpty else {
            return ScoreResult(tokens: tokens, promptTokenCount: prompt.count, logprobs: logprobs)
        }
        _ = try forward(Array(prompt.dropLast()), state: state, delta: delta, logits: .none, pool: pool)

        // Input position i predicts continuation token i; logits are taken a
        // chunk at a time so memory stays at chunk × vocabulary floats.
        let inputs = [prompt[prompt.count - 1]] + continuation.dropLast()
        let vocab = config.vocabSize
        var row = [Float](repeating: 0, count: vocab)
        var nonFinitePosition: Int?
        var start = 0
        while start < inputs.count {
            let end = min(inputs.count, start + Self.scoringChunkRows)
            let logits = try forward(Array(inputs[start..<end]), state: state, delta: delta, logits: .all, pool: pool)
            logits.withUnsafeBufferPointer { all in
                row.withUnsafeMutableBufferPointer { output in
                    for index in start..<end {
                        Kernels.logSoftmax(all.baseAddress! + (index - start) * vocab, count: vocab, output: output.baseAddress!)
                        logprobs.append(output[continuation[index]])
                        if !output[continuation[index]].isFinite { nonFinitePosition = nonFinitePosition ?? prompt.count + index }
                    }
                }
            }
            start = end
        }
        if let nonFinitePosition {
            throw GenerationError.nonFiniteLogits(position: nonFinitePosition)
        }
        return ScoreResult(tokens: tokens, promptTokenCount: prompt.count, logprobs: logprobs)
    }
}
