import Foundation
import SafeTensors
import Tensor

/// Weights of one decoder layer. Norm weights are small and widened to Float;
/// projection weights stay in the mapped file.
struct LayerWeights: Sendable {
    let inputLayernorm: [Float]          // [hidden]
    let qProj: Projection                // [heads * headDim, hidden]
    let kProj: Projection                // [kvHeads * headDim, hidden]
    let vProj: Projection                // [kvHeads * headDim, hidden]
    let oProj: Projection                // [hidden, heads * headDim]
    let qNorm: [Float]?                  // [headDim], Qwen3
    let kNorm: [Float]?                  // [headDim], Qwen3
    let postAttentionLayernorm: [Float]  // [hidden]
    let gateProj: Projection             // [intermediate, hidden]
    let upProj: Projection               // [intermediate, hidden]
    let downProj: Projection             // [hidden, intermediate]

    var projections: [Projection] { [qProj, kProj, vProj, oProj, gateProj, upProj, downProj] }
}

/// All weights of a model, loaded by checkpoint tensor names.
struct ModelWeights: Sendable {
    let embedTokens: WeightMatrix        // [vocab, hidden]
    let layers: [LayerWeights]
    let norm: [Float]                    // [hidden]
    let lmHead: WeightMatrix             // [vocab, hidden]; the embedding when tied

    init(embedTokens: WeightMatrix, layers: [LayerWeights], norm: [Float], lmHead: WeightMatrix) {
        self.embedTokens = embedTokens
        self.layers = layers
        self.norm = norm
        self.lmHead = lmHead
    }

    init(tensors: ModelTensors, config: ModelConfig) throws {
        var loader = WeightLoader(tensors: tensors)
        let hidden = config.hiddenSize

        embedTokens = try loader.matrix("model.embed_tokens.weight", rows: config.vocabSize, columns: hidden)
        layers = try (0..<config.numHiddenLayers).map { layer in
            try Self.loadLayer(layer, config: config, loader: &loader)
        }
        norm = try loader.vector("model.norm.weight", count: hidden)
        if config.tieWordEmbeddings {
            // transformers ties lm_head to the embedding and ignores a stored copy.
            loader.markUsed("lm_head.weight")
            lmHead = embedTokens
        } else {
            lmHead = try loader.matrix("lm_head.weight", rows: config.vocabSize, columns: hidden)
        }
        try loader.checkAllUsed()
    }

    private static func loadLayer(_ layer: Int, config: ModelConfig, loader: inout WeightLoader) throws -> LayerWeights {
        let prefix = "model.layers.\(layer)"
        let hidden = config.hiddenSize
        func projection(_ kind: ProjectionKind, out: Int, in inFeatures: Int, bias: Bool) throws -> Projection {
            let id = ProjectionID(layer: layer, kind: kind)
            let weight = try loader.matrix("\(id.moduleName).weight", rows: out, columns: inFeatures)
            let biasValues = bias ? try loader.vector("\(id.moduleName).bias", count: out) : nil
            return Projection(id: id, weight: weight, bias: biasValues)
        }
        return LayerWeights(
            inputLayernorm: try loader.vector("\(prefix).input_layernorm.weight", count: hidden),
            qProj: try projection(.qProj, out: config.queryWidth, in: hidden, bias: config.qkvBias),
            kProj: try projection(.kProj, out: config.keyValueWidth, in: hidden, bias: config.qkvBias),
            vProj: try projection(.vProj, out: config.keyValueWidth, in: hidden, bias: config.qkvBias),
            oProj: try projection(.oProj, out: hidden, in: config.queryWidth, bias: config.outputBias),
            qNorm: config.queryKeyNorm ? try loader.vector("\(prefix).self_attn.q_norm.weight", count: config.headDim) : nil,
            kNorm: config.queryKeyNorm ? try loader.vector("\(prefix).self_attn.k_norm.weight", count: config.headDim) : nil,
            postAttentionLayernorm: try loader.vector("\(prefix).post_attention_layernorm.weight", count: hidden),
            gateProj: try projection(.gateProj, out: config.intermediateSize, in: hidden, bias: config.mlpBias),
            upProj: try projection(.upProj, out: config.intermediateSize, in: hidden, bias: config.mlpBias),
            downProj: try projection(.downProj, out: hidden, in: config.intermediateSize, bias: config.mlpBias))
    }
}

