import Adapters
import Foundation
import Models
import Tensor

/// Settings of `RouterFitting.fit`.
public struct RouterFitOptions: Sendable {
    public var kind: RouterFile.Kind
    /// Hidden-state layer, or nil for the model's `num_hidden_layers` (the
    /// output after the final norm).
    public var layer: Int?
    /// nil means `RouterFitting.defaultTemperature(for: kind)`.
    public var temperature: Double?
    public var selection: ExpertSelection
    /// Gate routers only.
    public var gateTraining: GateTraining

    public init(
        kind: RouterFile.Kind = .encoder, layer: Int? = nil, temperature: Double? = nil,
        selection: ExpertSelection = ExpertSelection(), gateTraining: GateTraining = GateTraining()
    ) {
        self.kind = kind
        self.layer = layer
        self.temperature = temperature
        self.selection = selection
        self.gateTraining = gateTraining
    }
}

/// A fitted router file with how well it routes its own examples.
public struct RouterFitResult: Sendable {
    public let file: RouterFile
    /// Per expert, how many of its examples score highest for that expert.
    public let correctExamples: [Int]
    /// Gate routers only: the final mean cross-entropy on the examples.
    public let trainingLoss: Double?
}

/// Fits input-based routers to example prompts of each expert.
///
/// Encoder: let `u = e / |e|` be the unit-length embedding of each example
/// and `m_i` the mean of expert i's unit embeddings. The center `c` is the
/// mean of the `m_i`, so each expert counts once, whatever its number of
/// examples. The file stores `c` and the prototypes `p_i = m_i - c`.
/// Centering removes the direction that all prompts share: mean-pooled
/// hidden states of a language model all point nearly the same way, so
/// plain cosines differ little between experts (docs/ROUTING.md gives the
/// measurements).
///
/// Gate: multinomial logistic regression on the embeddings, see
/// `GateTraining`.
public enum RouterFitting {
    public static let defaultEncoderTemperature = 0.1
    public static let defaultGateTemperature = 1.0

    public static func defaultTemperature(for kind: RouterFile.Kind) -> Double {
        kind == .encoder ? defaultEncoderTemperature : defaultGateTemperature
    }

    /// Fits a router. `examples[i]` contains the token ids of expert i's example
    /// prompts, tokenized the way requests are routed (the user's text
    /// without the chat template or special tokens).
    public static func fit(
        model: LanguageModel, experts: [LoRAAdapter], examples: [[[Int]]],
        options: RouterFitOptions = RouterFitOptions(), pool: ComputePool = .allCores
    ) throws -> RouterFitResult {
        guard experts.count >= 2 else { throw RouterFitError.tooFewExperts(count: experts.count) }
        guard examples.count == experts.count else {
            throw RouterFitError.exampleSetCountMismatch(experts: experts.count, exampleSets: examples.count)
        }
        let config = model.config
        let layer = options.layer ?? config.numHiddenLayers
        guard (0...config.numHiddenLayers).contains(layer) else {
            throw RouterError.invalidParameter(name: "layer", expected: "an integer in 0...\(config.numHiddenLayers) for this model", actual: "\(layer)")
        }
        let temperature = options.temperature ?? defaultTemperature(for: options.kind)
        try validateTemperature(temperature)
        try options.selection.validate(expertCount: experts.count)
        for (expert, prompts) in zip(experts, examples) {
            guard !prompts.isEmpty else { throw RouterFitError.missingExamples(expert: expert.name) }
            if let index = prompts.firstIndex(where: \.isEmpty) {
                throw RouterFitError.emptyExample(expert: expert.name, index: index)
            }
        }

        let embeddings = try examples.map { prompts in
            try prompts.map { try routingEmbedding(model: model, tokens: $0, layer: layer, pool: pool) }
        }
        let modelInfo = RouterFile.Model(
            name: model.directory.lastPathComponent, modelType: config.modelType, hiddenSize: config.hiddenSize,
            numHiddenLayers: config.numHiddenLayers, fingerprint: try RouterFingerprint.model(directory: model.directory))
        var fileExperts = try zip(experts, examples).map { expert, prompts in
            RouterFile.Expert(name: expert.name, fingerprint: try RouterFingerprint.adapter(directory: expert.directory), exampleCount: prompts.count)
        }

        var file: RouterFile
        var trainingLoss: Double?
        switch options.kind {
        case .encoder:
            let (center, prototypes) = try encoderParameters(embeddings: embeddings)
            for index in fileExperts.indices { fileExperts[index].prototype = prototypes[index] }
            file = RouterFile(
                kind: .encoder, model: modelInfo, layer: layer, temperature: temperature,
                selection: options.selection, center: center, experts: fileExperts)
        case .gate:
            let labels = embeddings.enumerated().flatMap { index, rows in [Int](repeating: index, count: rows.count) }
            let result = try options.gateTraining.fit(features: embeddings.flatMap { $0 }, labels: labels, classCount: experts.count)
            trainingLoss = result.trainingLoss
            file = RouterFile(
                kind: .gate, model: modelInfo, layer: layer, temperature: temperature, selection: options.selection,
                experts: fileExperts, gate: RouterFile.Gate(weight: result.weight, bias: result.bias))
        }

        let router = try file.makeScorer(experts: experts)
        let correct = try embeddings.enumerated().map { expected, rows in
            try rows.filter { row in
                let scores = try router(row)
                return scores.indices.max { scores[$0] < scores[$1] } == expected
            }.count
        }
        return RouterFitResult(file: file, correctExamples: correct, trainingLoss: trainingLoss)
    }

