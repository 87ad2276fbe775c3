import Adapters
import Dispatch
import Foundation
import Models
import Routing
import Synchronization
import Testing
import TestSupport

/// The Arrow fixtures under Tests/Fixtures/arrow, made by
/// scripts/fixtures/make_arrow_fixtures.py with peft's create_arrow_model.
enum ArrowFixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/arrow")

    struct Case: Sendable {
        let name: String
        let experts: [String]
        let topK: Int
        let temperature: Double
        let promptIDs: [Int]
        let continuationIDs: [Int]
        let logprobs: [Double]
        let greedyIDs: [Int]
    }

    /// Cases and the exact prototypes, `[adapter: [module name: vector]]`.
    static let goldens: (cases: [Case], prototypes: [String: [String: [Double]]]) = {
        guard let data = try? Data(contentsOf: root.appendingPathComponent("goldens.json")),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let cases = object["cases"] as? [[String: Any]],
              let prototypes = object["prototypes"] as? [String: [String: [Double]]]
        else { return ([], [:]) }
        return (
            cases.map { item in
                Case(name: item["name"] as? String ?? "?", experts: item["experts"] as? [String] ?? [],
                     topK: item["top_k"] as? Int ?? 0, temperature: item["temperature"] as? Double ?? 0,
                     promptIDs: item["prompt_ids"] as? [Int] ?? [], continuationIDs: item["continuation_ids"] as? [Int] ?? [],
                     logprobs: item["logprobs"] as? [Double] ?? [], greedyIDs: item["greedy_ids"] as? [Int] ?? [])
            },
            prototypes)
    }()

    static let adapterNames = ["task-0", "task-1", "task-2", "task-3"]

    static func adapter(_ name: String, model: LanguageModel) throws -> LoRAAdapter {
        try LoRAAdapter(directory: root.appendingPathComponent("adapters/\(name)"), modelConfig: model.config)
    }
}

struct ArrowRouterTests {
    let model: LanguageModel
    let experts: [LoRAAdapter]
    let prompt = [5, 17, 42, 99, 3, 250, 7, 8, 120, 64, 33]
    let continuation = [11, 12, 300, 4, 1, 90, 91, 200]

    init() throws {
        let model = try TinyFixtures.model("qwen3-f32")
        self.model = model
        experts = try ArrowFixtures.adapterNames.map { try ArrowFixtures.adapter($0, model: model) }
    }

    func delta(_ router: any Router) throws -> (any ProjectionDelta)? {
        try router.route(RoutingContext(model: model, routingTokens: [])).source.deltaForStep()
    }

    func logprobs(_ delta: (any ProjectionDelta)?) throws -> [Float] {
        try continuationLogprobs(model, prompt: prompt, continuation: continuation, delta: delta)
    }

    // MARK: Parity with PEFT

    @Test func goldensArePresent() {
        #expect(ArrowFixtures.goldens.cases.count >= 4, "run scripts/fixtures/make_arrow_fixtures.py")
        #expect(ArrowFixtures.goldens.prototypes.count == 4)
    }

    @Test(arguments: ArrowFixtures.goldens.cases.map(\.name))
    func logprobsAndGreedyMatchPEFT(caseName: String) throws {
        let golden = try #require(ArrowFixtures.goldens.cases.first { $0.name == caseName })
        let chosen = try golden.experts.map { try ArrowFixtures.adapter($0, model: model) }
        let router = try ArrowRouter(experts: chosen, topK: golden.topK, temperature: golden.temperature)
        let delta = try delta(router)

        let logprobs = try continuationLogprobs(model, prompt: golden.promptIDs, continuation: golden.continuationIDs, delta: delta)
        #expect(logprobs.count == golden.logprobs.count)
        for (index, (actual, expected)) in zip(logprobs, golden.logprobs).enumerated() {
            #expect(abs(Double(actual) - expected) < 1e-3, "token \(index): \(actual) vs \(expected)")
        }

        let greedy = try greedyTokens(model, prompt: golden.promptIDs, count: golden.greedyIDs.count, delta: delta)
        #expect(greedy == golden.greedyIDs)
    }

