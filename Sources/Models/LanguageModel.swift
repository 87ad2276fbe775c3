import Foundation
import SafeTensors
import Tensor

/// How to load a model.
public struct ModelLoadOptions: Sendable {
    /// Quantize the projection, embedding and lm_head weights at load
    /// (`.q8_0` or `.q4_0`); nil keeps the stored type.
    public var quantization: DType?
    /// Element type of the KV caches `makeState` creates.
    public var kvCacheType: KVCacheType = .f32
    /// Threads used while quantizing.
    public var pool: ComputePool = .allCores

    public init(quantization: DType? = nil, kvCacheType: KVCacheType = .f32) {
        self.quantization = quantization
        self.kvCacheType = kvCacheType
    }
}

/// Which positions of a forward pass produce logits.
public enum LogitSelection: Sendable {
    /// None: only fill the cache (prompt prefill before more tokens arrive).
    case none
    /// The last position only (decoding).
    case last
    /// Every position (scoring).
    case all
}

/// A decoder-only transformer (Llama, Qwen2, Qwen3) with weights mapped from
/// a Hugging Face directory. Immutable and shared; per-sequence state lives in
/// `ModelState`.
public final class LanguageModel: Sendable {
    public let directory: URL
    public let config: ModelConfig
    let weights: ModelWeights
    let rotary: RotaryEmbedding

    /// Default number of tokens run through the layers at once; longer inputs
    /// are processed in chunks of this size to bound scratch memory.
    public static let defaultChunkRows = 256

    public let options: ModelLoadOptions

    public init(directory: URL, options: ModelLoadOptions = ModelLoadOptions()) throws {
        self.directory = directory
        self.options = options
        config = try ModelConfig.load(directory: directory)
        let tensors = try ModelTensors(directory: directory)
        let mapped = try ModelWeights(tensors: tensors, config: config)
        if let quantization = options.quantization {
            weights = mapped.quantized(to: quantization, tied: config.tieWordEmbeddings, pool: options.pool)
        } else {
            weights = mapped
        }
        rotary = RotaryEmbedding(headDim: config.headDim, theta: config.ropeTheta)
    }

    /// All projections of all layers, for components that attach to them.
    public var projections: [Projection] { weights.layers.flatMap { $0.projections } }

    /// Bytes of all weights as stored (mapped or copied).
    public var weightByteCount: Int {
        var total = weights.embedTokens.byteCount + weights.norm.count * 4
        if !config.tieWordEmbeddings { total += weights.lmHead.byteCount }
        for layer in weights.layers {
            total += layer.projections.reduce(0) { $0 + $1.weight.byteCount + ($1.bias?.count ?? 0) * 4 }
            total += (layer.inputLayernorm.count + layer.postAttentionLayernorm.count) * 4
        }
        return total
    }

    /// A fresh run state; `contextLength` defaults to `max_position_embeddings`
    /// and may not exceed it. The cache type defaults to the model's
    /// `options.kvCacheType`.
    public func makeState(contextLength: Int? = nil, cacheType: KVCacheType? = nil) -> ModelState {
        let length = min(contextLength ?? config.maxPositionEmbeddings, config.maxPositionEmbeddings)
        return ModelState(config: config, contextLength: max(1, length), cacheType: cacheType ?? options.kvCacheType)
    }

