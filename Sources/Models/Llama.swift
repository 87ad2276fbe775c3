/// Llama family (Llama 2/3 layouts, SmolLM2): optional `attention_bias` on
/// q, k, v and o, optional `mlp_bias`, explicit or derived `head_dim`.
public enum Llama: Architecture {
    public static let modelType = "llama"
    public static let extraConfigKeys: Set<String> = ["attention_bias", "mlp_bias", "head_dim", "pretraining_tp"]

    public static func decodeConfig(_ fields: JSONFields) throws -> ModelConfig {
        var config = try decodeSharedConfig(fields, modelType: modelType, defaults: ConfigDefaults(maxPositionEmbeddings: 2048))
        let attentionBias = try fields.bool("attention_bias") ?? false
        config.qkvBias = attentionBias
        config.outputBias = attentionBias
        config.mlpBias = try fields.bool("mlp_bias") ?? false
        // pretraining_tp > 1 only split the projections into slices in old
        // transformers versions; the result is the same matrix product.
        _ = try fields.int("pretraining_tp")
        return config
    }
}
