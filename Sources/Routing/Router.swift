import Adapters
import Models
import Tensor

/// Supplies the projection delta (the blend of experts) for each forward
/// pass of a generation. The generator asks once per step and uses the
/// returned value for the whole step, so a step never mixes two blends.
public protocol DeltaSource: Sendable {
    func deltaForStep() -> (any ProjectionDelta)?
}

/// A delta that never changes, or none (the base model).
public struct FixedDelta: DeltaSource {
    public let delta: (any ProjectionDelta)?

    public init(_ delta: (any ProjectionDelta)?) {
        self.delta = delta
    }

    public func deltaForStep() -> (any ProjectionDelta)? { delta }
}

/// What a router may look at to choose weights for one sequence.
public struct RoutingContext {
    public let model: LanguageModel
    /// Tokens to route on: usually the latest user message without the chat
    /// template, so the template's fixed text does not dilute it.
    public let routingTokens: [Int]
    public let pool: ComputePool

    public init(model: LanguageModel, routingTokens: [Int], pool: ComputePool = .allCores) {
        self.model = model
        self.routingTokens = routingTokens
        self.pool = pool
    }
}

/// A router's choice for one sequence, with what reports should show.
public struct RoutingDecision: Sendable {
    /// What the generator applies at each step.
    public let source: any DeltaSource
    /// Router kind: "static", "weighted", "encoder", "gate" or "arrow".
    public let router: String
    /// Names of the router's experts, in order.
    public let experts: [String]
    /// One weight per expert for the whole sequence; nil when the router
    /// chooses per token and per layer.
    public let weights: [Double]?
    /// Router-specific scores per expert (such as cosine similarities), or nil.
    public let scores: [Double]?

    public init(source: any DeltaSource, router: String, experts: [String], weights: [Double]?, scores: [Double]? = nil) {
        self.source = source
        self.router = router
        self.experts = experts
        self.weights = weights
        self.scores = scores
    }
}

/// Turns a request into expert weights. Routers hold loaded experts and never
/// reload the model or the adapters.
public protocol Router: Sendable {
    var experts: [LoRAAdapter] { get }
    func route(_ context: RoutingContext) throws -> RoutingDecision
}

extension Router {
    public var expertNames: [String] { experts.map(\.name) }
}