    @Test func prototypesMatchExactSingularVectors() throws {
        let router = try ArrowRouter(experts: experts, topK: 1, temperature: 1)
        var checked = 0
        for (index, name) in ArrowFixtures.adapterNames.enumerated() {
            let modules = try #require(ArrowFixtures.goldens.prototypes[name])
            for (moduleName, exact) in modules {
                let projection = try #require(model.config.projection(named: moduleName))
                let prototype = try #require(router.prototype(expert: index, projection: projection))
                #expect(prototype.count == exact.count)
                // Singular vectors are defined up to sign.
                let dot = zip(prototype, exact).reduce(0.0) { $0 + Double($1.0) * $1.1 }
                let sign = dot < 0 ? -1.0 : 1.0
                let difference = zip(prototype, exact).map { abs(sign * Double($0) - $1) }.max() ?? 0
                #expect(difference < 1e-5, "\(name) \(moduleName): prototype differs by \(difference)")
                checked += 1
            }
        }
        #expect(checked == 4 * 21)
        #expect(router.prototype(expert: 4, projection: ProjectionID(layer: 0, kind: .qProj)) == nil)
        #expect(router.prototype(expert: 0, projection: ProjectionID(layer: 3, kind: .qProj)) == nil)
    }

    @Test func routeReportsPerTokenDecision() throws {
        let router = try ArrowRouter(experts: experts, topK: 2, temperature: 0.5)
        let decision = try router.route(RoutingContext(model: model, routingTokens: [1, 2, 3]))
        #expect(decision.router == "arrow")
        #expect(decision.experts == ArrowFixtures.adapterNames)
        #expect(decision.weights == nil)
        #expect(decision.source.deltaForStep() != nil)
    }

    // MARK: Metamorphic properties

    @Test func singleExpertEqualsExpertAlone() throws {
        let arrow = try logprobs(delta(ArrowRouter(experts: [experts[1]], topK: 1, temperature: 0.3)))
        let alone = try logprobs(ExpertBlend(experts: [experts[1]], weights: [1]))
        let base = try logprobs(nil)
        for (index, (a, b)) in zip(arrow, alone).enumerated() {
            #expect(abs(a - b) < 1e-5, "token \(index): \(a) vs \(b)")
        }
        #expect(zip(alone, base).contains { abs($0 - $1) > 1e-2 }, "the expert has no visible effect")
    }

    @Test func hugeTemperatureApproachesUniformBlend() throws {
        let uniform = try logprobs(ExpertBlend(experts: experts, weights: [0.25, 0.25, 0.25, 0.25]))
        let flat = try logprobs(delta(ArrowRouter(experts: experts, topK: 4, temperature: 1e9)))
        for (index, (a, b)) in zip(flat, uniform).enumerated() {
            #expect(abs(a - b) < 1e-4, "token \(index): \(a) vs \(b)")
        }
        // At temperature 1 the routing is far from uniform.
        let routed = try logprobs(delta(ArrowRouter(experts: experts, topK: 4, temperature: 1)))
        #expect(zip(routed, uniform).contains { abs($0 - $1) > 1e-2 })
    }

    /// PEFT's create_arrow_model rejects experts of different ranks; this
    /// router accepts them. "rslora" has rank 8 and "patterns" several ranks
    /// from its rank_pattern, on the same projections.
    @Test func expertsWithDifferentRanksAreAccepted() throws {
        let mixed = try ["rslora", "patterns"].map {
            try LoRAAdapter(directory: TinyFixtures.adapterURL($0), modelConfig: model.config)
        }
        let ranks = Set(mixed.flatMap { $0.modules.values.map(\.rank) })
        #expect(ranks.count > 1)

        let uniform = try logprobs(ExpertBlend(experts: mixed, weights: [0.5, 0.5]))
        let flat = try logprobs(delta(ArrowRouter(experts: mixed, topK: 2, temperature: 1e9)))
        for (index, (a, b)) in zip(flat, uniform).enumerated() {
            #expect(abs(a - b) < 1e-4, "token \(index): \(a) vs \(b)")
        }
    }

    @Test func topOneDiffersFromEverySingleExpert() throws {
        let routed = try logprobs(delta(ArrowRouter(experts: experts, topK: 1, temperature: 1)))
        for expert in experts {
            let alone = try logprobs(ExpertBlend(experts: [expert], weights: [1]))
            #expect(zip(routed, alone).contains { abs($0 - $1) > 1e-3 }, "top-1 routing always chose \(expert.name)")
        }
    }

