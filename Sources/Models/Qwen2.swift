/// Qwen2 family (Qwen2, Qwen2.5, Qwen2.5-Coder): bias on q, k and v, none on o.
public enum Qwen2: Architecture {
    public static let modelType = "qwen2"
    public static let extraConfigKeys: Set<String> = ["head_dim", "use_sliding_window", "sliding_window", "max_window_layers", "layer_types"]

    public static func decodeConfig(_ fields: JSONFields) throws -> ModelConfig {
        var config = try decodeSharedConfig(fields, modelType: modelType, defaults: ConfigDefaults(maxPositionEmbeddings: 32768))
        config.qkvBias = true
        return config
    }
}