    /// Computes the encoder's center and prototypes from each expert's embeddings.
    public static func encoderParameters(embeddings: [[[Float]]]) throws -> (center: [Float], prototypes: [[Float]]) {
        guard let dimension = embeddings.first?.first?.count, dimension > 0 else {
            throw RouterError.invalidParameter(name: "embeddings", expected: "at least one embedding per expert", actual: "none")
        }
        var means: [[Double]] = []
        for (expert, rows) in embeddings.enumerated() {
            guard !rows.isEmpty else {
                throw RouterError.invalidParameter(name: "embeddings of expert \(expert)", expected: "at least one embedding", actual: "none")
            }
            var sum = [Double](repeating: 0, count: dimension)
            for row in rows {
                guard row.count == dimension else {
                    throw RouterError.dimensionMismatch(what: "embedding of expert \(expert)", expected: dimension, actual: row.count)
                }
                guard let unit = routerUnitVector(row.map(Double.init)) else {
                    throw RouterError.invalidParameter(
                        name: "embedding of expert \(expert)", expected: "a finite vector of non-zero length", actual: "zero length or a non-finite value")
                }
                for j in 0..<dimension { sum[j] += unit[j] }
            }
            means.append(sum.map { $0 / Double(rows.count) })
        }
        var center = [Double](repeating: 0, count: dimension)
        for mean in means {
            for j in 0..<dimension { center[j] += mean[j] / Double(means.count) }
        }
        let prototypes = means.map { mean in (0..<dimension).map { Float(mean[$0] - center[$0]) } }
        return (center.map { Float($0) }, prototypes)
    }
}

extension RouterFile {
    /// The score function of this file's router, without the model checks.
    func makeScorer(experts: [LoRAAdapter]) throws -> ([Float]) throws -> [Double] {
        switch kind {
        case .encoder:
            let router = try EncoderRouter(
                experts: experts, layer: layer, center: center ?? [], prototypes: self.experts.map { $0.prototype ?? [] },
                temperature: temperature, selection: selection)
            return router.scores(embedding:)
        case .gate:
            let router = try GateRouter(
                experts: experts, layer: layer, weight: gate?.weight ?? [], bias: gate?.bias ?? [],
                hiddenSize: model.hiddenSize, temperature: temperature, selection: selection)
            return router.scores(embedding:)
        }
    }
}