    @Test func prefillEqualsTokenByTokenDecoding() throws {
        let delta = try delta(ArrowRouter(experts: experts, topK: 2, temperature: 0.5))
        let tokens = prompt + continuation
        let vocab = model.config.vocabSize
        let prefill = try model.forward(tokens, state: model.makeState(), delta: delta, logits: .all)

        let state = model.makeState()
        for (position, token) in tokens.enumerated() {
            let step = try model.forward([token], state: state, delta: delta)
            let expected = prefill[(position * vocab)..<((position + 1) * vocab)]
            let difference = zip(step, expected).map { abs($0 - $1) }.max() ?? 0
            #expect(difference < 1e-4, "position \(position): logits differ by \(difference)")
        }
    }

    @Test func concurrentCallsMatchSerialCalls() throws {
        let model = self.model
        let continuation = self.continuation
        let delta = try delta(ArrowRouter(experts: experts, topK: 2, temperature: 1))
        let prompts = (0..<6).map { seed in (0..<12).map { (seed * 37 + $0 * 11) % 320 } }
        let serial = try prompts.map { try continuationLogprobs(model, prompt: $0, continuation: continuation, delta: delta) }

        let results = Mutex<[Int: [Float]]>([:])
        DispatchQueue.concurrentPerform(iterations: prompts.count) { index in
            let logprobs = try? continuationLogprobs(model, prompt: prompts[index], continuation: continuation, delta: delta)
            results.withLock { $0[index] = logprobs }
        }
        let concurrent = results.withLock { $0 }
        for index in prompts.indices {
            #expect(concurrent[index] == serial[index], "prompt \(index)")
        }
    }

    // MARK: Invalid arguments

    @Test func invalidArgumentsThrowTypedErrors() throws {
        #expect(throws: ArrowRouterError.noExperts) {
            try ArrowRouter(experts: [], topK: 1, temperature: 1)
        }
        #expect(throws: ArrowRouterError.invalidTopK(topK: 0, experts: 4)) {
            try ArrowRouter(experts: experts, topK: 0, temperature: 1)
        }
        #expect(throws: ArrowRouterError.invalidTopK(topK: 5, experts: 4)) {
            try ArrowRouter(experts: experts, topK: 5, temperature: 1)
        }
        for temperature in [0, -1, .infinity] {
            #expect(throws: ArrowRouterError.invalidTemperature(temperature)) {
                try ArrowRouter(experts: experts, topK: 2, temperature: temperature)
            }
        }
        #expect(throws: ArrowRouterError.self) {
            try ArrowRouter(experts: experts, topK: 2, temperature: .nan)
        }
    }

    @Test func invalidTopKMessageGivesRange() {
        let message = ArrowRouterError.invalidTopK(topK: 5, experts: 4).description
        #expect(message.contains("top-k 5"))
        #expect(message.contains("from 1 to 4"))
    }

    @Test func expertsWithDifferentProjectionsAreRejected() throws {
        let basic = try LoRAAdapter(directory: TinyFixtures.adapterURL("basic"), modelConfig: model.config)
        let expected = ArrowRouterError.differentProjections(
            expert: "basic", missing: ProjectionID(layer: 0, kind: .kProj), adaptedBy: "task-0")
        #expect(throws: expected) {
            try ArrowRouter(experts: [experts[0], basic], topK: 1, temperature: 1)
        }
        #expect(throws: expected) {
            try ArrowRouter(experts: [basic, experts[0]], topK: 1, temperature: 1)
        }
        #expect(expected.description.contains("model.layers.0.self_attn.k_proj"))
    }

    @Test func expertsForDifferentBaseModelsAreRejected() throws {
        let qwen2 = try ModelConfig.load(directory: TinyFixtures.modelURL("qwen2-bf16"))
        let other = try LoRAAdapter(directory: TinyFixtures.adapterURL("qwen2-all-seven"), modelConfig: qwen2)
        #expect(throws: ArrowRouterError.differentBaseModels(first: "task-0", other: "qwen2-all-seven")) {
            try ArrowRouter(experts: [experts[0], other], topK: 1, temperature: 1)
        }
    }
}
