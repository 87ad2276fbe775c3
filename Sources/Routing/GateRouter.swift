import Adapters
import Models

/// A learned linear gate on the pooled hidden state: with
/// `e = meanHiddenState(routingTokens, layer)`, the scores are the logits
/// `z = W e + b` and the weights `softmax(z / temperature)`, followed by
/// top-k, minimum weight and renormalization as in `ExpertSelection`.
///
/// Empty and over-long routing text are handled as in `EncoderRouter`:
/// empty text gets `1/n` per expert without top-k or minimum weight and no
/// scores, and only the first `max_position_embeddings` tokens are embedded.
public struct GateRouter: Router {
    public let experts: [LoRAAdapter]
    public let layer: Int
    public let temperature: Double
    public let selection: ExpertSelection
    /// `W`, row-major `[experts, hidden]`.
    public let weight: [Float]
    /// `b`, `[experts]`.
    public let bias: [Float]
    public let hiddenSize: Int

    public init(
        experts: [LoRAAdapter], layer: Int, weight: [Float], bias: [Float], hiddenSize: Int,
        temperature: Double = 1, selection: ExpertSelection = ExpertSelection()
    ) throws {
        guard !experts.isEmpty else {
            throw RouterError.invalidParameter(name: "experts", expected: "at least one expert", actual: "none")
        }
        guard hiddenSize > 0 else {
            throw RouterError.invalidParameter(name: "hidden size", expected: "a positive integer", actual: "\(hiddenSize)")
        }
        guard weight.count == experts.count * hiddenSize else {
            throw RouterError.dimensionMismatch(what: "gate weight [\(experts.count), \(hiddenSize)]", expected: experts.count * hiddenSize, actual: weight.count)
        }
        guard bias.count == experts.count else {
            throw RouterError.dimensionMismatch(what: "gate bias", expected: experts.count, actual: bias.count)
        }
        guard weight.allSatisfy({ $0.isFinite }), bias.allSatisfy({ $0.isFinite }) else {
            throw RouterError.invalidParameter(name: "gate weights", expected: "finite values", actual: "NaN or infinity")
        }
        guard layer >= 0 else {
            throw RouterError.invalidParameter(name: "layer", expected: "a layer number of 0 or more", actual: "\(layer)")
        }
        try validateTemperature(temperature)
        try selection.validate(expertCount: experts.count)
        self.experts = experts
        self.layer = layer
        self.weight = weight
        self.bias = bias
        self.hiddenSize = hiddenSize
        self.temperature = temperature
        self.selection = selection
    }

    /// Computes the logits `W e + b` for one embedding.
    public func scores(embedding: [Float]) throws -> [Double] {
        guard embedding.count == hiddenSize else {
            throw RouterError.dimensionMismatch(what: "embedding", expected: hiddenSize, actual: embedding.count)
        }
        return (0..<experts.count).map { row in
            var sum = Double(bias[row])
            let offset = row * hiddenSize
            for column in 0..<hiddenSize {
                sum += Double(weight[offset + column]) * Double(embedding[column])
            }
            return sum
        }
    }

    public func weights(scores: [Double]) -> [Double] {
        selection.apply(to: routerSoftmax(scores, temperature: temperature))
    }

    public func route(_ context: RoutingContext) throws -> RoutingDecision {
        guard !context.routingTokens.isEmpty else {
            return try makeRoutingDecision(router: "gate", experts: experts, weights: routerUniformWeights(experts.count), scores: nil)
        }
        let embedding = try routingEmbedding(model: context.model, tokens: context.routingTokens, layer: layer, pool: context.pool)
        let scores = try scores(embedding: embedding)
        return try makeRoutingDecision(router: "gate", experts: experts, weights: weights(scores: scores), scores: scores)
    }
}
