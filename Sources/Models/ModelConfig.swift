import Foundation

/// The hyper-parameters of a decoder-only model, decoded from config.json.
/// Property names are the Hugging Face keys in camelCase.
public struct ModelConfig: Sendable, Equatable {
    public var modelType: String
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var tieWordEmbeddings: Bool
    /// Bias on q, k, v (Qwen2 always; Llama and Qwen3 when `attention_bias`).
    public var qkvBias: Bool
    /// Bias on o_proj (Llama and Qwen3 when `attention_bias`).
    public var outputBias: Bool
    /// Bias on gate, up and down (Llama `mlp_bias`).
    public var mlpBias: Bool
    /// Per-head RMSNorm on queries and keys before RoPE (Qwen3).
    public var queryKeyNorm: Bool
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]

    public init(
        modelType: String, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
        numAttentionHeads: Int, numKeyValueHeads: Int, headDim: Int, vocabSize: Int,
        maxPositionEmbeddings: Int, rmsNormEps: Float, ropeTheta: Double, tieWordEmbeddings: Bool,
        qkvBias: Bool, outputBias: Bool, mlpBias: Bool, queryKeyNorm: Bool,
        bosTokenId: Int?, eosTokenIds: [Int]
    ) {
        self.modelType = modelType
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.headDim = headDim
        self.vocabSize = vocabSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.tieWordEmbeddings = tieWordEmbeddings
        self.qkvBias = qkvBias
        self.outputBias = outputBias
        self.mlpBias = mlpBias
        self.queryKeyNorm = queryKeyNorm
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
    }

    /// Width of the concatenated query heads.
    public var queryWidth: Int { numAttentionHeads * headDim }
    /// Width of the concatenated key (or value) heads.
    public var keyValueWidth: Int { numKeyValueHeads * headDim }
}

extension ModelConfig {
    /// Reads config.json from a model directory and checks it against the
    /// architecture its `model_type` names.
    public static func load(directory: URL) throws -> ModelConfig {
        let fields = try JSONFields(url: directory.appendingPathComponent("config.json"))
        return try decode(fields)
    }

    /// Decodes and validates a parsed config.json.
    public static func decode(_ fields: JSONFields) throws -> ModelConfig {
        guard let modelType = try fields.string("model_type") else {
            throw ModelError.invalidConfig(file: fields.file, key: "model_type", expected: "one of \(ArchitectureRegistry.supportedTypes)", actual: "missing")
        }
        guard let architecture = ArchitectureRegistry.architecture(for: modelType) else {
            throw ModelError.unsupported(
                file: fields.file, key: "model_type", value: "\"\(modelType)\"",
                hint: "Supported model types: \(ArchitectureRegistry.supportedTypes.joined(separator: ", ")).")
        }
        try ConfigKeys.checkKnown(fields, architecture: architecture)
        return try architecture.decodeConfig(fields)
    }
}
