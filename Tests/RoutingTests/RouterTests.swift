import Adapters
import Dispatch
import Foundation
import Models
import Routing
import Synchronization
import Testing
import TestSupport

struct StaticAndWeightedRouterTests {
    let model: LanguageModel
    let experts: [LoRAAdapter]

    init() throws {
        let model = try TinyFixtures.model("qwen3-f32")
        self.model = model
        experts = try ["basic", "all-seven"].map {
            try LoRAAdapter(directory: TinyFixtures.adapterURL($0), modelConfig: model.config)
        }
    }

    func logits(_ source: any DeltaSource, tokens: [Int]) throws -> [Float] {
        try model.forward(tokens, state: model.makeState(), delta: source.deltaForStep(), logits: .all)
    }

    @Test func staticRouterReportsItsWeights() throws {
        let router = try StaticRouter(experts: experts, weights: [0.7, -0.2])
        let decision = try router.route(RoutingContext(model: model, routingTokens: [1, 2, 3]))
        #expect(decision.router == "static")
        #expect(decision.experts == ["basic", "all-seven"])
        #expect(decision.weights == [0.7, -0.2])
        let direct = try ExpertBlend(experts: experts, weights: [0.7, -0.2])
        #expect(try logits(decision.source, tokens: [4, 5, 6]) == logits(FixedDelta(direct), tokens: [4, 5, 6]))
    }

    @Test func weightedRouterAppliesNewWeights() throws {
        let router = try WeightedRouter(experts: experts, weights: [1, 0])
        let tokens = [7, 8, 9, 10]
        let before = try logits(router, tokens: tokens)
        try router.setWeights([0, 1])
        #expect(router.version == 1)
        #expect(router.weights == [0, 1])
        let after = try logits(router, tokens: tokens)
        let expected = try logits(StaticRouter(experts: experts, weights: [0, 1]).route(RoutingContext(model: model, routingTokens: [])).source, tokens: tokens)
        #expect(after == expected)
        #expect(before != after)
    }

    @Test func weightedRouterKeepsWeightsAfterInvalidUpdate() throws {
        let router = try WeightedRouter(experts: experts, weights: [0.5, 0.5])
        #expect(throws: BlendError.countMismatch(experts: 2, weights: 3)) { try router.setWeights([1, 2, 3]) }
        #expect(throws: BlendError.self) { try router.setWeights([.nan, 1]) }
        #expect(router.weights == [0.5, 0.5])
        #expect(router.version == 0)
    }

    /// Decoding while another thread changes the weights as fast as it can:
    /// every step must use exactly one of the weight vectors that were set,
    /// and replaying the recorded per-step weights with fixed blends must give
    /// the same logits bit for bit.
    @Test func concurrentUpdatesNeverTearAStep() throws {
        let candidates: [[Double]] = [[1, 0], [0, 1], [0.5, 0.5], [-0.3, 1.2]]
        let router = try WeightedRouter(experts: experts, weights: candidates[0])
        let stop = Atomic<Bool>(false)
        let updates = Atomic<Int>(0)

        let writer = Thread {
            var index = 0
            while !stop.load(ordering: .relaxed) {
                index = (index + 1) % candidates.count
                try? router.setWeights(candidates[index])
                updates.add(1, ordering: .relaxed)
            }
        }
        writer.start()

        var stepWeights: [[Double]] = []
        var stepLogits: [[Float]] = []
        let state = model.makeState()
        var token = 3
        var seenUpdates = 0
        for _ in 0..<40 {
            // Let the writer make progress between steps even on a loaded machine.
            let deadline = Date().addingTimeInterval(2)
            while updates.load(ordering: .relaxed) <= seenUpdates, Date() < deadline { usleep(100) }
            seenUpdates = updates.load(ordering: .relaxed)
            let delta = router.deltaForStep()
            let blend = try #require(delta as? ExpertBlend)
            stepWeights.append(blend.weights)
            let logits = try model.forward([token], state: state, delta: blend)
            stepLogits.append(logits)
            token = logits.indices.max { logits[$0] < logits[$1] } ?? 0
        }
        stop.store(true, ordering: .relaxed)
        while !writer.isFinished { usleep(1000) }

        #expect(updates.load(ordering: .relaxed) >= 40, "the writer thread barely ran")
        for weights in stepWeights {
            #expect(candidates.contains(weights), "torn weights \(weights)")
        }
        #expect(Set(stepWeights.map { $0.description }).count > 1, "weights never changed during decoding")

        // Replay with fixed blends.
        let replay = model.makeState()
        var replayToken = 3
        for (weights, expected) in zip(stepWeights, stepLogits) {
            let logits = try model.forward([replayToken], state: replay, delta: ExpertBlend(experts: experts, weights: weights))
            #expect(logits == expected)
            replayToken = logits.indices.max { logits[$0] < logits[$1] } ?? 0
        }
    }
}
