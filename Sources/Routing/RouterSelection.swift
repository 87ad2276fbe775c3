import Adapters
import Foundation
import Models
import Tensor

/// An invalid parameter given to an input-based router.
public enum RouterError: Error, CustomStringConvertible, Equatable {
    case invalidParameter(name: String, expected: String, actual: String)
    /// A vector does not have the length the model or the experts need.
    case dimensionMismatch(what: String, expected: Int, actual: Int)

    public var description: String {
        switch self {
        case let .invalidParameter(name, expected, actual):
            return "invalid router parameter \(name): expected \(expected), got \(actual)"
        case let .dimensionMismatch(what, expected, actual):
            return "\(what) has length \(actual), expected \(expected)"
        }
    }
}

/// Rules that turn an input-based router's per-expert probabilities into
/// blend weights. The steps run in this order:
///
/// 1. `p = softmax(scores / temperature)` (done by the router).
/// 2. Top-k: keep the `topK` largest `p`, and ties go to the lower expert
///    index. The others become 0. `nil` keeps every expert.
/// 3. Minimum weight: every kept `p` below `minWeight` becomes 0. The
///    comparison uses the softmax probabilities, before renormalization.
/// 4. Renormalization: when `renormalize` is true, the kept weights are
///    divided by their sum so they add up to 1.
///
/// When step 3 drops every expert, all weights are 0 and the request runs on
/// the base model alone.
public struct ExpertSelection: Sendable, Equatable {
    public var topK: Int?
    public var minWeight: Double
    public var renormalize: Bool

    public init(topK: Int? = nil, minWeight: Double = 0, renormalize: Bool = true) {
        self.topK = topK
        self.minWeight = minWeight
        self.renormalize = renormalize
    }

    /// Throws when `topK` is outside `1...expertCount` or `minWeight` is
    /// outside `[0, 1)`.
    public func validate(expertCount: Int) throws {
        if let topK, topK < 1 || topK > expertCount {
            throw RouterError.invalidParameter(name: "top_k", expected: "an integer in 1...\(expertCount) (the number of experts) or null", actual: "\(topK)")
        }
        guard minWeight.isFinite, minWeight >= 0, minWeight < 1 else {
            throw RouterError.invalidParameter(name: "min_weight", expected: "a number in [0, 1)", actual: "\(minWeight)")
        }
    }

    /// Applies steps 2 to 4 to softmax probabilities.
    public func apply(to probabilities: [Double]) -> [Double] {
        var weights = probabilities
        if let topK, topK < weights.count {
            let ranked = weights.indices.sorted { weights[$0] > weights[$1] || (weights[$0] == weights[$1] && $0 < $1) }
            for index in ranked.dropFirst(topK) { weights[index] = 0 }
        }
        for index in weights.indices where weights[index] < minWeight {
            weights[index] = 0
        }
        let total = weights.reduce(0, +)
        if renormalize, total > 0 {
            weights = weights.map { $0 / total }
        }
        return weights
    }
}

/// `softmax(scores / temperature)`, computed stably in Double.
public func routerSoftmax(_ scores: [Double], temperature: Double) -> [Double] {
    guard let maximum = scores.max() else { return [] }
    let exponentials = scores.map { Foundation.exp(($0 - maximum) / temperature) }
    let total = exponentials.reduce(0, +)
    return exponentials.map { $0 / total }
}

/// Throws unless `temperature` is a finite number above 0.
func validateTemperature(_ temperature: Double) throws {
    guard temperature.isFinite, temperature > 0 else {
        throw RouterError.invalidParameter(name: "temperature", expected: "a number above 0", actual: "\(temperature)")
    }
}

/// Builds the decision for `weights`: a blend of the experts with non-zero
/// weight, or the base model when every weight is 0.
func makeRoutingDecision(router: String, experts: [LoRAAdapter], weights: [Double], scores: [Double]?) throws -> RoutingDecision {
    let blend = weights.allSatisfy { $0 == 0 } ? nil : try ExpertBlend(experts: experts, weights: weights)
    return RoutingDecision(source: FixedDelta(blend), router: router, experts: experts.map(\.name), weights: weights, scores: scores)
}

/// Uniform weights, used when there is no text to route on.
func routerUniformWeights(_ count: Int) -> [Double] {
    [Double](repeating: 1 / Double(count), count: count)
}

/// Computes the pooled hidden state of routing text at `layer`. Text longer than the
/// model's `max_position_embeddings` is cut to its first
/// `max_position_embeddings` tokens, the most the model can attend over.
func routingEmbedding(model: LanguageModel, tokens: [Int], layer: Int, pool: ComputePool) throws -> [Float] {
    let limit = model.config.maxPositionEmbeddings
    let used = tokens.count > limit ? Array(tokens.prefix(limit)) : tokens
    return try model.meanHiddenState(used, layer: layer, pool: pool)
}
