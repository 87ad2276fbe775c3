import Adapters
import Models
import Synchronization

/// Weights that can be changed at any time from any thread. A change takes
/// effect at the next step of every running generation: each step takes one
/// immutable snapshot of the blend, so it never sees a mix of old and new
/// weights.
public final class WeightedRouter: Router, DeltaSource {
    public let experts: [LoRAAdapter]

    private struct Snapshot {
        var version: Int
        var weights: [Double]
        var blend: (any ProjectionDelta)?
    }

    private let current: Mutex<Snapshot>
    /// Serializes writers, so the last `setWeights` call is the one in force.
    private let writer = Mutex(())

    let build: BlendBuilder

    /// `build` makes the delta for each new set of weights (fused by default;
    /// a merged builder re-merges on every change).
    public init(experts: [LoRAAdapter], weights: [Double], build: @escaping BlendBuilder = fusedBlend) throws {
        self.experts = experts
        self.build = build
        let blend = try build(experts, weights)
        current = Mutex(Snapshot(version: 0, weights: weights, blend: blend))
    }

    /// The weights in force now.
    public var weights: [Double] { current.withLock { $0.weights } }

    /// Increases by one with every successful `setWeights`.
    public var version: Int { current.withLock { $0.version } }

    /// Replaces all weights. The blend is built before the swap, so readers
    /// see either the old weights or the new ones, never a partial update.
    public func setWeights(_ weights: [Double]) throws {
        try writer.withLock { _ in
            // Validates the weights even when there is nothing to blend.
            _ = try ExpertBlend(experts: experts, weights: weights)
            let blend = try build(experts, weights)
            current.withLock { snapshot in
                snapshot = Snapshot(version: snapshot.version + 1, weights: weights, blend: blend)
            }
        }
    }

    public func deltaForStep() -> (any ProjectionDelta)? {
        current.withLock { $0.blend }
    }

    public func route(_ context: RoutingContext) throws -> RoutingDecision {
        RoutingDecision(source: self, router: "weighted", experts: expertNames, weights: weights)
    }
}
