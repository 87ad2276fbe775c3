/// The config.json keys lora-moe knows. A key outside these lists is rejected,
/// because an unknown key may change the model in a way this engine would
/// silently get wrong. Keys starting with "_" are transformers' private
/// bookkeeping (`_name_or_path`, `_commit_hash`, …) and are always accepted.
enum ConfigKeys {
    /// Keys read by `decodeSharedConfig` for every family.
    static let shared: Set<String> = [
        "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings", "rms_norm_eps",
        "rope_theta", "rope_parameters", "rope_scaling", "partial_rotary_factor", "tie_word_embeddings",
        "hidden_act", "quantization_config", "bos_token_id", "eos_token_id", "use_sliding_window", "layer_types",
        "architectures", "rope_interleaved",
    ]

    /// Keys that do not affect inference: training settings, generation
    /// defaults, bookkeeping written by transformers' base config class.
    static let noEffect: Set<String> = [
        "attn_implementation",
        "transformers_version", "dtype", "torch_dtype", "use_cache", "is_llama_config", "transformers.js_config",
        "auto_map",
        "initializer_range", "attention_dropout", "hidden_dropout", "embd_pdrop", "resid_pdrop",
        "pad_token_id", "unk_token_id", "sep_token_id", "decoder_start_token_id",
        "output_attentions", "output_hidden_states", "return_dict", "use_return_dict", "torchscript",
        "use_bfloat16", "tf_legacy_loss", "pruned_heads", "chunk_size_feed_forward",
        "is_encoder_decoder", "is_decoder", "cross_attention_hidden_size", "add_cross_attention",
        "tie_encoder_decoder", "id2label", "label2id", "problem_type", "finetuning_task",
        "tokenizer_class", "prefix", "task_specific_params",
        "max_length", "min_length", "do_sample", "early_stopping", "num_beams", "num_beam_groups",
        "diversity_penalty", "temperature", "top_k", "top_p", "typical_p", "repetition_penalty",
        "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids",
        "num_return_sequences", "output_scores", "return_dict_in_generate", "forced_bos_token_id",
        "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty",
        "suppress_tokens", "begin_suppress_tokens", "sliding_window", "max_window_layers",
    ]

    static func checkKnown(_ fields: JSONFields, architecture: any Architecture.Type) throws {
        let known = shared.union(noEffect).union(architecture.extraConfigKeys)
        if let unknown = fields.keys.first(where: { !known.contains($0) && !$0.hasPrefix("_") }) {
            throw ModelError.unsupported(
                file: fields.file, key: unknown, value: fields[unknown]?.summary ?? "null",
                hint: "lora-moe does not know this \(architecture.modelType) config key and cannot tell whether it changes the model.")
        }
    }
}
