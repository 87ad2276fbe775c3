import Adapters
import Foundation
import Models
import Routing
import Testing
import TestSupport

struct GateTrainingTests {
    /// Three Gaussian-like clusters in 5 dimensions with very different
    /// feature scales, from a fixed linear congruential generator.
    static func clusters(perClass: Int = 12) -> (features: [[Float]], labels: [Int]) {
        var state: UInt64 = 42
        func noise() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(state >> 40) % 2001 - 1000) / 1000
        }
        let centers: [[Float]] = [[1, 0, 0, 5, 0], [0, 1, 0, 5, 0], [0, 0, 1, 5, 0]]
        let scales: [Float] = [1, 10, 0.01, 100, 1]
        var features: [[Float]] = []
        var labels: [Int] = []
        for (label, center) in centers.enumerated() {
            for _ in 0..<perClass {
                features.append((0..<5).map { (center[$0] + 0.3 * noise()) * scales[$0] })
                labels.append(label)
            }
        }
        return (features, labels)
    }

    func argmax(_ values: [Double]) -> Int {
        values.indices.max { values[$0] < values[$1] } ?? -1
    }

    @Test func separatesClusters() throws {
        let (features, labels) = Self.clusters()
        let result = try GateTraining().fit(features: features, labels: labels, classCount: 3)
        #expect(result.weight.count == 15)
        #expect(result.bias.count == 3)
        #expect(result.trainingLoss < 0.1, "loss \(result.trainingLoss)")
        for (row, label) in zip(features, labels) {
            let logits = (0..<3).map { k in
                Double(result.bias[k]) + (0..<5).reduce(0.0) { $0 + Double(result.weight[k * 5 + $1]) * Double(row[$1]) }
            }
            #expect(argmax(logits) == label, "\(row)")
        }
    }

    @Test func trainingIsDeterministic() throws {
        let (features, labels) = Self.clusters()
        let first = try GateTraining(l2: 0.1, iterations: 300).fit(features: features, labels: labels, classCount: 3)
        let second = try GateTraining(l2: 0.1, iterations: 300).fit(features: features, labels: labels, classCount: 3)
        #expect(first.weight == second.weight)
        #expect(first.bias == second.bias)
    }

    @Test func strongerPenaltyGivesSmallerWeights() throws {
        let (features, labels) = Self.clusters()
        let loose = try GateTraining(l2: 0.001).fit(features: features, labels: labels, classCount: 3)
        let tight = try GateTraining(l2: 1).fit(features: features, labels: labels, classCount: 3)
        func size(_ values: [Float]) -> Float { values.reduce(0) { $0 + $1 * $1 } }
        #expect(size(tight.weight) < size(loose.weight))
        #expect(tight.trainingLoss > loose.trainingLoss)
    }

    /// A constant feature has no spread, so only the floor on the standard
    /// deviation keeps its weight finite.
    @Test func constantFeatureStaysFinite() throws {
        let (features, labels) = Self.clusters()
        let padded = features.map { $0 + [3] }
        let result = try GateTraining().fit(features: padded, labels: labels, classCount: 3)
        #expect(result.weight.allSatisfy { $0.isFinite })
        #expect(result.bias.allSatisfy { $0.isFinite })
    }

    @Test func invalidInputsAreRejected() {
        let (features, labels) = Self.clusters(perClass: 2)
        #expect(throws: RouterError.self) { try GateTraining().fit(features: features, labels: labels, classCount: 1) }
        #expect(throws: RouterError.self) { try GateTraining().fit(features: [], labels: [], classCount: 3) }
        #expect(throws: RouterError.self) { try GateTraining().fit(features: features, labels: Array(labels.dropLast()), classCount: 3) }
        #expect(throws: RouterError.self) { try GateTraining().fit(features: features, labels: labels.map { $0 == 2 ? 1 : $0 }, classCount: 3) }
        #expect(throws: RouterError.self) { try GateTraining().fit(features: features, labels: labels.map { $0 == 2 ? 5 : $0 }, classCount: 3) }
        #expect(throws: RouterError.self) { try GateTraining().fit(features: features + [[1, 2]], labels: labels + [0], classCount: 3) }
        #expect(throws: RouterError.self) { try GateTraining().fit(features: features + [[.nan, 0, 0, 0, 0]], labels: labels + [0], classCount: 3) }
        #expect(throws: RouterError.self) { try GateTraining(l2: -1).fit(features: features, labels: labels, classCount: 3) }
        #expect(throws: RouterError.self) { try GateTraining(iterations: 0).fit(features: features, labels: labels, classCount: 3) }
    }
}

struct GateRouterTests {
    let model: LanguageModel
    let experts: [LoRAAdapter]

    init() throws {
        model = try RouterTestSupport.model()
        experts = try RouterTestSupport.experts(model)
    }

