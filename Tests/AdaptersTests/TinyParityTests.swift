import Adapters
import Foundation
import Models
import Tensor
import Testing
import TestSupport

/// Log-probabilities and greedy tokens of tiny random models with PEFT
/// adapters and blends, against transformers + peft float32 goldens.
struct TinyParityTests {
    @Test func goldensArePresent() {
        #expect(TinyFixtures.goldens.cases.count >= 20, "run scripts/fixtures/make_tiny_fixtures.py")
        #expect(TinyFixtures.goldens.rejected.count >= 10)
    }

    @Test(arguments: TinyFixtures.goldens.cases.map(\.name))
    func logprobsAndGreedyMatchReference(caseName: String) throws {
        let golden = try #require(TinyFixtures.goldens.cases.first { $0.name == caseName })
        let model = try TinyFixtures.model(golden.model)
        let blend = try TinyFixtures.blend(golden.experts, golden.weights, model: model)

        let logprobs = try continuationLogprobs(model, prompt: golden.promptIDs, continuation: golden.continuationIDs, delta: blend)
        #expect(logprobs.count == golden.logprobs.count)
        for (index, (actual, expected)) in zip(logprobs, golden.logprobs).enumerated() {
            #expect(abs(Double(actual) - expected) < 1e-3, "token \(index): \(actual) vs \(expected)")
        }

        let greedy = try greedyTokens(model, prompt: golden.promptIDs, count: golden.greedyIDs.count, delta: blend)
        #expect(greedy == golden.greedyIDs)
    }

    @Test(arguments: TinyFixtures.goldens.rejected.map(\.name))
    func rejectedAdapterNamesTheProblem(caseName: String) throws {
        let rejection = try #require(TinyFixtures.goldens.rejected.first { $0.name == caseName })
        let model = try TinyFixtures.model(rejection.model)
        do {
            _ = try LoRAAdapter(directory: TinyFixtures.adapterURL(rejection.adapter), modelConfig: model.config)
            Issue.record("\(rejection.adapter) loaded without error")
        } catch {
            let message = String(describing: error)
            for word in rejection.mentions {
                #expect(message.contains(word), "message lacks '\(word)': \(message)")
            }
        }
    }
}

/// Properties that must hold whatever the reference says.
struct BlendMetamorphicTests {
    let model: LanguageModel
    let prompt = [5, 17, 42, 99, 3, 250, 7, 8]
    let continuation = [11, 12, 300, 4, 1]

    init() throws {
        model = try TinyFixtures.model("qwen3-f32")
    }

    func logprobs(_ experts: [String], _ weights: [Double]) throws -> [Float] {
        try continuationLogprobs(model, prompt: prompt, continuation: continuation, delta: TinyFixtures.blend(experts, weights, model: model))
    }

    @Test func zeroWeightEqualsBase() throws {
        let base = try logprobs([], [])
        #expect(try logprobs(["all-seven"], [0]) == base)
        #expect(try logprobs(["all-seven", "basic"], [0.0009, -0.0009]) == base)
        #expect(try logprobs(["all-seven"], [0.01]) != base)
    }

    @Test func oneHotBlendEqualsExpertAlone() throws {
        let alone = try logprobs(["rslora"], [1])
        #expect(try logprobs(["basic", "rslora", "patterns"], [0, 1, 0]) == alone)
    }

    @Test func blendIsLinearInTheDelta() throws {
        // For one layer's output the delta is linear in w; the log-probs are
        // not, but w = 1 twice must equal w = 2 once.
        let double = try logprobs(["basic"], [2])
        let twice = try logprobs(["basic", "basic"], [1, 1])
        for (a, b) in zip(double, twice) {
            #expect(abs(a - b) < 1e-5)
        }
    }

    @Test func blendEqualsCatCombinedAdapter() throws {
        // cat-blend is PEFT's add_weighted_adapter(["basic", "all-seven"], [0.9, -0.5], combination_type="cat").
        let golden = try #require(TinyFixtures.goldens.cases.first { $0.name == "qwen3-f32/basic+all-seven@cat-weights" })
        let blended = try logprobs(golden.experts, golden.weights)
        let combined = try logprobs(["cat-blend"], [1])
        for (a, b) in zip(blended, combined) {
            #expect(abs(a - b) < 1e-4)
        }
    }

