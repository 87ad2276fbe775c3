import Foundation
import Models
import SafeTensors
import Tensor

/// One adapted projection: `ΔW x = scaling · B (A x)`.
public struct LoRAModule: Sendable {
    public let projection: ProjectionID
    public let rank: Int
    /// PEFT's scaling for this module (`alpha / r` or `alpha / sqrt(r)`).
    public let scaling: Double
    public let a: [Float]  // lora_A [rank, in]
    public let b: [Float]  // lora_B [out, rank]
}

/// A PEFT LoRA adapter validated against one base model: every tensor fits
/// the model, every targeted module has both weights, and every feature the
/// config asks for is one this engine applies exactly. Weights are widened to
/// Float in memory (adapters are small).
///
/// Files: `adapter_config.json` and `adapter_model.safetensors` with tensors
/// `[base_model.model.]<module>.lora_A.weight` `[r, in]` and
/// `[base_model.model.]<module>.lora_B.weight` `[out, r]`.
public final class LoRAAdapter: Sendable {
    public let name: String
    public let directory: URL
    public let config: AdapterConfig
    /// The base model configuration the adapter was checked against.
    public let modelConfig: ModelConfig
    public let modules: [ProjectionID: LoRAModule]
    /// Element type of this expert's rows in the fused stacks of a blend
    /// (`ExpertBlend`). `.f32` keeps PEFT's values exactly. `.f16` halves the
    /// bytes each decoding step reads and `.q8_0` quarters them, which suits
    /// quantized bases because their own rounding is far larger.
    public let stackType: DType

    public init(directory: URL, name: String? = nil, modelConfig: ModelConfig, stackType: DType = .f32) throws {
        precondition([.f32, .f16, .q8_0].contains(stackType), "LoRAAdapter: stackType \(stackType.rawValue) is not f32, f16 or q8_0")
        self.directory = directory
        self.name = name ?? directory.lastPathComponent
        self.modelConfig = modelConfig
        self.stackType = stackType
        config = try AdapterConfig.load(directory: directory)

        let weightsURL = directory.appendingPathComponent("adapter_model.safetensors")
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            let hint = FileManager.default.fileExists(atPath: directory.appendingPathComponent("adapter_model.bin").path)
                ? "Only safetensors weights are supported; this directory has adapter_model.bin. Re-save the adapter with save_pretrained(safe_serialization=True)."
                : "A PEFT adapter directory holds adapter_config.json and adapter_model.safetensors."
            throw AdapterError.missingFile(path: weightsURL.path, hint: hint)
        }
        let file = try SafeTensorsFile(path: weightsURL.path)
        let targeted = try Self.targetedProjections(config: config, modelConfig: modelConfig)
        let tensorNames = try Self.classifyTensors(file: file, targeted: targeted, modelConfig: modelConfig)

