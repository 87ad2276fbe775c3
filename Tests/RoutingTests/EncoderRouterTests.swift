import Adapters
import Foundation
import Models
import Routing
import Tensor
import Testing
import TestSupport

/// Shared setup of the encoder, gate and router file tests: the tiny Qwen3
/// model with three tiny adapters, and scratch directories.
enum RouterTestSupport {
    static let expertNames = ["basic", "all-seven", "mlp-only"]

    static func model() throws -> LanguageModel {
        try TinyFixtures.model("qwen3-f32")
    }

    static func experts(_ model: LanguageModel, names: [String] = expertNames) throws -> [LoRAAdapter] {
        try names.map { try LoRAAdapter(directory: TinyFixtures.adapterURL($0), modelConfig: model.config) }
    }

    /// Deterministic token sequences: `count` prompts of 6 to 13 tokens per
    /// class, class k drawing from the six tokens `40 + 90k ..< 46 + 90k`, so
    /// the classes use small disjoint vocabularies that even a random model
    /// separates.
    static func examples(classes: Int = 3, count: Int = 8, seed: UInt64 = 7) -> [[[Int]]] {
        var state = seed
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33)
        }
        return (0..<classes).map { k in
            (0..<count).map { _ in (0..<(6 + next() % 8)).map { _ in 40 + 90 * k + next() % 6 } }
        }
    }

    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var realModelDirectory: URL {
        if let models = ProcessInfo.processInfo.environment["LORA_MOE_MODELS"], !models.isEmpty {
            return URL(fileURLWithPath: models).appendingPathComponent("smollm2-135m-instruct")
        }
        return repositoryRoot.appendingPathComponent("models/smollm2-135m-instruct")
    }
}

/// A scratch directory removed when the value is deallocated.
final class RouterScratchDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("lora-moe-router-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// Copies a directory into the scratch directory under `name`.
    func copy(_ source: URL, as name: String) throws -> URL {
        let destination = file(name)
        try FileManager.default.copyItem(at: source, to: destination)
        return destination
    }
}

struct ExpertSelectionTests {
    /// Probabilities in, weights out, for each combination of the steps.
    static let cases: [(name: String, selection: ExpertSelection, probabilities: [Double], expected: [Double])] = [
        ("keep all", ExpertSelection(), [0.5, 0.3, 0.2], [0.5, 0.3, 0.2]),
        ("top-1", ExpertSelection(topK: 1), [0.2, 0.5, 0.3], [0, 1, 0]),
        ("top-2 renormalized", ExpertSelection(topK: 2), [0.2, 0.5, 0.3], [0, 0.625, 0.375]),
        ("top-2 raw", ExpertSelection(topK: 2, renormalize: false), [0.2, 0.5, 0.3], [0, 0.5, 0.3]),
        ("top-k equal to count", ExpertSelection(topK: 3), [0.2, 0.5, 0.3], [0.2, 0.5, 0.3]),
        ("tie goes to lower index", ExpertSelection(topK: 1), [0.4, 0.4, 0.2], [1, 0, 0]),
        ("tie for second place", ExpertSelection(topK: 2), [0.2, 0.6, 0.2], [0.25, 0.75, 0]),
        ("min weight drops one", ExpertSelection(minWeight: 0.25), [0.5, 0.3, 0.2], [0.625, 0.375, 0]),
        ("min weight raw", ExpertSelection(minWeight: 0.25, renormalize: false), [0.5, 0.3, 0.2], [0.5, 0.3, 0]),
        ("min weight equal is kept", ExpertSelection(minWeight: 0.3, renormalize: false), [0.5, 0.3, 0.2], [0.5, 0.3, 0]),
        ("min weight uses softmax values before renormalization",
         ExpertSelection(topK: 2, minWeight: 0.35), [0.3, 0.4, 0.3], [0, 1, 0]),
        ("top-k then min weight", ExpertSelection(topK: 2, minWeight: 0.25), [0.45, 0.35, 0.2], [0.5625, 0.4375, 0]),
        ("min weight drops all", ExpertSelection(minWeight: 0.6), [0.5, 0.3, 0.2], [0, 0, 0]),
    ]

    @Test func selectionTable() {
        for item in Self.cases {
            let weights = item.selection.apply(to: item.probabilities)
            #expect(weights.count == item.expected.count, "\(item.name)")
            for (actual, expected) in zip(weights, item.expected) {
                #expect(abs(actual - expected) < 1e-12, "\(item.name): \(weights) != \(item.expected)")
            }
        }
    }