    @Test func prefillEqualsTokenByTokenDecoding() throws {
        let blend = try TinyFixtures.blend(["all-seven", "patterns"], [0.6, -0.4], model: model)
        let tokens = prompt + continuation
        let vocab = model.config.vocabSize
        let prefill = try model.forward(tokens, state: model.makeState(), delta: blend, logits: .all)

        let state = model.makeState()
        for (index, token) in tokens.enumerated() {
            let step = try model.forward([token], state: state, delta: blend)
            let expected = prefill[(index * vocab)..<((index + 1) * vocab)]
            let difference = zip(step, expected).map { abs($0 - $1) }.max() ?? 0
            #expect(difference < 1e-4, "position \(index)")
        }
    }

    @Test func chunkedPrefillEqualsOnePass() throws {
        let tokens = (0..<200).map { ($0 * 37 + 11) % 320 }
        let blend = try TinyFixtures.blend(["all-seven"], [0.8], model: model)
        let whole = try model.forward(tokens, state: model.makeState(), delta: blend, logits: .all)
        let chunked = try model.forward(tokens, state: model.makeState(), delta: blend, logits: .all, chunkRows: 33)
        #expect(whole.count == chunked.count)
        #expect(zip(whole, chunked).map { abs($0 - $1) }.max() ?? 1 < 1e-4)
    }
}

/// A batched forward pass must give each sequence exactly what it would get alone.
struct BatchForwardTests {
    @Test func batchEqualsSeparateForwards() throws {
        let model = try TinyFixtures.model("qwen3-f32")
        let blends: [ExpertBlend?] = [
            nil,
            try TinyFixtures.blend(["basic"], [1], model: model),
            try TinyFixtures.blend(["all-seven", "patterns"], [0.7, -0.4], model: model),
        ]
        let prompts = [[5, 6, 7], [9, 10, 11, 12, 13], [20]]
        let nextTokens = [[30], [31, 32, 33], [34]]  // a decode step, a prompt chunk, a decode step

        // Alone: prefill, then the next tokens, one sequence at a time.
        var expected: [[Float]] = []
        for index in 0..<3 {
            let state = model.makeState()
            _ = try model.forward(prompts[index], state: state, delta: blends[index], logits: .none)
            expected.append(try model.forward(nextTokens[index], state: state, delta: blends[index], logits: .last))
        }

        // Together: the same prefills, then one batched pass.
        let states = (0..<3).map { _ in model.makeState() }
        for index in 0..<3 {
            _ = try model.forward(prompts[index], state: states[index], delta: blends[index], logits: .none)
        }
        let entries = (0..<3).map { BatchEntry(tokens: nextTokens[$0], state: states[$0], delta: blends[$0]) }
        let batched = try model.forward(batch: entries, buffers: model.makeBatchBuffers())
        let vocab = model.config.vocabSize
        #expect(batched.count == 3 * vocab)
        for index in 0..<3 {
            let row = Array(batched[(index * vocab)..<((index + 1) * vocab)])
            let difference = zip(row, expected[index]).map { abs($0 - $1) }.max() ?? 1
            #expect(difference < 1e-4, "entry \(index)")
            #expect(states[index].count == prompts[index].count + nextTokens[index].count)
        }
    }

    @Test func batchRejectsBadEntries() throws {
        let model = try TinyFixtures.model("qwen3-f32")
        let buffers = model.makeBatchBuffers()
        #expect(throws: ModelError.self) {
            try model.forward(batch: [BatchEntry(tokens: [], state: model.makeState(), delta: nil)], buffers: buffers)
        }
        #expect(throws: ModelError.tokenOutOfRange(token: 999, vocabularySize: 320)) {
            try model.forward(batch: [BatchEntry(tokens: [999], state: model.makeState(), delta: nil)], buffers: buffers)
        }
        let full = model.makeState(contextLength: 2)
        #expect(throws: ModelError.contextOverflow(requested: 3, maximum: 2)) {
            try model.forward(batch: [BatchEntry(tokens: [1, 2, 3], state: full, delta: nil)], buffers: buffers)
        }
    }
}