        var modules: [ProjectionID: LoRAModule] = [:]
        for projection in targeted {
            modules[projection] = try Self.loadModule(projection, file: file, names: tensorNames[projection], config: config, modelConfig: modelConfig)
        }
        self.modules = modules
    }

    /// Total rank over all modules, a measure of the adapter's cost.
    public var parameterCount: Int { modules.values.reduce(0) { $0 + $1.a.count + $1.b.count } }

    /// The projections PEFT would wrap, after rejecting targets LoRA here cannot adapt.
    static func targetedProjections(config: AdapterConfig, modelConfig: ModelConfig) throws -> [ProjectionID] {
        var projections: [ProjectionID] = []
        if config.targetModules == nil, AdapterConfig.defaultTargets(modelType: modelConfig.modelType) == nil {
            throw AdapterError.invalidConfig(file: config.file, key: "target_modules", expected: "a list of module names or a regular expression", actual: "missing")
        }
        for moduleName in modelConfig.moduleNames where try config.targets(moduleName, modelType: modelConfig.modelType) {
            if let projection = modelConfig.projection(named: moduleName) {
                projections.append(projection)
            } else if moduleName == "model.embed_tokens" {
                throw AdapterError.unsupported(file: config.file, key: "target_modules", value: "\"\(moduleName)\"", hint: "LoRA on the token embedding is not supported yet.")
            } else if moduleName == "lm_head" {
                throw AdapterError.unsupported(file: config.file, key: "target_modules", value: "\"\(moduleName)\"", hint: "LoRA on lm_head is not supported yet.")
            } else {
                throw AdapterError.unsupported(file: config.file, key: "target_modules", value: "\"\(moduleName)\"", hint: "This module is not a linear projection; PEFT cannot adapt it with LoRA either.")
            }
        }
        if projections.isEmpty {
            let targets = config.targetModules.map { "target_modules \($0)" } ?? "PEFT's default target_modules"
            throw AdapterError.noMatchingModules(file: config.file, detail: "\(targets) selects none of the \(modelConfig.numHiddenLayers) layers' q/k/v/o/gate/up/down projections")
        }
        return projections
    }

    /// The lora_A and lora_B tensor names of each module. Throws for any
    /// tensor that is not a LoRA weight of a targeted projection.
    static func classifyTensors(
        file: SafeTensorsFile, targeted: [ProjectionID], modelConfig: ModelConfig
    ) throws -> [ProjectionID: (a: String?, b: String?)] {
        let targetedSet = Set(targeted)
        var result: [ProjectionID: (a: String?, b: String?)] = [:]
        var unknownModules: [String] = []
        var matchedAny = false

        for tensor in file.tensorNames {
            let key = tensor.hasPrefix("base_model.model.") ? String(tensor.dropFirst("base_model.model.".count)) : tensor
            if key.contains("lora_magnitude_vector") {
                throw AdapterError.unexpectedTensor(file: file.path, tensor: tensor, reason: "a DoRA magnitude vector (use_dora); DoRA adapters are not supported")
            }
            if key.contains("lora_embedding_A") || key.contains("lora_embedding_B") {
                throw AdapterError.unsupported(file: file.path, key: "target_modules", value: "tensor '\(tensor)'", hint: "LoRA on the token embedding is not supported yet.")
            }
            if key.contains("modules_to_save") {
                throw AdapterError.unsupported(file: file.path, key: "modules_to_save", value: "tensor '\(tensor)'", hint: "The adapter replaces whole modules, which lora-moe cannot blend.")
            }
            let isA = key.hasSuffix(".lora_A.weight")
            let isB = key.hasSuffix(".lora_B.weight")
            guard isA || isB else {
                let reason = key.hasSuffix(".lora_B.bias")
                    ? "a bias on lora_B (lora_bias) is not supported"
                    : "not a LoRA weight ('<module>.lora_A.weight' or '<module>.lora_B.weight'); base-model biases (bias=\"all\") and adapter-named keys are not supported"
                throw AdapterError.unexpectedTensor(file: file.path, tensor: tensor, reason: reason)
            }
            let moduleName = String(key.dropLast(".lora_A.weight".count))
            if moduleName == "lm_head" || moduleName == "model.embed_tokens" {
                throw AdapterError.unsupported(file: file.path, key: "target_modules", value: "tensor '\(tensor)'", hint: "LoRA on \(moduleName) is not supported yet.")
            }
            guard let projection = modelConfig.projection(named: moduleName) else {
                unknownModules.append(moduleName)
                continue
            }
            matchedAny = true
            guard targetedSet.contains(projection) else {
                throw AdapterError.unexpectedTensor(file: file.path, tensor: tensor, reason: "adapter_config.json does not target module '\(moduleName)' (PEFT would ignore this tensor)")
            }
            var entry = result[projection] ?? (nil, nil)
            if isA { entry.a = tensor } else { entry.b = tensor }
            result[projection] = entry
        }

        if !matchedAny {
            let example = unknownModules.first.map { "first tensor module '\($0)'" } ?? "the file has no LoRA tensors"
            throw AdapterError.noMatchingModules(file: file.path, detail: example)
        }
        if let unknown = unknownModules.first {
            throw AdapterError.unexpectedTensor(
                file: file.path, tensor: unknown,
                reason: "the base model has no module of this name (\(modelConfig.numHiddenLayers) layers); was the adapter trained for a different base model?")
        }
        return result
    }

    static func loadModule(
        _ projection: ProjectionID, file: SafeTensorsFile, names: (a: String?, b: String?)?,
        config: AdapterConfig, modelConfig: ModelConfig
    ) throws -> LoRAModule {
        let moduleName = projection.moduleName
        guard let aName = names?.a else {
            throw AdapterError.missingTensor(file: file.path, tensor: "base_model.model.\(moduleName).lora_A.weight")
        }
        guard let bName = names?.b else {
            throw AdapterError.missingTensor(file: file.path, tensor: "base_model.model.\(moduleName).lora_B.weight")
        }
        let a = try file.tensor(named: aName)
        let b = try file.tensor(named: bName)
        let features = modelConfig.features(of: projection.kind)
        let rank = try config.rank(for: moduleName)
        let differentBase = "Was the adapter trained for a different base model?"

        guard a.shape.count == 2, a.shape[1] == features.in else {
            throw AdapterError.shapeMismatch(file: file.path, tensor: aName, expected: "[r, \(features.in)]", actual: "\(a.shape)", hint: differentBase)
        }
        guard b.shape.count == 2, b.shape[0] == features.out else {
            throw AdapterError.shapeMismatch(file: file.path, tensor: bName, expected: "[\(features.out), r]", actual: "\(b.shape)", hint: differentBase)
        }
        guard a.shape[0] == rank, b.shape[1] == rank else {
            throw AdapterError.shapeMismatch(
                file: file.path, tensor: a.shape[0] != rank ? aName : bName,
                expected: a.shape[0] != rank ? "[\(rank), \(features.in)]" : "[\(features.out), \(rank)]",
                actual: a.shape[0] != rank ? "\(a.shape)" : "\(b.shape)",
                hint: "adapter_config.json gives this module rank \(rank) (r / rank_pattern).")
        }

        let aValues = a.toFloatArray()
        let bValues = b.toFloatArray()
        for (tensorName, values) in [(aName, aValues), (bName, bValues)] where !values.allSatisfy({ $0.isFinite }) {
            throw AdapterError.invalidWeights(file: file.path, detail: "tensor '\(tensorName)' contains NaN or infinite values")
        }
        return LoRAModule(projection: projection, rank: rank, scaling: try config.scaling(for: moduleName), a: aValues, b: bValues)
    }
}
