import Tensor

extension LanguageModel {
    /// Runs `tokens` through the model and returns the mean over positions of
    /// one hidden state `[hiddenSize]`.
    ///
    /// `layer` is numbered as transformers' `output_hidden_states`: 0 is the
    /// embedding output, `i` the output of decoder layer `i`, and
    /// `numHiddenLayers` the output after the final norm. Only the layers
    /// needed are run, so an early layer costs a fraction of a forward pass.
    public func meanHiddenState(
        _ tokens: [Int], layer: Int, delta: (any ProjectionDelta)? = nil,
        pool: ComputePool = .allCores
    ) throws -> [Float] {
        guard layer >= 0, layer <= config.numHiddenLayers else {
            throw ModelError.invalidConfig(file: "hidden state request", key: "layer",
                                           expected: "0...\(config.numHiddenLayers)", actual: "\(layer)")
        }
        guard !tokens.isEmpty else { return [Float](repeating: 0, count: config.hiddenSize) }
        for token in tokens where token < 0 || token >= config.vocabSize {
            throw ModelError.tokenOutOfRange(token: token, vocabularySize: config.vocabSize)
        }
        guard tokens.count <= config.maxPositionEmbeddings else {
            throw ModelError.contextOverflow(requested: tokens.count, maximum: config.maxPositionEmbeddings)
        }
        let state = makeState(contextLength: tokens.count)
        let hidden = config.hiddenSize
        var sum = [Double](repeating: 0, count: hidden)
        var start = 0
        while start < tokens.count {
            let end = min(tokens.count, start + Self.defaultChunkRows)
            let rows = end - start
            runLayers(Array(tokens[start..<end]), state: state, delta: delta, layerCount: min(layer, config.numHiddenLayers), pool: pool)
            let b = state.buffers
            if layer == config.numHiddenLayers {
                weights.norm.withUnsafeBufferPointer { norm in
                    Kernels.rmsNorm(b.hidden, weight: norm.baseAddress!, epsilon: config.rmsNormEps,
                                    rows: rows, dimension: hidden, output: b.hidden)
                }
            }
            for row in 0..<rows {
                for i in 0..<hidden { sum[i] += Double(b.hidden[row * hidden + i]) }
            }
            start = end
        }
        return sum.map { Float($0 / Double(tokens.count)) }
    }
}
