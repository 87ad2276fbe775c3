import Foundation
import Models
import Testing

/// A config.json for a small Llama, with `changes` applied (nil removes a key).
func llamaConfig(_ changes: [String: Any?] = [:]) throws -> JSONFields {
    var object: [String: Any] = [
        "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 320, "rms_norm_eps": 1e-5,
        "max_position_embeddings": 256, "tie_word_embeddings": true, "hidden_act": "silu",
        "rope_parameters": ["rope_type": "default", "rope_theta": 10000.0],
        "architectures": ["LlamaForCausalLM"], "_name_or_path": "tiny",
    ]
    for (key, value) in changes {
        object[key] = value
    }
    let data = try JSONSerialization.data(withJSONObject: object.compactMapValues { $0 })
    return try JSONFields(file: "config.json", data: data)
}

func decodeError(_ fields: JSONFields) -> String? {
    do {
        _ = try ModelConfig.decode(fields)
        return nil
    } catch {
        return String(describing: error)
    }
}

struct ConfigDecodingTests {
    @Test func decodesLlama() throws {
        let config = try ModelConfig.decode(try llamaConfig())
        #expect(config.headDim == 16)
        #expect(config.numKeyValueHeads == 2)
        #expect(config.ropeTheta == 10000)
        #expect(config.tieWordEmbeddings)
        #expect(!config.qkvBias)
        #expect(!config.queryKeyNorm)
    }

    @Test func readsRopeThetaFromEitherPlace() throws {
        let legacy = try ModelConfig.decode(try llamaConfig(["rope_parameters": nil, "rope_theta": 50000.0]))
        #expect(legacy.ropeTheta == 50000)
        let nested = try ModelConfig.decode(try llamaConfig(["rope_parameters": ["rope_theta": 1e6, "rope_type": "default"]]))
        #expect(nested.ropeTheta == 1e6)
        let missing = try ModelConfig.decode(try llamaConfig(["rope_parameters": nil]))
        #expect(missing.ropeTheta == 10000)
    }

    @Test func architecturesSetTheirOptionalParts() throws {
        let qwen2 = try ModelConfig.decode(try llamaConfig(["model_type": "qwen2"]))
        #expect(qwen2.qkvBias && !qwen2.outputBias && !qwen2.queryKeyNorm)
        let qwen3 = try ModelConfig.decode(try llamaConfig(["model_type": "qwen3", "head_dim": 24]))
        #expect(qwen3.queryKeyNorm && !qwen3.qkvBias && qwen3.headDim == 24)
        let llamaWithBias = try ModelConfig.decode(try llamaConfig(["attention_bias": true, "mlp_bias": true]))
        #expect(llamaWithBias.qkvBias && llamaWithBias.outputBias && llamaWithBias.mlpBias)
        let eosList = try ModelConfig.decode(try llamaConfig(["eos_token_id": [2, 7]]))
        #expect(eosList.eosTokenIds == [2, 7])
    }

    /// Each config change and a fragment of the error it must produce.
    nonisolated(unsafe) static let rejected: [(changes: [String: Any?], fragment: String)] = [
        (["model_type": "gpt2"], "'model_type' = \"gpt2\" is not supported. Supported model types: llama, qwen2, qwen3"),
        (["model_type": nil], "'model_type' is missing"),
        (["mystery_feature": 3], "'mystery_feature' = 3 is not supported"),
        (["rope_parameters": ["rope_type": "yarn", "factor": 4.0]], "'rope_parameters.rope_type' = \"yarn\" is not supported"),
        (["rope_scaling": ["type": "linear", "factor": 2.0]], "'rope_scaling.rope_type' = \"linear\" is not supported"),
        (["model_type": "qwen2", "use_sliding_window": true], "'use_sliding_window' = true is not supported"),
        (["model_type": "qwen3", "layer_types": ["full_attention", "sliding_attention"]], "'layer_types'"),
        (["hidden_act": "gelu"], "'hidden_act' = \"gelu\" is not supported"),
        (["num_key_value_heads": 3], "'num_key_value_heads' is 3, expected a divisor of num_attention_heads (4)"),
        (["hidden_size": "64"], "'hidden_size' is \"64\", expected an integer"),
        (["hidden_size": nil], "'hidden_size' is missing, expected an integer (required)"),
        (["vocab_size": 0], "'vocab_size' is 0, expected an integer >= 1"),
        (["quantization_config": ["quant_method": "awq"]], "'quantization_config' = an object with keys \"quant_method\" is not supported"),
        (["tie_word_embeddings": "yes"], "'tie_word_embeddings' is \"yes\", expected true or false"),
        (["hidden_size": 60, "num_attention_heads": 8, "num_key_value_heads": 8], "'head_dim' is missing, expected present"),
        (["partial_rotary_factor": 0.5], "'partial_rotary_factor' = 0.5 is not supported"),
        (["architectures": ["LlamaForSequenceClassification"]], "'architectures' = [\"LlamaForSequenceClassification\"] is not supported"),
        (["rope_interleaved": true], "'rope_interleaved' = true is not supported"),
        (["rms_norm_eps": -1.0], "'rms_norm_eps' is -1, expected a positive number"),
        (["max_position_embeddings": 0], "'max_position_embeddings' is 0, expected a positive integer"),
    ]

    @Test func rejectsUnsupportedOrInvalidConfigs() throws {
        for (changes, fragment) in Self.rejected {
            let message = decodeError(try llamaConfig(changes))
            #expect(message?.contains(fragment) == true, "\(changes): \(message ?? "accepted")")
            #expect(message?.hasPrefix("config.json: ") == true)
        }
    }

    @Test func acceptsTransformersBookkeepingKeys() throws {
        let config = try llamaConfig([
            "transformers_version": "5.25.0", "torch_dtype": "bfloat16", "_commit_hash": "abc",
            "use_cache": true, "initializer_range": 0.02, "pad_token_id": NSNull(), "pretraining_tp": 1,
            "is_llama_config": true, "rope_interleaved": false, "auto_map": ["AutoModel": "x"],
        ])
        #expect(decodeError(config) == nil)
    }
}
