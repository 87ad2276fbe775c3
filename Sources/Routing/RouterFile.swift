import Foundation
import SafeTensors

/// The contents of a router file (`router.json`, format `lora-moe-router`
/// version 1), as written by `lora-moe router fit`. docs/ROUTING.md
/// describes every key.
///
/// An encoder router stores a center and one prototype per expert in the
/// JSON file. A gate router stores its weights in a safetensors file next
/// to it (tensors `gate.weight` `[experts, hidden]` and `gate.bias`
/// `[experts]`, F32), named by `gate.file` and checked against
/// `gate.fingerprint`.
public struct RouterFile: Sendable, Equatable {
    public static let formatName = "lora-moe-router"
    public static let formatVersion = 1

    public enum Kind: String, Sendable, CaseIterable {
        case encoder
        case gate
    }

    /// The model the router was fitted with.
    public struct Model: Sendable, Equatable {
        /// Name of the model directory, shown only in messages.
        public var name: String
        public var modelType: String
        public var hiddenSize: Int
        public var numHiddenLayers: Int
        /// `RouterFingerprint.model(directory:)`.
        public var fingerprint: String

        public init(name: String, modelType: String, hiddenSize: Int, numHiddenLayers: Int, fingerprint: String) {
            self.name = name
            self.modelType = modelType
            self.hiddenSize = hiddenSize
            self.numHiddenLayers = numHiddenLayers
            self.fingerprint = fingerprint
        }
    }

    public struct Expert: Sendable, Equatable {
        public var name: String
        /// `RouterFingerprint.adapter(directory:)`.
        public var fingerprint: String
        /// Number of example prompts the router was fitted on.
        public var exampleCount: Int
        /// Encoder routers only: the expert's prototype `[hidden]`.
        public var prototype: [Float]?

        public init(name: String, fingerprint: String, exampleCount: Int, prototype: [Float]? = nil) {
            self.name = name
            self.fingerprint = fingerprint
            self.exampleCount = exampleCount
            self.prototype = prototype
        }
    }

    /// Gate routers only: the linear gate applied to the pooled hidden state.
    public struct Gate: Sendable, Equatable {
        /// `[experts, hidden]`, row-major.
        public var weight: [Float]
        public var bias: [Float]

        public init(weight: [Float], bias: [Float]) {
            self.weight = weight
            self.bias = bias
        }
    }

    public var kind: Kind
    public var model: Model
    /// Hidden-state layer, numbered as in `LanguageModel.meanHiddenState`.
    public var layer: Int
    /// Pooling of the hidden states over positions. Only "mean" exists.
    public var pooling: String
    public var temperature: Double
    public var selection: ExpertSelection
    /// Encoder routers only: subtracted from the unit-length embedding.
    public var center: [Float]?
    public var experts: [Expert]
    public var gate: Gate?

    public init(
        kind: Kind, model: Model, layer: Int, pooling: String = "mean", temperature: Double,
        selection: ExpertSelection = ExpertSelection(), center: [Float]? = nil, experts: [Expert], gate: Gate? = nil
    ) {
        self.kind = kind
        self.model = model
        self.layer = layer
        self.pooling = pooling
        self.temperature = temperature
        self.selection = selection
        self.center = center
        self.experts = experts
        self.gate = gate
    }

    /// Name of the gate weights file written next to `url`:
    /// `router.json` → `router.gate.safetensors`.
    public static func gateFileName(for url: URL) -> String {
        let name = url.lastPathComponent
        let stem = name.hasSuffix(".json") ? String(name.dropLast(".json".count)) : name
        return stem + ".gate.safetensors"
    }

    static let gateWeightTensor = "gate.weight"
    static let gateBiasTensor = "gate.bias"
}

// MARK: - Validation

