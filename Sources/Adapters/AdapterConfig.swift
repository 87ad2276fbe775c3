import Foundation
import Models

/// How `target_modules` selects modules.
public enum TargetModules: Sendable, Equatable, CustomStringConvertible {
    /// Module names or name suffixes: a module matches when its full name
    /// equals an entry or ends with `"." + entry`.
    case names([String])
    /// A regular expression that must match the full module name.
    case pattern(String)
    /// PEFT's `"all-linear"`: every linear layer except the output layer.
    case allLinear

    public var description: String {
        switch self {
        case let .names(names): return "[" + names.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        case let .pattern(pattern): return "\"\(pattern)\""
        case .allLinear: return "\"all-linear\""
        }
    }
}

/// The parts of a PEFT `adapter_config.json` (LoRA) that decide which
/// modules are adapted and how strongly.
public struct AdapterConfig: Sendable {
    public var file: String
    public var r: Int
    public var loraAlpha: Double
    public var useRslora: Bool
    /// nil when adapter_config.json has none: PEFT then uses its default
    /// targets for the model type (`defaultTargets`).
    public var targetModules: TargetModules?
    public var excludeModules: TargetModules?
    /// Layers to adapt; nil means all.
    public var layersToTransform: [Int]?
    public var layersPattern: [String]
    /// Pattern → rank, in file order.
    public var rankPattern: [(pattern: String, rank: Int)]
    /// Pattern → alpha, in file order.
    public var alphaPattern: [(pattern: String, alpha: Double)]
    public var baseModelNameOrPath: String?

    /// Fields that are bookkeeping or only matter during training, so any value is accepted.
    static let noEffectKeys: Set<String> = [
        "task_type", "auto_mapping", "peft_version", "base_model_name_or_path", "revision", "inference_mode",
        "lora_dropout", "megatron_core", "qalora_group_size", "runtime_config", "ensure_weight_tying",
        "loftq_config", "eva_config", "corda_config", "lora_ga_config",
    ]

    /// Fields read by `decode`.
    static let readKeys: Set<String> = [
        "peft_type", "r", "lora_alpha", "use_rslora", "target_modules", "exclude_modules", "layers_to_transform",
        "layers_pattern", "rank_pattern", "alpha_pattern", "fan_in_fan_out", "bias", "init_lora_weights",
        "modules_to_save", "use_dora", "lora_bias",
    ]

    /// Fields naming a PEFT feature that changes the forward pass in a way this
    /// engine does not reproduce; they must be absent or off (null, false, empty).
    static let mustBeOffKeys: [String: String] = [
        "megatron_config": "Megatron-parallel LoRA layers are not supported.",
        "trainable_token_indices": "Trainable token embeddings are not supported.",
        "velora_config": "VeLoRA is not supported.",
        "alora_invocation_tokens": "Activated LoRA (aLoRA) is not supported.",
        "use_qalora": "QALoRA is not supported.",
        "monteclora_config": "MonteCLoRA is not supported.",
        "layer_replication": "Layer replication is not supported.",
        "target_parameters": "LoRA on raw parameters (target_parameters) is not supported.",
        "use_bdlora": "Block-diagonal LoRA is not supported.",
        "arrow_config": "Arrow routing inside the adapter config is not supported.",
        "kasa_config": "KaSA is not supported.",
    ]

    /// `init_lora_weights` values whose PEFT initialization rewrites the base
    /// weights when the adapter is loaded.
    static let baseModifyingInits = ["pissa", "corda", "olora", "loftq", "lora_ga"]

