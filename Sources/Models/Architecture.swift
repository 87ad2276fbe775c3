/// One model family: how its config.json decodes into a `ModelConfig`.
/// The forward pass is shared; an architecture only sets which optional parts
/// (biases, query/key norms) its layers have.
public protocol Architecture: Sendable {
    /// The `model_type` value in config.json.
    static var modelType: String { get }
    /// config.json keys this family reads beyond those all families share.
    static var extraConfigKeys: Set<String> { get }
    static func decodeConfig(_ fields: JSONFields) throws -> ModelConfig
}

/// Maps `model_type` to its architecture.
public enum ArchitectureRegistry {
    static let all: [any Architecture.Type] = [Llama.self, Qwen2.self, Qwen3.self]

    public static var supportedTypes: [String] { all.map { $0.modelType } }

    public static func architecture(for modelType: String) -> (any Architecture.Type)? {
        all.first { $0.modelType == modelType }
    }
}

/// Defaults that transformers' config classes use when a key is absent.
struct ConfigDefaults {
    var rmsNormEps: Double = 1e-6
    var ropeTheta: Double = 10000
    var maxPositionEmbeddings: Int
    var tieWordEmbeddings = false
}

/// Reads the keys every supported family shares and rejects features that
/// would change the math (rope scaling, sliding windows, other activations).
func decodeSharedConfig(_ fields: JSONFields, modelType: String, defaults: ConfigDefaults) throws -> ModelConfig {
    let file = fields.file
    let hiddenSize = try fields.requiredInt("hidden_size", minimum: 1)
    let numAttentionHeads = try fields.requiredInt("num_attention_heads", minimum: 1)
    let numKeyValueHeads = try fields.int("num_key_value_heads") ?? numAttentionHeads
    guard numKeyValueHeads >= 1, numAttentionHeads % numKeyValueHeads == 0 else {
        throw ModelError.invalidConfig(file: file, key: "num_key_value_heads", expected: "a divisor of num_attention_heads (\(numAttentionHeads))", actual: "\(numKeyValueHeads)")
    }
    let headDim: Int
    if let explicit = try fields.int("head_dim") {
        headDim = explicit
    } else {
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelError.invalidConfig(file: file, key: "head_dim", expected: "present, because hidden_size (\(hiddenSize)) is not a multiple of num_attention_heads (\(numAttentionHeads))", actual: "missing")
        }
        headDim = hiddenSize / numAttentionHeads
    }
    guard headDim > 0, headDim % 2 == 0 else {
        throw ModelError.invalidConfig(file: file, key: "head_dim", expected: "a positive even number", actual: "\(headDim)")
    }

    let activation = try fields.string("hidden_act") ?? "silu"
    guard activation == "silu" else {
        throw ModelError.unsupported(file: file, key: "hidden_act", value: "\"\(activation)\"", hint: "Only \"silu\" (SwiGLU MLP) is implemented.")
    }
    if !fields.isAbsent("quantization_config") {
        throw ModelError.unsupported(file: file, key: "quantization_config", value: fields["quantization_config"]?.summary ?? "set", hint: "Quantized Hugging Face checkpoints are not supported; use float32, float16 or bfloat16 weights.")
    }
    try rejectSlidingWindow(fields)
    try checkArchitectures(fields)
    if try fields.bool("rope_interleaved") == true {
        throw ModelError.unsupported(file: fields.file, key: "rope_interleaved", value: "true",
                                     hint: "Only the rotate-half RoPE layout of Hugging Face checkpoints is implemented.")
    }

    let layers = try fields.requiredInt("num_hidden_layers", minimum: 1)
    let eos = try fields.intOrIntArray("eos_token_id") ?? []
    return ModelConfig(
        modelType: modelType,
        hiddenSize: hiddenSize,
        intermediateSize: try fields.requiredInt("intermediate_size", minimum: 1),
        numHiddenLayers: layers,
        numAttentionHeads: numAttentionHeads,
        numKeyValueHeads: numKeyValueHeads,
        headDim: headDim,
        vocabSize: try fields.requiredInt("vocab_size", minimum: 1),
        maxPositionEmbeddings: try positiveInt(fields, "max_position_embeddings") ?? defaults.maxPositionEmbeddings,
        rmsNormEps: try positiveFloat(fields, "rms_norm_eps") ?? Float(defaults.rmsNormEps),
        ropeTheta: try decodeRopeTheta(fields, default: defaults.ropeTheta),
        tieWordEmbeddings: try fields.bool("tie_word_embeddings") ?? defaults.tieWordEmbeddings,
        qkvBias: false, outputBias: false, mlpBias: false, queryKeyNorm: false,
        bosTokenId: try fields.int("bos_token_id"),
        eosTokenIds: eos)
}