/// adapter_config.json fields that PEFT resolves or rejects in its own way.
struct AdapterConfigEdgeTests {
    /// A copy of a tiny fixture adapter with its config edited.
    func editedAdapter(_ name: String, _ edit: (inout [String: Any]) -> Void) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lora-moe-adapter-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: TinyFixtures.adapterURL(name), to: url)
        let configURL = url.appendingPathComponent("adapter_config.json")
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any] ?? [:]
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: configURL)
        return url
    }

    @Test func missingTargetModulesMeansPEFTDefault() throws {
        // "basic" targets q_proj and v_proj, which is PEFT's default for qwen3.
        let model = try TinyFixtures.model("qwen3-f32")
        let url = try editedAdapter("basic") { $0.removeValue(forKey: "target_modules") }
        defer { try? FileManager.default.removeItem(at: url) }
        let edited = try LoRAAdapter(directory: url, modelConfig: model.config)
        let original = try LoRAAdapter(directory: TinyFixtures.adapterURL("basic"), modelConfig: model.config)
        #expect(Set(edited.modules.keys) == Set(original.modules.keys))
    }

    @Test func unknownInitializationIsRejected() throws {
        let model = try TinyFixtures.model("qwen3-f32")
        let url = try editedAdapter("basic") { $0["init_lora_weights"] = "zzz" }
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: AdapterError.self) { try LoRAAdapter(directory: url, modelConfig: model.config) }
    }

    @Test func missingPeftTypeIsRejected() throws {
        let model = try TinyFixtures.model("qwen3-f32")
        let url = try editedAdapter("basic") { $0.removeValue(forKey: "peft_type") }
        defer { try? FileManager.default.removeItem(at: url) }
        do {
            _ = try LoRAAdapter(directory: url, modelConfig: model.config)
            Issue.record("loaded without peft_type")
        } catch {
            #expect(String(describing: error).contains("'peft_type' is missing"))
        }
    }

    @Test func adapterPathMustBeADirectory() throws {
        let model = try TinyFixtures.model("qwen3-f32")
        let missing = URL(fileURLWithPath: "/nonexistent/adapter")
        #expect(throws: AdapterError.notADirectory(path: missing.path, exists: false)) {
            try LoRAAdapter(directory: missing, modelConfig: model.config)
        }
        let file = TinyFixtures.adapterURL("basic").appendingPathComponent("adapter_config.json")
        #expect(throws: AdapterError.notADirectory(path: file.path, exists: true)) {
            try LoRAAdapter(directory: file, modelConfig: model.config)
        }
    }

    @Test func truncatedConfigNamesThePosition() throws {
        let model = try TinyFixtures.model("qwen3-f32")
        let url = try editedAdapter("basic") { _ in }
        defer { try? FileManager.default.removeItem(at: url) }
        let configURL = url.appendingPathComponent("adapter_config.json")
        try Data("{\"r\": 8,\n".utf8).write(to: configURL)
        do {
            _ = try LoRAAdapter(directory: url, modelConfig: model.config)
            Issue.record("loaded a truncated adapter_config.json")
        } catch {
            let message = String(describing: error)
            #expect(message.hasPrefix("\(configURL.path): invalid JSON ("), "\(message)")
            #expect(message.contains("line 2"), "\(message)")
            #expect(!message.contains("(file)"), "\(message)")
        }
    }

    @Test func weightOnlyInitializationsAreAccepted() throws {
        let model = try TinyFixtures.model("qwen3-f32")
        for method in ["gaussian", "orthogonal", "eva"] {
            let url = try editedAdapter("basic") { $0["init_lora_weights"] = method }
            defer { try? FileManager.default.removeItem(at: url) }
            #expect(throws: Never.self, "\(method)") { try LoRAAdapter(directory: url, modelConfig: model.config) }
        }
    }
}

/// A blend merged into the weights must give what the unmerged blend gives.
struct MergedBlendTests {
    @Test(arguments: ["qwen3-f32", "qwen2-bf16", "llama-f16"])
    func mergedEqualsUnmerged(modelName: String) throws {
        let model = try TinyFixtures.model(modelName)
        let names = TinyFixtures.goldens.cases.filter { $0.model == modelName && !$0.experts.isEmpty }
            .flatMap(\.experts)
        let unique = Array(Set(names)).sorted().prefix(3)
        let experts = try unique.map { try LoRAAdapter(directory: TinyFixtures.adapterURL($0), modelConfig: model.config) }
        let weights = [0.8, -0.5, 1.3].prefix(experts.count).map { $0 }
        let prompt = [5, 17, 42, 99, 3, 250, 7, 8]
        let continuation = [11, 12, 300, 4, 1]

        let fused = try ExpertBlend(experts: experts, weights: weights)
        let merged = try MergedBlend(model: model, experts: experts, weights: weights)
        #expect(merged.mergedByteCount == MergedBlend.estimatedByteCount(model: model, experts: experts, weights: weights))
        let expected = try continuationLogprobs(model, prompt: prompt, continuation: continuation, delta: fused)
        let actual = try continuationLogprobs(model, prompt: prompt, continuation: continuation, delta: merged)
        for (a, b) in zip(actual, expected) {
            #expect(abs(a - b) < 1e-4, "\(modelName)")
        }
        #expect(try greedyTokens(model, prompt: prompt, count: 8, delta: merged) == greedyTokens(model, prompt: prompt, count: 8, delta: fused))
    }