    func fittedRouter(selection: ExpertSelection = ExpertSelection(), layer: Int = 2) throws -> GateRouter {
        let examples = RouterTestSupport.examples()
        let features = try examples.flatMap { prompts in try prompts.map { try model.meanHiddenState($0, layer: layer) } }
        let labels = examples.enumerated().flatMap { [Int](repeating: $0.offset, count: $0.element.count) }
        let result = try GateTraining().fit(features: features, labels: labels, classCount: 3)
        return try GateRouter(
            experts: experts, layer: layer, weight: result.weight, bias: result.bias, hiddenSize: 64, selection: selection)
    }

    @Test func scoresAreLogits() throws {
        let weight = (0..<(3 * 64)).map { Float($0 % 7) / 10 - 0.3 }
        let router = try GateRouter(experts: experts, layer: 1, weight: weight, bias: [0.5, -1, 2], hiddenSize: 64, temperature: 2)
        let embedding = (0..<64).map { Float($0) / 64 }
        let scores = try router.scores(embedding: embedding)
        for k in 0..<3 {
            let expected = [0.5, -1, 2][k] + (0..<64).reduce(0.0) { $0 + Double(weight[k * 64 + $1]) * Double(embedding[$1]) }
            #expect(abs(scores[k] - expected) < 1e-9)
        }
        #expect(router.weights(scores: scores) == routerSoftmax(scores, temperature: 2))
    }

    @Test func routesOwnExamplesToTheirExpert() throws {
        let router = try fittedRouter()
        for (expected, prompts) in RouterTestSupport.examples().enumerated() {
            for prompt in prompts {
                let decision = try router.route(RoutingContext(model: model, routingTokens: prompt))
                #expect(decision.router == "gate")
                let weights = try #require(decision.weights)
                #expect(weights.indices.max { weights[$0] < weights[$1] } == expected, "\(prompt) -> \(weights)")
            }
        }
    }

    @Test func matchesStaticRouterWithChosenWeights() throws {
        let prompt = [45, 50, 140, 150, 230]
        let continuation = [12, 13, 14]
        for selection in [ExpertSelection(), ExpertSelection(topK: 2), ExpertSelection(minWeight: 0.05, renormalize: false)] {
            let router = try fittedRouter(selection: selection)
            let decision = try router.route(RoutingContext(model: model, routingTokens: prompt))
            let weights = try #require(decision.weights)
            let reference = try StaticRouter(experts: experts, weights: weights).route(RoutingContext(model: model, routingTokens: []))
            let routed = try continuationLogprobs(model, prompt: prompt, continuation: continuation, delta: decision.source.deltaForStep())
            let expected = try continuationLogprobs(model, prompt: prompt, continuation: continuation, delta: reference.source.deltaForStep())
            #expect(routed == expected, "\(selection)")
        }
    }

    @Test func emptyRoutingTextGetsUniformWeights() throws {
        let router = try fittedRouter(selection: ExpertSelection(topK: 1))
        let decision = try router.route(RoutingContext(model: model, routingTokens: []))
        let third = 1.0 / 3
        #expect(decision.weights == [third, third, third])
        #expect(decision.scores == nil)
    }

    @Test func invalidParametersAreRejected() {
        let weight = [Float](repeating: 0, count: 3 * 64)
        let bias: [Float] = [0, 0, 0]
        #expect(throws: Never.self) { try GateRouter(experts: experts, layer: 1, weight: weight, bias: bias, hiddenSize: 64) }
        #expect(throws: RouterError.self) { try GateRouter(experts: [], layer: 1, weight: [], bias: [], hiddenSize: 64) }
        #expect(throws: RouterError.self) { try GateRouter(experts: experts, layer: 1, weight: weight, bias: bias, hiddenSize: 0) }
        #expect(throws: RouterError.self) { try GateRouter(experts: experts, layer: 1, weight: Array(weight.dropLast()), bias: bias, hiddenSize: 64) }
        #expect(throws: RouterError.self) { try GateRouter(experts: experts, layer: 1, weight: weight, bias: [0, 0], hiddenSize: 64) }
        #expect(throws: RouterError.self) { try GateRouter(experts: experts, layer: 1, weight: weight, bias: [0, .nan, 0], hiddenSize: 64) }
        #expect(throws: RouterError.self) { try GateRouter(experts: experts, layer: -2, weight: weight, bias: bias, hiddenSize: 64) }
        #expect(throws: RouterError.self) { try GateRouter(experts: experts, layer: 1, weight: weight, bias: bias, hiddenSize: 64, temperature: -1) }
        #expect(throws: RouterError.self) {
            try GateRouter(experts: experts, layer: 1, weight: weight, bias: bias, hiddenSize: 64, selection: ExpertSelection(minWeight: 2))
        }
    }
}
