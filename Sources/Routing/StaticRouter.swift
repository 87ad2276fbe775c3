import Adapters
import Models

/// Builds the delta that applies a blend: fused (`ExpertBlend`, the
/// default) or merged into the weights (`MergedBlend`).
public typealias BlendBuilder = @Sendable (_ experts: [LoRAAdapter], _ weights: [Double]) throws -> (any ProjectionDelta)?

/// The fused blend, or nil when there are no experts.
public let fusedBlend: BlendBuilder = { experts, weights in
    experts.isEmpty ? nil : try ExpertBlend(experts: experts, weights: weights)
}

/// Fixed weights, one per expert, for every request.
public struct StaticRouter: Router {
    public let experts: [LoRAAdapter]
    public let weights: [Double]
    let blend: (any ProjectionDelta)?

    public init(experts: [LoRAAdapter], weights: [Double], build: BlendBuilder = fusedBlend) throws {
        self.experts = experts
        self.weights = weights
        blend = try build(experts, weights)
    }

    public func route(_ context: RoutingContext) throws -> RoutingDecision {
        RoutingDecision(source: FixedDelta(blend), router: "static", experts: expertNames, weights: weights)
    }
}