func positiveInt(_ fields: JSONFields, _ key: String) throws -> Int? {
    guard let value = try fields.int(key) else { return nil }
    guard value >= 1 else { throw fields.failure(key, "a positive integer") }
    return value
}

func positiveFloat(_ fields: JSONFields, _ key: String) throws -> Float? {
    guard let value = try fields.double(key) else { return nil }
    guard value > 0, Float(value).isFinite, Float(value) > 0 else { throw fields.failure(key, "a positive number") }
    return Float(value)
}

/// Rejects `architectures` entries that are not causal language models
/// (a classification head would silently be read as lm_head).
func checkArchitectures(_ fields: JSONFields) throws {
    guard let architectures = try fields.stringArray("architectures") else { return }
    if let other = architectures.first(where: { !$0.hasSuffix("ForCausalLM") }) {
        throw ModelError.unsupported(file: fields.file, key: "architectures", value: "[\"\(other)\"]",
                                     hint: "Only causal language models (…ForCausalLM) are supported.")
    }
}

/// RoPE base frequency from `rope_parameters.rope_theta` (transformers 5) or
/// top-level `rope_theta` (earlier versions). Only the default RoPE type is
/// implemented; any scaling is rejected rather than ignored.
func decodeRopeTheta(_ fields: JSONFields, default fallback: Double) throws -> Double {
    var theta = try fields.double("rope_theta")
    for key in ["rope_parameters", "rope_scaling"] {
        guard let parameters = try fields.nested(key) else { continue }
        let type = try parameters.string("rope_type") ?? parameters.string("type") ?? "default"
        guard type == "default" else {
            throw ModelError.unsupported(
                file: fields.file, key: parameters.path("rope_type"), value: "\"\(type)\"",
                hint: "Only default RoPE is implemented; scaled RoPE (linear, dynamic, yarn, llama3, longrope) would give wrong results.")
        }
        if let nestedTheta = try parameters.double("rope_theta") { theta = nestedTheta }
        if let factor = try parameters.double("partial_rotary_factor"), factor != 1 {
            throw ModelError.unsupported(file: fields.file, key: parameters.path("partial_rotary_factor"), value: "\(factor)", hint: "Only full rotary embeddings are implemented.")
        }
    }
    if let factor = try fields.double("partial_rotary_factor"), factor != 1 {
        throw ModelError.unsupported(file: fields.file, key: "partial_rotary_factor", value: "\(factor)", hint: "Only full rotary embeddings are implemented.")
    }
    let value = theta ?? fallback
    guard value > 0, value.isFinite else {
        throw ModelError.invalidConfig(file: fields.file, key: "rope_theta", expected: "a positive number", actual: "\(value)")
    }
    return value
}

/// Rejects configs in which any layer attends through a sliding window.
func rejectSlidingWindow(_ fields: JSONFields) throws {
    if try fields.bool("use_sliding_window") == true {
        throw ModelError.unsupported(file: fields.file, key: "use_sliding_window", value: "true", hint: "Sliding-window attention is not implemented.")
    }
    if let layerTypes = try fields.stringArray("layer_types"), let other = layerTypes.first(where: { $0 != "full_attention" }) {
        throw ModelError.unsupported(file: fields.file, key: "layer_types", value: "[… \"\(other)\" …]", hint: "Only \"full_attention\" layers are implemented.")
    }
}