    @Test func zeroWeightsMergeNothing() throws {
        let model = try TinyFixtures.model("qwen3-f32")
        let expert = try LoRAAdapter(directory: TinyFixtures.adapterURL("all-seven"), modelConfig: model.config)
        let merged = try MergedBlend(model: model, experts: [expert], weights: [0])
        #expect(merged.mergedByteCount == 0)
        let prompt = [1, 2, 3, 4]
        #expect(try continuationLogprobs(model, prompt: prompt, continuation: [5, 6], delta: merged)
                == continuationLogprobs(model, prompt: prompt, continuation: [5, 6], delta: nil))
    }

    /// Rounding merged weights to Q4_0 would erase most of a LoRA change, so
    /// a Q4_0 base gets Q8_0 copies that stay next to the unmerged blend.
    @Test func quantizedBaseMergesIntoQ8() throws {
        let model = try LanguageModel(directory: TinyFixtures.modelURL("qwen3-f32"), options: ModelLoadOptions(quantization: .q4_0))
        let expert = try LoRAAdapter(directory: TinyFixtures.adapterURL("all-seven"), modelConfig: model.config, stackType: .f16)
        let merged = try MergedBlend(model: model, experts: [expert], weights: [1])
        let fused = try ExpertBlend(experts: [expert], weights: [1])
        let adapted = model.projections.filter { expert.modules[$0.id] != nil }
        #expect(!adapted.isEmpty)
        for projection in adapted {
            #expect(projection.weight.dtype == .q4_0)
            #expect(merged.mergedWeight(for: projection.id)?.dtype == .q8_0)
        }
        let prompt = [5, 17, 42, 99, 3, 250, 7, 8]
        let continuation = [11, 12, 300, 4, 1]
        let unmerged = try continuationLogprobs(model, prompt: prompt, continuation: continuation, delta: fused)
        let folded = try continuationLogprobs(model, prompt: prompt, continuation: continuation, delta: merged)
        let base = try continuationLogprobs(model, prompt: prompt, continuation: continuation, delta: nil)
        let mergeError = zip(folded, unmerged).map { abs($0 - $1) }.reduce(0, +)
        let expertEffect = zip(base, unmerged).map { abs($0 - $1) }.reduce(0, +)
        #expect(mergeError < 0.2 * expertEffect, "merging moved log-probs by \(mergeError), the expert by \(expertEffect)")
    }

    @Test func mergedBlendRunsInABatchWithOthers() throws {
        let model = try TinyFixtures.model("qwen3-f32")
        let expert = try LoRAAdapter(directory: TinyFixtures.adapterURL("basic"), modelConfig: model.config)
        let merged = try MergedBlend(model: model, experts: [expert], weights: [1])
        let fused = try ExpertBlend(experts: [expert], weights: [1])
        let states = (0..<2).map { _ in model.makeState() }
        let batched = try model.forward(batch: [BatchEntry(tokens: [3, 4], state: states[0], delta: merged),
                                                BatchEntry(tokens: [3, 4], state: states[1], delta: nil)],
                                        buffers: model.makeBatchBuffers())
        let vocab = model.config.vocabSize
        let alone = try model.forward([3, 4], state: model.makeState(), delta: fused)
        let base = try model.forward([3, 4], state: model.makeState(), delta: nil)
        #expect(zip(batched[0..<vocab], alone).map { abs($0 - $1) }.max() ?? 1 < 1e-4)
        #expect(zip(batched[vocab...], base).map { abs($0 - $1) }.max() ?? 1 < 1e-5)
    }
}

/// Experts loaded with a reduced `stackType` (`.q8_0`, which a quantized
/// model uses, or `.f16`) keep their stacks in that type. The stacks take
/// fewer bytes, and log-probs stay close to the exact float32 blend.
struct ReducedStackTests {
    static let prompt = [5, 17, 42, 99, 3, 250, 7, 8]
    static let continuation = [11, 12, 300, 4, 1]

    /// Largest log-prob change a stack type may cause on the tiny models,
    /// and its most bytes relative to float32 stacks.
    static let limits: [DType: (tolerance: Float, byteFraction: Double)] = [.f16: (2e-3, 0.5), .q8_0: (2e-2, 0.5)]