/// Quantizes `matrix`, then drops its source pages from resident memory when
/// they are mapped from a file, so loading with quantization never holds the
/// whole float model and its quantized copy at once.
func quantizeReleasingSource(_ matrix: WeightMatrix, to dtype: DType, pool: ComputePool) -> WeightMatrix {
    let quantized = matrix.quantized(to: dtype, pool: pool)
    if let file = matrix.owner as? MappedFile, let fileBase = file.bytes.baseAddress {
        let offset = matrix.base - UnsafeRawPointer(fileBase)
        file.releasePages(offset..<(offset + matrix.byteCount))
    }
    return quantized
}

extension LayerWeights {
    func quantized(to dtype: DType, pool: ComputePool) -> LayerWeights {
        func convert(_ projection: Projection) -> Projection {
            Projection(id: projection.id, weight: quantizeReleasingSource(projection.weight, to: dtype, pool: pool), bias: projection.bias)
        }
        return LayerWeights(
            inputLayernorm: inputLayernorm, qProj: convert(qProj), kProj: convert(kProj), vProj: convert(vProj),
            oProj: convert(oProj), qNorm: qNorm, kNorm: kNorm, postAttentionLayernorm: postAttentionLayernorm,
            gateProj: convert(gateProj), upProj: convert(upProj), downProj: convert(downProj))
    }
}

extension ModelWeights {
    /// The same weights with every matrix quantized to `dtype`. The token
    /// embedding is quantized too (rows are dequantized on lookup); a tied
    /// lm_head shares it. The mapped originals are released once nothing
    /// refers to them.
    func quantized(to dtype: DType, tied: Bool, pool: ComputePool) -> ModelWeights {
        let embedding = quantizeReleasingSource(embedTokens, to: dtype, pool: pool)
        return ModelWeights(
            embedTokens: embedding,
            layers: layers.map { $0.quantized(to: dtype, pool: pool) },
            norm: norm,
            lmHead: tied ? embedding : quantizeReleasingSource(lmHead, to: dtype, pool: pool))
    }
}

/// Reads tensors by name, checks their shapes, and remembers which ones were
/// used so that leftovers can be reported.
struct WeightLoader {
    let tensors: ModelTensors
    private var used: Set<String> = []

    init(tensors: ModelTensors) {
        self.tensors = tensors
    }

    mutating func markUsed(_ name: String) {
        used.insert(name)
    }

    mutating func view(_ name: String, shape: [Int]) throws -> TensorView {
        guard tensors.contains(name) else {
            throw ModelError.invalidWeight(file: tensors.directory.path, tensor: name, expected: "shape \(shape)", actual: "missing")
        }
        let view = try tensors.tensor(named: name)
        guard view.shape == shape else {
            throw ModelError.invalidWeight(file: tensors.path(of: name), tensor: name, expected: "shape \(shape)", actual: "shape \(view.shape)")
        }
        used.insert(name)
        return view
    }

    mutating func matrix(_ name: String, rows: Int, columns: Int) throws -> WeightMatrix {
        let view = try view(name, shape: [rows, columns])
        guard let base = view.data.baseAddress else {
            return WeightMatrix(copying: [], rows: 0, columns: 0)
        }
        if Int(bitPattern: base) % view.dtype.byteSize == 0 {
            return WeightMatrix(rows: rows, columns: columns, dtype: view.dtype, base: base, owner: view.file)
        }
        // A tensor at an odd offset in its file: copy it so the kernels can
        // load whole elements.
        let buffer = OwnedBuffer(byteCount: view.data.count)
        buffer.pointer.copyMemory(from: base, byteCount: view.data.count)
        return WeightMatrix(rows: rows, columns: columns, dtype: view.dtype, base: UnsafeRawPointer(buffer.pointer), owner: buffer)
    }

    mutating func vector(_ name: String, count: Int) throws -> [Float] {
        try view(name, shape: [count]).toFloatArray()
    }

    /// Throws for the first tensor that no part of the model used. Cached
    /// RoPE frequencies saved by old transformers versions are allowed.
    func checkAllUsed() throws {
        for name in tensors.tensorNames where !used.contains(name) && !name.hasSuffix("rotary_emb.inv_freq") {
            throw ModelError.unexpectedWeight(file: tensors.path(of: name), tensor: name)
        }
    }
}