    @Test func selectionValidation() {
        #expect(throws: RouterError.self) { try ExpertSelection(topK: 0).validate(expertCount: 3) }
        #expect(throws: RouterError.self) { try ExpertSelection(topK: 4).validate(expertCount: 3) }
        #expect(throws: RouterError.self) { try ExpertSelection(minWeight: 1).validate(expertCount: 3) }
        #expect(throws: RouterError.self) { try ExpertSelection(minWeight: -0.1).validate(expertCount: 3) }
        #expect(throws: RouterError.self) { try ExpertSelection(minWeight: .nan).validate(expertCount: 3) }
        #expect(throws: Never.self) { try ExpertSelection(topK: 3, minWeight: 0.99).validate(expertCount: 3) }
    }

    @Test func softmaxTemperature() {
        let cold = routerSoftmax([1, 0], temperature: 0.1)
        let warm = routerSoftmax([1, 0], temperature: 10)
        #expect(abs(cold[0] - 1 / (1 + exp(-10))) < 1e-12)
        #expect(abs(warm[0] - 1 / (1 + exp(-0.1))) < 1e-12)
        // Large scores must not overflow.
        let large = routerSoftmax([1000, 999], temperature: 0.01)
        #expect(large.allSatisfy { $0.isFinite })
        #expect(abs(large.reduce(0, +) - 1) < 1e-12)
    }
}

struct EncoderRouterTests {
    let model: LanguageModel
    let experts: [LoRAAdapter]

    init() throws {
        model = try RouterTestSupport.model()
        experts = try RouterTestSupport.experts(model)
    }

    /// Builds a router whose prototypes come from the tiny examples.
    func router(temperature: Double = 0.1, selection: ExpertSelection = ExpertSelection(), layer: Int = 3) throws -> EncoderRouter {
        let embeddings = try RouterTestSupport.examples().map { prompts in
            try prompts.map { try model.meanHiddenState($0, layer: layer) }
        }
        let (center, prototypes) = try RouterFitting.encoderParameters(embeddings: embeddings)
        return try EncoderRouter(
            experts: experts, layer: layer, center: center, prototypes: prototypes,
            temperature: temperature, selection: selection)
    }

    func logprobs(_ decision: RoutingDecision, prompt: [Int], continuation: [Int]) throws -> [Float] {
        try continuationLogprobs(model, prompt: prompt, continuation: continuation, delta: decision.source.deltaForStep())
    }

    @Test func scoresAreCenteredCosines() throws {
        let router = try router()
        let tokens = [45, 50, 61, 77, 52]
        let embedding = try model.meanHiddenState(tokens, layer: 3).map(Double.init)
        let norm = embedding.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let direction = zip(embedding, router.center).map { $0 / norm - Double($1) }
        for (index, prototype) in router.prototypes.enumerated() {
            let p = prototype.map(Double.init)
            let expected = zip(direction, p).reduce(0) { $0 + $1.0 * $1.1 }
                / (direction.reduce(0) { $0 + $1 * $1 }.squareRoot() * p.reduce(0) { $0 + $1 * $1 }.squareRoot())
            let scores = try router.scores(embedding: embedding.map(Float.init))
            #expect(abs(scores[index] - expected) < 1e-9)
        }
    }

    @Test func decisionReportsWeightsAndScores() throws {
        let router = try router()
        let tokens = [45, 50, 61, 77, 52, 90]
        let decision = try router.route(RoutingContext(model: model, routingTokens: tokens))
        let scores = try router.scores(embedding: model.meanHiddenState(tokens, layer: 3))
        #expect(decision.router == "encoder")
        #expect(decision.experts == RouterTestSupport.expertNames)
        #expect(decision.scores == scores)
        #expect(decision.weights == routerSoftmax(scores, temperature: 0.1))
        #expect(abs((decision.weights ?? []).reduce(0, +) - 1) < 1e-12)
    }

    /// After one layer of the random tiny model the classes are still far
    /// apart. Deeper layers mix them (one of 24 examples misroutes at layer 3).
    @Test func routesOwnExamplesToTheirExpert() throws {
        let router = try router(layer: 1)
        for (expected, prompts) in RouterTestSupport.examples().enumerated() {
            for prompt in prompts {
                let weights = try #require(try router.route(RoutingContext(model: model, routingTokens: prompt)).weights)
                #expect(weights.indices.max { weights[$0] < weights[$1] } == expected, "\(prompt) -> \(weights)")
            }
        }
    }