    /// Runs `tokens` at positions `state.count ..< state.count + tokens.count`,
    /// appends their keys and values to `state`, and returns the selected
    /// logits, row-major `[rows, vocabSize]`.
    public func forward(
        _ tokens: [Int],
        state: ModelState,
        delta: (any ProjectionDelta)? = nil,
        logits selection: LogitSelection = .last,
        chunkRows: Int = LanguageModel.defaultChunkRows,
        pool: ComputePool = .allCores
    ) throws -> [Float] {
        precondition(chunkRows > 0, "LanguageModel.forward: chunkRows must be positive")
        for token in tokens where token < 0 || token >= config.vocabSize {
            throw ModelError.tokenOutOfRange(token: token, vocabularySize: config.vocabSize)
        }
        guard state.count + tokens.count <= state.contextLength else {
            throw ModelError.contextOverflow(requested: state.count + tokens.count, maximum: state.contextLength)
        }
        var result: [Float] = []
        var start = 0
        while start < tokens.count {
            let end = min(tokens.count, start + chunkRows)
            let isLastChunk = end == tokens.count
            let chunkSelection: LogitSelection
            switch selection {
            case .none: chunkSelection = .none
            case .last: chunkSelection = isLastChunk ? .last : .none
            case .all: chunkSelection = .all
            }
            result += runChunk(Array(tokens[start..<end]), state: state, delta: delta, selection: chunkSelection, pool: pool)
            start = end
        }
        return result
    }

    private func runChunk(
        _ tokens: [Int], state: ModelState, delta: (any ProjectionDelta)?,
        selection: LogitSelection, pool: ComputePool
    ) -> [Float] {
        let rows = tokens.count
        let hidden = config.hiddenSize
        runLayers(tokens, state: state, delta: delta, layerCount: config.numHiddenLayers, pool: pool)
        let b = state.buffers

        // Final norm and lm_head for the selected rows only.
        let selectedRows: Range<Int>
        switch selection {
        case .none: return []
        case .last: selectedRows = (rows - 1)..<rows
        case .all: selectedRows = 0..<rows
        }
        let vocab = config.vocabSize
        let normed = b.normed + selectedRows.lowerBound * hidden
        weights.norm.withUnsafeBufferPointer { norm in
            Kernels.rmsNorm(b.hidden + selectedRows.lowerBound * hidden, weight: norm.baseAddress!,
                            epsilon: config.rmsNormEps, rows: selectedRows.count, dimension: hidden, output: normed)
        }
        return [Float](unsafeUninitializedCapacity: selectedRows.count * vocab) { buffer, count in
            Kernels.linear(weight: weights.lmHead, input: normed, rows: selectedRows.count,
                           output: buffer.baseAddress!, pool: pool)
            count = selectedRows.count * vocab
        }
    }

    /// Embeds `tokens` at positions `state.count...` and runs the first
    /// `layerCount` decoder layers, leaving the residual stream `[rows, hidden]`
    /// in `state.buffers.hidden` and advancing the state.
    func runLayers(
        _ tokens: [Int], state: ModelState, delta: (any ProjectionDelta)?,
        layerCount: Int, pool: ComputePool
    ) {
        let segment = RowSegment(state: state, firstPosition: state.count, rows: 0..<tokens.count, delta: delta)
        state.reserve(state.count + tokens.count)
        state.buffers.reserve(rows: tokens.count)
        runLayers(tokens, segments: [segment], buffers: state.buffers, layerCount: layerCount, pool: pool)
        state.advance(by: tokens.count)
    }

    /// Embeds `tokens` and runs the first `layerCount` decoder layers, where
    /// each segment's rows belong to its own sequence. Leaves the residual
    /// stream `[rows, hidden]` in `buffers.hidden`; the caller reserves cache
    /// space and advances the states.
    func runLayers(
        _ tokens: [Int], segments: [RowSegment], buffers b: ActivationBuffers,
        layerCount: Int, pool: ComputePool
    ) {
        let hidden = config.hiddenSize

        // 1. Embedding lookup: x [rows, hidden].
        for (row, token) in tokens.enumerated() {
            weights.embedTokens.copyRow(token, to: b.hidden + row * hidden)
        }
        let positions = segments.flatMap { segment in
            (0..<segment.rows.count).map { segment.firstPosition + $0 }
        }
        let table = rotary.table(positions: positions)

        // 2. Decoder layers, each adding attention and MLP outputs to x.
        for (index, layer) in weights.layers.prefix(layerCount).enumerated() {
            runLayer(layer, index: index, rows: tokens.count, segments: segments, buffers: b, table: table, pool: pool)
        }
    }

