import Adapters
import Foundation
import Models

/// Values that replace a router file's settings for one run.
public struct RouterOverrides: Sendable, Equatable {
    public var temperature: Double?
    /// Replaces `top_k`, and `.some(nil)` keeps every expert.
    public var topK: Int??
    public var minWeight: Double?
    public var renormalize: Bool?

    public init(temperature: Double? = nil, topK: Int?? = nil, minWeight: Double? = nil, renormalize: Bool? = nil) {
        self.temperature = temperature
        self.topK = topK
        self.minWeight = minWeight
        self.renormalize = renormalize
    }
}

extension RouterFile {
    /// Loads the router file at `url` and builds its router for `model` and
    /// `experts`, which must be the model and the experts (same names, same
    /// order, same adapter files) the router was fitted with.
    public static func loadRouter(
        from url: URL, model: LanguageModel, experts: [LoRAAdapter], overrides: RouterOverrides = RouterOverrides()
    ) throws -> any Router {
        try load(url).makeRouter(model: model, experts: experts, overrides: overrides, source: url.path)
    }

    /// Builds the router after checking that `model` and `experts` are the
    /// ones the router was fitted with. `source` names the file in errors.
    public func makeRouter(
        model: LanguageModel, experts: [LoRAAdapter], overrides: RouterOverrides = RouterOverrides(),
        source: String = "router file"
    ) throws -> any Router {
        try validate(file: source)
        try checkModel(model, source: source)
        try checkExperts(experts, source: source)

        var selection = self.selection
        if let topK = overrides.topK { selection.topK = topK }
        if let minWeight = overrides.minWeight { selection.minWeight = minWeight }
        if let renormalize = overrides.renormalize { selection.renormalize = renormalize }
        let temperature = overrides.temperature ?? self.temperature

        switch kind {
        case .encoder:
            return try EncoderRouter(
                experts: experts, layer: layer, center: center ?? [],
                prototypes: self.experts.map { $0.prototype ?? [] },
                temperature: temperature, selection: selection)
        case .gate:
            return try GateRouter(
                experts: experts, layer: layer, weight: gate?.weight ?? [], bias: gate?.bias ?? [],
                hiddenSize: self.model.hiddenSize, temperature: temperature, selection: selection)
        }
    }

    /// Compares the configuration first, for a specific message, then the
    /// fingerprint of the weights.
    func checkModel(_ model: LanguageModel, source: String) throws {
        let config = model.config
        let modelName = model.directory.path
        let comparisons: [(key: String, expected: String, actual: String)] = [
            ("model.model_type", "model_type \"\(self.model.modelType)\"", "model_type \"\(config.modelType)\""),
            ("model.hidden_size", "hidden_size \(self.model.hiddenSize)", "hidden_size \(config.hiddenSize)"),
            ("model.num_hidden_layers", "num_hidden_layers \(self.model.numHiddenLayers)", "num_hidden_layers \(config.numHiddenLayers)"),
        ]
        for comparison in comparisons where comparison.expected != comparison.actual {
            throw RouterFileError.modelMismatch(
                file: source, key: comparison.key, expected: comparison.expected, actual: comparison.actual, model: modelName)
        }
        let fingerprint = try RouterFingerprint.model(directory: model.directory)
        guard fingerprint == self.model.fingerprint else {
            throw RouterFileError.modelMismatch(
                file: source, key: "model.fingerprint",
                expected: "fingerprint \(self.model.fingerprint) ('\(self.model.name)')",
                actual: "fingerprint \(fingerprint)", model: modelName)
        }
    }

    /// Names in order first, then the adapter files of each expert.
    func checkExperts(_ given: [LoRAAdapter], source: String) throws {
        let expectedNames = experts.map(\.name)
        let givenNames = given.map(\.name)
        guard given.count == experts.count else {
            throw RouterFileError.expertCountMismatch(file: source, expected: expectedNames, actual: givenNames)
        }
        let order = "pass the experts in the router's order: \(expectedNames.joined(separator: ","))"
        for (index, (expected, adapter)) in zip(experts, given).enumerated() where expected.name != adapter.name {
            let hint = Set(expectedNames) == Set(givenNames)
                ? "the experts are in a different order; \(order)"
                : "the router was fitted with experts \(expectedNames.joined(separator: ", ")); \(order)"
            throw RouterFileError.expertMismatch(
                file: source, key: "experts[\(index)].name", expected: "expert '\(expected.name)'",
                actual: "'\(adapter.name)'", hint: hint)
        }
        for (index, (expected, adapter)) in zip(experts, given).enumerated() {
            let fingerprint = try RouterFingerprint.adapter(directory: adapter.directory)
            guard fingerprint == expected.fingerprint else {
                throw RouterFileError.expertMismatch(
                    file: source, key: "experts[\(index)].fingerprint", expected: "fingerprint \(expected.fingerprint)",
                    actual: "\(fingerprint) for expert '\(adapter.name)' at \(adapter.directory.path)",
                    hint: "the adapter files differ from the ones the router was fitted with; use those adapters or fit the router again")
            }
        }
    }
}