    /// The router's blend must be exactly the static blend of the weights it
    /// reports, for each way of selecting experts.
    @Test func matchesStaticRouterWithChosenWeights() throws {
        let prompt = [45, 50, 61, 140, 150, 230]
        let continuation = [7, 8, 9, 10, 11]
        for selection in [ExpertSelection(), ExpertSelection(topK: 1), ExpertSelection(topK: 2, renormalize: false), ExpertSelection(minWeight: 0.2)] {
            let router = try router(temperature: 0.3, selection: selection)
            let decision = try router.route(RoutingContext(model: model, routingTokens: prompt))
            let weights = try #require(decision.weights)
            let reference = try StaticRouter(experts: experts, weights: weights).route(RoutingContext(model: model, routingTokens: []))
            let routed = try logprobs(decision, prompt: prompt, continuation: continuation)
            #expect(routed == (try logprobs(reference, prompt: prompt, continuation: continuation)), "\(selection)")
        }
    }

    @Test func emptyRoutingTextGetsUniformWeights() throws {
        let router = try router(selection: ExpertSelection(topK: 1, minWeight: 0.5))
        let decision = try router.route(RoutingContext(model: model, routingTokens: []))
        let third = 1.0 / 3
        #expect(decision.weights == [third, third, third])
        #expect(decision.scores == nil)
        let reference = try StaticRouter(experts: experts, weights: [third, third, third]).route(RoutingContext(model: model, routingTokens: []))
        #expect(try logprobs(decision, prompt: [3, 4], continuation: [5, 6]) == logprobs(reference, prompt: [3, 4], continuation: [5, 6]))
    }

    @Test func allExpertsDroppedRunsBaseModel() throws {
        // A temperature of 100 makes the three weights nearly 1/3 each, so a
        // minimum weight of 0.9 drops every expert.
        let router = try router(temperature: 100, selection: ExpertSelection(minWeight: 0.9))
        let decision = try router.route(RoutingContext(model: model, routingTokens: [45, 50, 61]))
        #expect(decision.weights == [0, 0, 0])
        #expect(decision.source.deltaForStep() == nil)
        let base = try continuationLogprobs(model, prompt: [3, 4], continuation: [5, 6], delta: nil)
        #expect(try logprobs(decision, prompt: [3, 4], continuation: [5, 6]) == base)
    }

    /// The tiny model has 256 positions, so longer routing text is embedded
    /// from its first 256 tokens.
    @Test func longRoutingTextUsesFirstPositions() throws {
        let long = (0..<300).map { 40 + $0 % 6 }
        let encoder = try router()
        let gate = try GateRouter(
            experts: experts, layer: 2, weight: (0..<192).map { Float($0 % 5) - 2 }, bias: [0, 0, 0], hiddenSize: 64)
        for router in [encoder, gate] as [any Router] {
            let decision = try router.route(RoutingContext(model: model, routingTokens: long))
            let truncated = try router.route(RoutingContext(model: model, routingTokens: Array(long.prefix(256))))
            #expect(decision.scores == truncated.scores)
            #expect(decision.weights == truncated.weights)
        }
    }