    private func runLayer(
        _ layer: LayerWeights, index: Int, rows: Int, segments: [RowSegment],
        buffers b: ActivationBuffers, table: (cos: [Float], sin: [Float]), pool: ComputePool
    ) {
        let c = config
        let hidden = c.hiddenSize

        // Attention block: h = norm(x); q, k, v = projections of h.
        layer.inputLayernorm.withUnsafeBufferPointer { w in
            Kernels.rmsNorm(b.hidden, weight: w.baseAddress!, epsilon: c.rmsNormEps, rows: rows, dimension: hidden, output: b.normed)
        }
        layer.qProj.apply(input: b.normed, rows: rows, output: b.query, segments: segments, pool: pool)
        layer.kProj.apply(input: b.normed, rows: rows, output: b.key, segments: segments, pool: pool)
        layer.vProj.apply(input: b.normed, rows: rows, output: b.value, segments: segments, pool: pool)

        // Qwen3: RMSNorm over each head vector of q and k, before RoPE.
        if let qNorm = layer.qNorm, let kNorm = layer.kNorm {
            qNorm.withUnsafeBufferPointer { w in
                Kernels.rmsNorm(b.query, weight: w.baseAddress!, epsilon: c.rmsNormEps,
                                rows: rows * c.numAttentionHeads, dimension: c.headDim, output: b.query)
            }
            kNorm.withUnsafeBufferPointer { w in
                Kernels.rmsNorm(b.key, weight: w.baseAddress!, epsilon: c.rmsNormEps,
                                rows: rows * c.numKeyValueHeads, dimension: c.headDim, output: b.key)
            }
        }
        rotary.apply(b.query, rows: rows, heads: c.numAttentionHeads, table: table)
        rotary.apply(b.key, rows: rows, heads: c.numKeyValueHeads, table: table)

        // Each segment appends its keys and values to its own cache, then its
        // queries attend over that cache.
        let width = c.keyValueWidth
        for segment in segments {
            let first = segment.rows.lowerBound
            segment.state.store(layer: index, position: segment.firstPosition, keys: b.key + first * width,
                                values: b.value + first * width, rows: segment.rows.count)
            let shape = AttentionShape(
                queryHeads: c.numAttentionHeads, keyValueHeads: c.numKeyValueHeads, headDim: c.headDim,
                rows: segment.rows.count, firstPosition: segment.firstPosition, scale: 1 / Float(c.headDim).squareRoot())
            segment.state.attend(layer: index, queries: b.query + first * c.queryWidth,
                                 output: b.attention + first * c.queryWidth, shape: shape, pool: pool)
        }
        layer.oProj.apply(input: b.attention, rows: rows, output: b.projected, segments: segments, pool: pool)
        Kernels.add(b.hidden, b.projected, count: rows * hidden)

        // MLP block: x += down(silu(gate(h)) * up(h)) with h = norm(x).
        layer.postAttentionLayernorm.withUnsafeBufferPointer { w in
            Kernels.rmsNorm(b.hidden, weight: w.baseAddress!, epsilon: c.rmsNormEps, rows: rows, dimension: hidden, output: b.normed)
        }
        layer.gateProj.apply(input: b.normed, rows: rows, output: b.gate, segments: segments, pool: pool)
        layer.upProj.apply(input: b.normed, rows: rows, output: b.up, segments: segments, pool: pool)
        Kernels.siluMultiply(gate: b.gate, up: b.up, count: rows * c.intermediateSize)
        layer.downProj.apply(input: b.gate, rows: rows, output: b.projected, segments: segments, pool: pool)
        Kernels.add(b.hidden, b.projected, count: rows * hidden)
    }
}

/// Consecutive rows of a forward pass that belong to one sequence: their
/// KV cache, the position of the first row, and the experts' delta.
struct RowSegment {
    let state: ModelState
    let firstPosition: Int
    let rows: Range<Int>
    let delta: (any ProjectionDelta)?
}
