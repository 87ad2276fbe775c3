import Adapters

/// Fixed weights, one per expert, for every request.
public struct StaticRouter: Router {
    public let experts: [LoRAAdapter]
    public let weights: [Double]
    let blend: ExpertBlend?

    public init(experts: [LoRAAdapter], weights: [Double]) throws {
        self.experts = experts
        self.weights = weights
        blend = experts.isEmpty ? nil : try ExpertBlend(experts: experts, weights: weights)
    }

    public func route(_ context: RoutingContext) throws -> RoutingDecision {
        RoutingDecision(source: FixedDelta(blend), router: "static", experts: expertNames, weights: weights)
    }
}
