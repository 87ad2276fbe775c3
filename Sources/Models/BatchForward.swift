import Tensor

/// One sequence's share of a batched forward pass.
public struct BatchEntry {
    /// Tokens to append at positions `state.count...` (one while decoding,
    /// several for a chunk of prompt).
    public let tokens: [Int]
    public let state: ModelState
    public let delta: (any ProjectionDelta)?

    public init(tokens: [Int], state: ModelState, delta: (any ProjectionDelta)?) {
        self.tokens = tokens
        self.state = state
        self.delta = delta
    }
}

/// Activation buffers for batched forward passes, reused across calls.
/// Not thread-safe: one per scheduler.
public final class BatchBuffers {
    let buffers: ActivationBuffers

    init(config: ModelConfig) {
        buffers = ActivationBuffers(config: config)
    }
}

extension LanguageModel {
    public func makeBatchBuffers() -> BatchBuffers {
        BatchBuffers(config: config)
    }

    /// Runs several sequences through the model in one pass: their rows share
    /// every projection (one matrix product per weight), while attention and
    /// the experts' delta stay per sequence. Each entry's state must be
    /// distinct. Returns the logits of each entry's last token, `[entries, vocab]`.
    public func forward(
        batch entries: [BatchEntry],
        buffers batchBuffers: BatchBuffers,
        pool: ComputePool = .allCores
    ) throws -> [Float] {
        var segments: [RowSegment] = []
        var tokens: [Int] = []
        for entry in entries {
            guard !entry.tokens.isEmpty else {
                throw ModelError.invalidConfig(file: "batch", key: "tokens", expected: "at least one token per entry", actual: "none")
            }
            for token in entry.tokens where token < 0 || token >= config.vocabSize {
                throw ModelError.tokenOutOfRange(token: token, vocabularySize: config.vocabSize)
            }
            guard entry.state.count + entry.tokens.count <= entry.state.contextLength else {
                throw ModelError.contextOverflow(requested: entry.state.count + entry.tokens.count, maximum: entry.state.contextLength)
            }
            precondition(!segments.contains { $0.state === entry.state }, "forward(batch:): a state appears twice in one batch")
            segments.append(RowSegment(state: entry.state, firstPosition: entry.state.count,
                                       rows: tokens.count..<(tokens.count + entry.tokens.count), delta: entry.delta))
            tokens += entry.tokens
        }
        guard !tokens.isEmpty else { return [] }

        for segment in segments {
            segment.state.reserve(segment.firstPosition + segment.rows.count)
        }
        let b = batchBuffers.buffers
        b.reserve(rows: tokens.count)
        runLayers(tokens, segments: segments, buffers: b, layerCount: config.numHiddenLayers, pool: pool)
        for segment in segments {
            segment.state.advance(by: segment.rows.count)
        }

        // Final norm and lm_head on each entry's last row, gathered together.
        let hidden = config.hiddenSize
        let vocab = config.vocabSize
        for (index, segment) in segments.enumerated() {
            (b.normed + index * hidden).update(from: b.hidden + (segment.rows.upperBound - 1) * hidden, count: hidden)
        }
        weights.norm.withUnsafeBufferPointer { norm in
            Kernels.rmsNorm(b.normed, weight: norm.baseAddress!, epsilon: config.rmsNormEps,
                            rows: segments.count, dimension: hidden, output: b.normed)
        }
        return [Float](unsafeUninitializedCapacity: segments.count * vocab) { buffer, count in
            Kernels.linear(weight: weights.lmHead, input: b.normed, rows: segments.count,
                           output: buffer.baseAddress!, pool: pool)
            count = segments.count * vocab
        }
    }
}
