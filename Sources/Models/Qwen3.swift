/// Qwen3 family (dense): per-head RMSNorm on queries and keys (`q_norm`,
/// `k_norm`) before RoPE, explicit `head_dim`, optional `attention_bias`.
public enum Qwen3: Architecture {
    public static let modelType = "qwen3"
    public static let extraConfigKeys: Set<String> = [
        "head_dim", "attention_bias", "use_sliding_window", "sliding_window", "max_window_layers", "layer_types",
    ]

    public static func decodeConfig(_ fields: JSONFields) throws -> ModelConfig {
        var config = try decodeSharedConfig(fields, modelType: modelType, defaults: ConfigDefaults(maxPositionEmbeddings: 32768))
        let attentionBias = try fields.bool("attention_bias") ?? false
        config.qkvBias = attentionBias
        config.outputBias = attentionBias
        config.queryKeyNorm = true
        return config
    }
}