    @Test func zeroEmbeddingScoresZero() throws {
        let router = try router()
        #expect(try router.scores(embedding: [Float](repeating: 0, count: 64)) == [0, 0, 0])
        #expect(throws: RouterError.dimensionMismatch(what: "embedding", expected: 64, actual: 3)) {
            try router.scores(embedding: [1, 2, 3])
        }
    }

    @Test func invalidParametersAreRejected() throws {
        let center = [Float](repeating: 0, count: 64)
        let prototype = [Float](repeating: 1, count: 64)
        func make(
            experts: [LoRAAdapter]? = nil, layer: Int = 1, center: [Float]? = nil, prototypes: [[Float]]? = nil,
            temperature: Double = 0.1, selection: ExpertSelection = ExpertSelection()
        ) throws -> EncoderRouter {
            try EncoderRouter(
                experts: experts ?? self.experts, layer: layer, center: center ?? [Float](repeating: 0, count: 64),
                prototypes: prototypes ?? [prototype, prototype, prototype], temperature: temperature, selection: selection)
        }
        #expect(throws: Never.self) { try make() }
        #expect(throws: RouterError.self) { try make(experts: []) }
        #expect(throws: RouterError.dimensionMismatch(what: "prototype list", expected: 3, actual: 2)) { try make(prototypes: [prototype, prototype]) }
        #expect(throws: RouterError.self) { try make(prototypes: [prototype, prototype, [1, 2]]) }
        #expect(throws: RouterError.self) { try make(prototypes: [prototype, prototype, center]) }
        #expect(throws: RouterError.self) { try make(prototypes: [prototype, prototype, [Float](repeating: .nan, count: 64)]) }
        #expect(throws: RouterError.self) { try make(center: [Float](repeating: .infinity, count: 64)) }
        #expect(throws: RouterError.self) { try make(layer: -1) }
        #expect(throws: RouterError.self) { try make(temperature: 0) }
        #expect(throws: RouterError.self) { try make(temperature: .infinity) }
        #expect(throws: RouterError.self) { try make(selection: ExpertSelection(topK: 4)) }
    }

    @Test func layerBeyondModelFailsAtRouting() throws {
        let router = try router(layer: 3)
        let deeper = try EncoderRouter(
            experts: experts, layer: 4, center: router.center, prototypes: router.prototypes, temperature: 0.1)
        #expect(throws: ModelError.self) { try deeper.route(RoutingContext(model: model, routingTokens: [1, 2])) }
    }
}

/// `LanguageModel.meanHiddenState` against transformers' `hidden_states`
/// (Tests/Fixtures/hidden, made by scripts/fixtures/make_hidden_state_fixtures.py).
struct MeanHiddenStateParityTests {
    struct Case {
        let name: String
        let model: String
        let tokens: [Int]
        let layers: [(layer: Int, mean: [Float])]
    }

    static func cases() throws -> [Case] {
        let url = RouterTestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/hidden/hidden_states.json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let cases = try #require(object["cases"] as? [[String: Any]])
        return try cases.map { item in
            let layers = try #require(item["layers"] as? [[String: Any]]).map { layer in
                (layer: layer["layer"] as? Int ?? -1, mean: (layer["mean"] as? [Double] ?? []).map(Float.init))
            }
            return Case(
                name: try #require(item["name"] as? String), model: try #require(item["model"] as? String),
                tokens: try #require(item["token_ids"] as? [Int]), layers: layers)
        }
    }

    func check(_ item: Case, model: LanguageModel, tolerance: (Float) -> Float) throws {
        #expect(!item.layers.isEmpty)
        for (layer, expected) in item.layers {
            let actual = try model.meanHiddenState(item.tokens, layer: layer, pool: ComputePool(threadCount: 1))
            #expect(actual.count == expected.count, "\(item.name) layer \(layer)")
            let scale = expected.map(abs).max() ?? 0
            let difference = zip(actual, expected).map { abs($0 - $1) }.max() ?? .infinity
            #expect(difference <= tolerance(scale), "\(item.name) layer \(layer): max |difference| \(difference), max |value| \(scale)")
        }
    }

    @Test func tinyModelsMatchTransformers() throws {
        let cases = try Self.cases().filter { $0.name.hasPrefix("tiny/") }
        #expect(cases.count == 10)
        for item in cases {
            let model = try LanguageModel(directory: RouterTestSupport.repositoryRoot.appendingPathComponent(item.model))
            try check(item, model: model) { _ in 1e-4 }
        }
    }

    /// 391 tokens, so the layers run in two chunks of at most 256 rows.
    /// Hidden states of SmolLM2 reach 522 at layer 29, where one float32 step
    /// is 6e-5, so the bound is 1e-4 or 2e-6 of the largest value, whichever
    /// is larger. The largest difference measured was 6.1e-5, at layer 29.
    @Test func realModelMatchesTransformers() throws {
        let item = try #require(try Self.cases().first { $0.name == "real/smollm2-135m-instruct" })
        #expect(item.tokens.count > LanguageModel.defaultChunkRows)
        let model = try LanguageModel(directory: RouterTestSupport.realModelDirectory)
        try check(item, model: model) { scale in max(1e-4, 2e-6 * scale) }
    }

    @Test func rejectsLayerOutOfRange() throws {
        let model = try RouterTestSupport.model()
        #expect(throws: ModelError.self) { try model.meanHiddenState([1, 2], layer: 4) }
        #expect(throws: ModelError.self) { try model.meanHiddenState([1, 2], layer: -1) }
    }
}
