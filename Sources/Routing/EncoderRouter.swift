import Adapters
import Models

/// Chooses blend weights from the prompt, using the base model itself as a
/// sentence encoder.
///
/// The embedding of a prompt is `e = meanHiddenState(routingTokens, layer)`,
/// the mean over positions of one hidden state. With `u = e / |e|`, `c` the
/// center and `p_i` expert i's prototype, the score of expert i is the cosine
/// `s_i = cos(u - c, p_i)`. Weights follow `ExpertSelection`:
/// `softmax(s / temperature)`, then top-k, minimum weight and
/// renormalization.
///
/// Empty routing text has no embedding: every expert then gets `1/n`, top-k
/// and the minimum weight are not applied (they would pick arbitrarily among
/// equal weights), and the decision has no scores. Routing text longer than
/// the model's `max_position_embeddings` is embedded from its first
/// `max_position_embeddings` tokens.
public struct EncoderRouter: Router {
    public let experts: [LoRAAdapter]
    /// Hidden-state layer, numbered as in `LanguageModel.meanHiddenState`.
    public let layer: Int
    public let temperature: Double
    public let selection: ExpertSelection
    /// Vector subtracted from the unit-length embedding before the cosine.
    /// All zeros gives the plain cosine between embedding and prototype.
    public let center: [Float]
    /// One vector per expert, in expert order, as given.
    public let prototypes: [[Float]]
    /// `prototypes` scaled to unit length.
    private let unitPrototypes: [[Double]]

    public init(
        experts: [LoRAAdapter], layer: Int, center: [Float], prototypes: [[Float]],
        temperature: Double, selection: ExpertSelection = ExpertSelection()
    ) throws {
        guard !experts.isEmpty else {
            throw RouterError.invalidParameter(name: "experts", expected: "at least one expert", actual: "none")
        }
        guard prototypes.count == experts.count else {
            throw RouterError.dimensionMismatch(what: "prototype list", expected: experts.count, actual: prototypes.count)
        }
        guard layer >= 0 else {
            throw RouterError.invalidParameter(name: "layer", expected: "a layer number of 0 or more", actual: "\(layer)")
        }
        try validateTemperature(temperature)
        try selection.validate(expertCount: experts.count)
        var unitPrototypes: [[Double]] = []
        for (expert, prototype) in zip(experts, prototypes) {
            guard prototype.count == center.count else {
                throw RouterError.dimensionMismatch(what: "prototype of expert '\(expert.name)'", expected: center.count, actual: prototype.count)
            }
            guard let unit = routerUnitVector(prototype.map(Double.init)) else {
                throw RouterError.invalidParameter(
                    name: "prototype of expert '\(expert.name)'", expected: "a finite vector of non-zero length",
                    actual: "zero length or a non-finite value")
            }
            unitPrototypes.append(unit)
        }
        guard center.allSatisfy({ $0.isFinite }) else {
            throw RouterError.invalidParameter(name: "center", expected: "finite values", actual: "NaN or infinity")
        }
        self.experts = experts
        self.layer = layer
        self.center = center
        self.prototypes = prototypes
        self.unitPrototypes = unitPrototypes
        self.temperature = temperature
        self.selection = selection
    }

    /// Computes the cosine score of every expert for one embedding. A zero
    /// embedding, or one equal to the center, scores 0 for every expert.
    public func scores(embedding: [Float]) throws -> [Double] {
        guard embedding.count == center.count else {
            throw RouterError.dimensionMismatch(what: "embedding", expected: center.count, actual: embedding.count)
        }
        let values = embedding.map(Double.init)
        let norm = routerNorm(values)
        guard norm > 0, norm.isFinite else { return [Double](repeating: 0, count: experts.count) }
        let centered = zip(values, center).map { $0 / norm - Double($1) }
        guard let direction = routerUnitVector(centered) else { return [Double](repeating: 0, count: experts.count) }
        return unitPrototypes.map { routerDot(direction, $0) }
    }

    /// Turns scores into weights: softmax, then the selection steps.
    public func weights(scores: [Double]) -> [Double] {
        selection.apply(to: routerSoftmax(scores, temperature: temperature))
    }

    public func route(_ context: RoutingContext) throws -> RoutingDecision {
        guard !context.routingTokens.isEmpty else {
            return try makeRoutingDecision(router: "encoder", experts: experts, weights: routerUniformWeights(experts.count), scores: nil)
        }
        let embedding = try routingEmbedding(model: context.model, tokens: context.routingTokens, layer: layer, pool: context.pool)
        let scores = try scores(embedding: embedding)
        return try makeRoutingDecision(router: "encoder", experts: experts, weights: weights(scores: scores), scores: scores)
    }
}

func routerDot(_ a: [Double], _ b: [Double]) -> Double {
    var sum = 0.0
    for index in a.indices { sum += a[index] * b[index] }
    return sum
}

func routerNorm(_ vector: [Double]) -> Double {
    routerDot(vector, vector).squareRoot()
}

/// `vector / |vector|`, or nil when the length is 0 or not finite.
func routerUnitVector(_ vector: [Double]) -> [Double]? {
    let norm = routerNorm(vector)
    guard norm > 0, norm.isFinite else { return nil }
    return vector.map { $0 / norm }
}