extension RouterFile {
    /// Checks everything that does not need the model or the experts. Errors
    /// name `file` and the JSON key at fault.
    func validate(file: String) throws {
        func invalid(_ key: String, _ expected: String, _ actual: String) -> RouterFileError {
            .invalidValue(file: file, key: key, expected: expected, actual: actual)
        }
        guard model.hiddenSize > 0 else {
            throw invalid("model.hidden_size", "a positive integer", "\(model.hiddenSize)")
        }
        guard model.numHiddenLayers > 0 else {
            throw invalid("model.num_hidden_layers", "a positive integer", "\(model.numHiddenLayers)")
        }
        guard isRouterFingerprint(model.fingerprint) else {
            throw invalid("model.fingerprint", "'fnv1a64:' and 16 lowercase hex digits", "\"\(model.fingerprint)\"")
        }
        guard (0...model.numHiddenLayers).contains(layer) else {
            throw invalid("layer", "an integer in 0...\(model.numHiddenLayers) (model.num_hidden_layers)", "\(layer)")
        }
        guard pooling == "mean" else {
            throw invalid("pooling", "\"mean\"", "\"\(pooling)\"")
        }
        guard temperature.isFinite, temperature > 0 else {
            throw invalid("temperature", "a number above 0", "\(temperature)")
        }
        guard !experts.isEmpty else {
            throw invalid("experts", "at least one expert", "an empty array")
        }
        if let topK = selection.topK, topK < 1 || topK > experts.count {
            throw invalid("top_k", "null or an integer in 1...\(experts.count) (the number of experts)", "\(topK)")
        }
        guard selection.minWeight.isFinite, selection.minWeight >= 0, selection.minWeight < 1 else {
            throw invalid("min_weight", "a number in [0, 1)", "\(selection.minWeight)")
        }
        var names = Set<String>()
        for (index, expert) in experts.enumerated() {
            let key = "experts[\(index)]"
            guard !expert.name.isEmpty else { throw invalid("\(key).name", "a non-empty string", "\"\"") }
            guard names.insert(expert.name).inserted else {
                throw invalid("\(key).name", "a name not used by another expert", "\"\(expert.name)\" a second time")
            }
            guard isRouterFingerprint(expert.fingerprint) else {
                throw invalid("\(key).fingerprint", "'fnv1a64:' and 16 lowercase hex digits", "\"\(expert.fingerprint)\"")
            }
            guard expert.exampleCount >= 1 else {
                throw invalid("\(key).examples", "a positive integer", "\(expert.exampleCount)")
            }
        }
        switch kind {
        case .encoder: try validateEncoder(file: file)
        case .gate: try validateGate(file: file)
        }
    }

    private func validateEncoder(file: String) throws {
        let hidden = model.hiddenSize
        guard let center else { throw RouterFileError.missingKey(file: file, key: "center") }
        try checkVector(center, key: "center", count: hidden, file: file)
        for (index, expert) in experts.enumerated() {
            let key = "experts[\(index)].prototype"
            guard let prototype = expert.prototype else { throw RouterFileError.missingKey(file: file, key: key) }
            try checkVector(prototype, key: key, count: hidden, file: file)
            guard prototype.contains(where: { $0 != 0 }) else {
                throw RouterFileError.invalidValue(file: file, key: key, expected: "a vector of non-zero length", actual: "all zeros")
            }
        }
        if gate != nil {
            throw RouterFileError.unknownKey(file: file, key: "gate")
        }
    }

    private func validateGate(file: String) throws {
        guard let gate else { throw RouterFileError.missingKey(file: file, key: "gate") }
        try checkVector(gate.weight, key: "gate tensor '\(Self.gateWeightTensor)'", count: experts.count * model.hiddenSize, file: file)
        try checkVector(gate.bias, key: "gate tensor '\(Self.gateBiasTensor)'", count: experts.count, file: file)
        if center != nil { throw RouterFileError.unknownKey(file: file, key: "center") }
        for (index, expert) in experts.enumerated() where expert.prototype != nil {
            throw RouterFileError.unknownKey(file: file, key: "experts[\(index)].prototype")
        }
    }

    private func checkVector(_ values: [Float], key: String, count: Int, file: String) throws {
        guard values.count == count else {
            throw RouterFileError.invalidValue(file: file, key: key, expected: "\(count) values", actual: "\(values.count) values")
        }
        if let index = values.firstIndex(where: { !$0.isFinite }) {
            throw RouterFileError.invalidValue(file: file, key: "\(key)[\(index)]", expected: "a finite number", actual: "\(values[index])")
        }
    }
}

func isRouterFingerprint(_ text: String) -> Bool {
    guard text.hasPrefix("fnv1a64:") else { return false }
    let digits = text.dropFirst("fnv1a64:".count)
    return digits.count == 16 && digits.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
}