    @Test(arguments: ["qwen3-f32", "qwen2-bf16", "llama-f16"], [DType.f16, .q8_0])
    func reducedStacksStayNearFloatStacks(modelName: String, type: DType) throws {
        let model = try TinyFixtures.model(modelName)
        let names = Array(Set(TinyFixtures.goldens.cases.filter { $0.model == modelName }.flatMap(\.experts))).sorted().prefix(2)
        let load = { (type: DType) in
            try names.map { try LoRAAdapter(directory: TinyFixtures.adapterURL($0), modelConfig: model.config, stackType: type) }
        }
        let weights = [0.7, -0.4].prefix(names.count).map { $0 }
        let exact = try ExpertBlend(experts: load(.f32), weights: weights)
        let reduced = try ExpertBlend(experts: load(type), weights: weights)
        let limit = try #require(Self.limits[type])

        #expect(exact.stackType == .f32)
        #expect(reduced.stackType == type)
        #expect(reduced.stackByteCount > 0)
        #expect(Double(reduced.stackByteCount) <= limit.byteFraction * Double(exact.stackByteCount))
        let expected = try continuationLogprobs(model, prompt: Self.prompt, continuation: Self.continuation, delta: exact)
        let actual = try continuationLogprobs(model, prompt: Self.prompt, continuation: Self.continuation, delta: reduced)
        let base = try continuationLogprobs(model, prompt: Self.prompt, continuation: Self.continuation, delta: nil)
        let stackError = zip(actual, expected).map { abs($0 - $1) }.max() ?? 1
        let expertEffect = zip(base, expected).map { abs($0 - $1) }.max() ?? 0
        print("\(modelName) \(type.rawValue) stacks: max |Δ logprob| \(stackError), expert effect \(expertEffect)")
        #expect(stackError < limit.tolerance, "\(modelName): \(type.rawValue) stacks moved a log-prob by \(stackError)")
        // The experts must matter here, or the comparison above proves nothing.
        #expect(expertEffect > 20 * stackError, "\(modelName): experts move log-probs by only \(expertEffect)")
    }

    /// Q8_0 takes 34 bytes per 32 values where no padding is needed; a
    /// narrow matrix, padded to 32 columns, stays f16.
    @Test func q8StacksFallBackToHalfWhenPaddingCostsMore() {
        let values = (0..<(64 * 96)).map { Float($0 % 17) / 17 - 0.5 }
        let wide = ExpertBlend.stackMatrix(values, rows: 64, columns: 96, type: .q8_0)
        #expect(wide.dtype == .q8_0)
        #expect(wide.byteCount < 64 * 96 * 2 * 6 / 10)
        let narrow = ExpertBlend.stackMatrix(values, rows: 768, columns: 8, type: .q8_0)
        #expect(narrow.dtype == .f16)
        let roundTrip = wide.toFloatArray()
        let worst = zip(roundTrip, values).map { abs($0 - $1) }.max() ?? 1
        #expect(worst <= 0.5 / 127 * 0.51 + 1e-6, "Q8_0 rounding moved a value by \(worst)")
    }

    @Test func oneFloatExpertKeepsTheBlendInFloat() throws {
        let model = try TinyFixtures.model("qwen3-f32")
        let half = try LoRAAdapter(directory: TinyFixtures.adapterURL("basic"), modelConfig: model.config, stackType: .f16)
        let float = try LoRAAdapter(directory: TinyFixtures.adapterURL("all-seven"), modelConfig: model.config)
        let mixed = try ExpertBlend(experts: [half, float], weights: [0.5, 0.5])
        #expect(mixed.stackType == .f32)
        // A skipped f32 expert does not count.
        let skipped = try ExpertBlend(experts: [half, float], weights: [1, 0])
        #expect(skipped.stackType == .f16)
        #expect(try ExpertBlend(experts: [half], weights: [1]).stackByteCount == skipped.stackByteCount)
        // Two different reduced types fall back to f32 too, and a requested type wins.
        let eight = try LoRAAdapter(directory: TinyFixtures.adapterURL("all-seven"), modelConfig: model.config, stackType: .q8_0)
        #expect(try ExpertBlend(experts: [half, eight], weights: [0.5, 0.5]).stackType == .f32)
        #expect(try ExpertBlend(experts: [eight], weights: [1]).stackType == .q8_0)
        #expect(try ExpertBlend(experts: [eight], weights: [1], stackType: .f32).stackType == .f32)
    }
}
