import Adapters
import Models
import Tensor

/// Invalid arguments for an `ArrowRouter`.
public enum ArrowRouterError: Error, CustomStringConvertible, Equatable {
    case noExperts
    case invalidTopK(topK: Int, experts: Int)
    case invalidTemperature(Double)
    case differentBaseModels(first: String, other: String)
    /// `expert` does not adapt `missing`, which `adaptedBy` adapts.
    case differentProjections(expert: String, missing: ProjectionID, adaptedBy: String)

    public var description: String {
        switch self {
        case .noExperts:
            return "Arrow routing needs at least one expert"
        case let .invalidTopK(topK, experts):
            return "invalid top-k \(topK) for \(experts) expert(s), expected a value from 1 to \(experts)"
        case let .invalidTemperature(value):
            return "invalid router temperature \(value), expected a finite number greater than 0"
        case let .differentBaseModels(first, other):
            return "experts '\(first)' and '\(other)' were loaded for different base models"
        case let .differentProjections(expert, missing, adaptedBy):
            return "expert '\(expert)' does not adapt \(missing.moduleName), but expert '\(adaptedBy)' does. "
                + "Arrow routes each token among all experts, so every expert must adapt the same projections"
        }
    }
}

/// Per-token routing among LoRA experts with the Arrow method, computing
/// what peft 0.21.2 computes for `create_arrow_model(base, experts,
/// ArrowConfig(top_k:, router_temperature:))` without general knowledge
/// subtraction (GKS), which this router does not offer.
///
/// Each adapted projection routes on its own input. Expert e's prototype
/// `p_e` there is the unit top right-singular vector of `ΔW_e = B_e A_e`
/// (without the LoRA scaling, and with an arbitrary sign). For a token's input
/// row `x`, the score is `|x · p_e|`. The score is not divided by `|x|`, so
/// the temperature acts on the scale of the hidden states. The `topK` experts
/// with the highest scores get the coefficients `softmax(score / temperature)`
/// and all other experts get 0. The projection then adds
/// `Σ_e coeff_e · s_e · B_e (A_e x)`, where `s_e` is the expert's PEFT scaling.
/// Routing depends only on the row itself, so a prompt processed in one
/// forward pass gives the same result as feeding it token by token.
///
/// Prototypes are computed once, at initialization, in Double and to
/// convergence, from the r×r matrix `(Bᵀ B)(A Aᵀ)` (see `ArrowPrototype`).
/// PEFT runs 15 power iterations from a random start, which reach the same
/// vector when `σ₁(ΔW)` is well separated from `σ₂`. With a small gap, PEFT's
/// prototypes depend on its `rng_seed`, and this router's do not.
///
/// Cost per token and adapted projection: `(R + E) · in + out · R`
/// multiply-adds for E experts of total rank R. Like PEFT, every expert's
/// `A x` and `B z` is computed, and experts outside the top k get coefficient 0.
/// Initialization costs about `r² · (in + out) / 2` multiply-adds in Double
/// per expert and projection, plus a few dozen r×r matrix products at most.
///
/// Differences from PEFT's argument checks:
/// - `topK` larger than the number of experts is rejected here. PEFT accepts
///   it, and `torch.topk` then raises at the first forward pass.
/// - Every expert must adapt exactly the same projections. PEFT compares only
///   the module names without layer numbers. Where the layers differ, it routes
///   among the experts present in each layer, and it fails in a layer that no
///   expert adapts.
/// - Ranks may differ between experts. PEFT rejects that, but the formula does
///   not depend on it.
///
/// NOTE: experts whose scores tie at the top-k boundary are chosen by lower
/// index, but `torch.topk` does not document its order for ties.
public struct ArrowRouter: Router {
    public let experts: [LoRAAdapter]
    public let topK: Int
    public let temperature: Double
    let delta: ArrowDelta

    /// Computes every expert's prototypes, spreading projections over `pool`.
    ///
    /// - Throws: `ArrowRouterError` when `experts` is empty, `topK` is not in
    ///   `1...experts.count`, `temperature` is not finite and positive, or the
    ///   experts differ in base model or adapted projections.
    public init(experts: [LoRAAdapter], topK: Int, temperature: Double, pool: ComputePool = .allCores) throws {
        guard let first = experts.first else { throw ArrowRouterError.noExperts }
        guard (1...experts.count).contains(topK) else {
            throw ArrowRouterError.invalidTopK(topK: topK, experts: experts.count)
        }
        guard temperature.isFinite, temperature > 0 else {
            throw ArrowRouterError.invalidTemperature(temperature)
        }
        for other in experts.dropFirst() {
            guard other.modelConfig == first.modelConfig else {
                throw ArrowRouterError.differentBaseModels(first: first.name, other: other.name)
            }
            try Self.checkSameProjections(first, other)
        }

        self.experts = experts
        self.topK = topK
        self.temperature = temperature
        delta = ArrowDelta(experts: experts, topK: topK, temperature: temperature, pool: pool)
    }

    /// Throws for the first projection, in layer and kind order, that only
    /// one of the two experts adapts.
    private static func checkSameProjections(_ first: LoRAAdapter, _ other: LoRAAdapter) throws {
        let firstSet = Set(first.modules.keys)
        let otherSet = Set(other.modules.keys)
        guard firstSet != otherSet else { return }
        let differing = firstSet.symmetricDifference(otherSet).sorted {
            ($0.layer, $0.kind.index) < ($1.layer, $1.kind.index)
        }
        guard let projection = differing.first else { return }
        if firstSet.contains(projection) {
            throw ArrowRouterError.differentProjections(expert: other.name, missing: projection, adaptedBy: first.name)
        }
        throw ArrowRouterError.differentProjections(expert: first.name, missing: projection, adaptedBy: other.name)
    }

    /// Returns a delta that routes every token of every request; the routing
    /// tokens of the context are not used.
    public func route(_ context: RoutingContext) throws -> RoutingDecision {
        RoutingDecision(source: FixedDelta(delta), router: "arrow", experts: expertNames, weights: nil)
    }

    /// Returns the unit prototype of expert `expert` (an index into `experts`)
    /// at `projection`, `[inFeatures]`, or nil where the experts do not adapt it.
    public func prototype(expert: Int, projection: ProjectionID) -> [Float]? {
        delta.prototype(expert: expert, projection: projection)
    }
}