    /// Reads `adapter_config.json` from an adapter directory.
    public static func load(directory: URL) throws -> AdapterConfig {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory)
        guard exists, isDirectory.boolValue else {
            throw AdapterError.notADirectory(path: directory.path, exists: exists)
        }
        let url = directory.appendingPathComponent("adapter_config.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw AdapterError.missingFile(path: url.path, hint: "A PEFT adapter directory holds adapter_config.json and adapter_model.safetensors.")
        }
        return try decode(JSONFields(url: url, errors: adapterErrors))
    }

    static let adapterErrors: JSONFields.ErrorBuilder = { file, key, expected, actual in
        AdapterError.invalidConfig(file: file, key: key, expected: expected, actual: actual)
    }

    public static func decode(_ fields: JSONFields) throws -> AdapterConfig {
        let file = fields.file
        try checkKeys(fields)

        guard let peftType = try fields.string("peft_type") else {
            throw fields.failure("peft_type", "\"LORA\" (required)")
        }
        guard peftType == "LORA" else {
            throw AdapterError.unsupported(file: file, key: "peft_type", value: "\"\(peftType)\"", hint: "Only LoRA adapters (peft_type \"LORA\") are supported.")
        }
        if try fields.bool("use_dora") == true {
            throw AdapterError.unsupported(file: file, key: "use_dora", value: "true", hint: "DoRA adapters rescale the base weight per column; lora-moe applies plain LoRA only.")
        }
        if let modules = fields["modules_to_save"], !modules.isNeutral {
            throw AdapterError.unsupported(file: file, key: "modules_to_save", value: modules.summary, hint: "The adapter replaces whole modules, which lora-moe cannot blend.")
        }
        let bias = try fields.string("bias") ?? "none"
        guard bias == "none" else {
            throw AdapterError.unsupported(file: file, key: "bias", value: "\"\(bias)\"", hint: "The adapter carries trained biases of the base model; only bias \"none\" is supported.")
        }
        if try fields.bool("lora_bias") == true {
            throw AdapterError.unsupported(file: file, key: "lora_bias", value: "true", hint: "A bias on lora_B is not supported.")
        }
        try checkInitialization(fields)

        let r = try fields.requiredInt("r", minimum: 1)
        guard let alpha = try fields.double("lora_alpha") else { throw fields.failure("lora_alpha", "a number (required)") }

        return AdapterConfig(
            file: file,
            r: r,
            loraAlpha: alpha,
            useRslora: try fields.bool("use_rslora") ?? false,
            targetModules: try decodeTargets(fields, key: "target_modules"),
            excludeModules: try decodeTargets(fields, key: "exclude_modules"),
            layersToTransform: try decodeLayers(fields),
            layersPattern: try decodeStringOrList(fields, key: "layers_pattern") ?? [],
            rankPattern: try decodePattern(fields, key: "rank_pattern") { value in
                guard let rank = JSONFields.exactInteger(value), rank >= 1 else { return nil }
                return rank
            },
            alphaPattern: try decodePattern(fields, key: "alpha_pattern") { value in
                guard case let .number(alpha) = value else { return nil }
                return alpha
            },
            baseModelNameOrPath: try fields.string("base_model_name_or_path"))
    }

    private static func checkKeys(_ fields: JSONFields) throws {
        for key in fields.keys {
            if readKeys.contains(key) || noEffectKeys.contains(key) { continue }
            let value = fields[key] ?? .null
            if let hint = mustBeOffKeys[key] {
                if !value.isNeutral {
                    throw AdapterError.unsupported(file: fields.file, key: key, value: value.summary, hint: hint)
                }
                continue
            }
            // A field added by a newer PEFT is accepted only while it is off.
            if !value.isNeutral {
                throw AdapterError.unsupported(
                    file: fields.file, key: key, value: value.summary,
                    hint: "lora-moe does not know this field and cannot tell whether it changes the adapter's output.")
            }
        }
    }

    /// `init_lora_weights` strings that only shape the initial A and B, which
    /// the saved weights replace.
    static let weightOnlyInits = ["gaussian", "eva", "orthogonal", "mica"]

    private static func checkInitialization(_ fields: JSONFields) throws {
        guard case let .string(method)? = fields["init_lora_weights"] else { return }
        let lowered = method.lowercased()
        if weightOnlyInits.contains(lowered) { return }
        if baseModifyingInits.contains(where: { lowered.hasPrefix($0) }) {
            throw AdapterError.unsupported(
                file: fields.file, key: "init_lora_weights", value: "\"\(method)\"",
                hint: "PEFT rewrites the base weights when it loads such an adapter. Convert it to a plain LoRA adapter first (PEFT's save_pretrained with path_initial_model_for_weight_conversion).")
        }
        throw AdapterError.invalidConfig(file: fields.file, key: "init_lora_weights",
                                         expected: "true, false or one of PEFT's initialization names", actual: "\"\(method)\"")
    }

    /// PEFT's targets when `target_modules` is absent (peft 0.21,
    /// `TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`).
    static func defaultTargets(modelType: String) -> [String]? {
        ["llama": ["q_proj", "v_proj"], "qwen2": ["q_proj", "v_proj"], "qwen3": ["q_proj", "v_proj"]][modelType]
    }

    private static func decodeTargets(_ fields: JSONFields, key: String) throws -> TargetModules? {
        switch fields[key] {
        case nil, .null?:
            return nil
        case let .string(text)?:
            return text.lowercased() == "all-linear" && key == "target_modules" ? .allLinear : .pattern(text)
        case .array?:
            return .names(try fields.stringArray(key) ?? [])
        default:
            throw fields.failure(key, "a list of module names or a regular expression string")
        }
    }

    private static func decodeLayers(_ fields: JSONFields) throws -> [Int]? {
        switch fields["layers_to_transform"] {
        case nil, .null?:
            return nil
        case .array(let items)? where items.isEmpty:
            return nil
        default:
            guard let layers = try fields.intOrIntArray("layers_to_transform") else { return nil }
            return layers
        }
    }

    private static func decodeStringOrList(_ fields: JSONFields, key: String) throws -> [String]? {
        switch fields[key] {
        case nil, .null?: return nil
        case let .string(text)?: return text.isEmpty ? [] : [text]
        default: return try fields.stringArray(key)
        }
    }

    private static func decodePattern<Value>(
        _ fields: JSONFields, key: String, convert: (JSONValue) -> Value?
    ) throws -> [(pattern: String, Value)] {
        guard let pattern = try fields.nested(key) else { return [] }
        guard case let .object(members) = pattern.value else { return [] }
        return try members.map { member in
            guard let converted = convert(member.value) else {
                throw pattern.failure(member.key, key == "rank_pattern" ? "a positive integer" : "a number")
            }
            return (member.key, converted)
        }
    }
}
