import Foundation
import LoRAMoE
import Testing

/// The real SmolLM2-135M and Qwen2.5-Coder-0.5B with random PEFT adapters:
/// tokenization, log-probabilities and greedy tokens against transformers +
/// peft in float32.
struct RealModelParityTests {
    @Test func goldensCoverBothModels() {
        for model in RealModels.names {
            #expect(RealModels.cases.filter { $0.model == model }.count >= 10, "\(model): run scripts/fixtures/make_real_goldens.py")
        }
    }

    @Test(arguments: RealModels.cases.map(\.id))
    func logprobsMatchReference(caseID: String) throws {
        let golden = try #require(RealModels.cases.first { $0.id == caseID })
        let engine = try RealModels.engine(golden.model)

        // Tokenization equals the HF tokenizer's (special tokens in the chat text included).
        let promptIDs = engine.tokenizer.encode(golden.prompt, addSpecialTokens: false)
        let continuationIDs = engine.tokenizer.encode(golden.continuation, addSpecialTokens: false)
        #expect(promptIDs == golden.promptIDs)
        #expect(continuationIDs == golden.continuationIDs)

        let blend = try RealModels.blend(golden, engine: engine)
        let result = try engine.model.score(prompt: golden.promptIDs, continuation: golden.continuationIDs, delta: blend)
        #expect(result.logprobs.count == golden.logprobs.count)
        for (index, (actual, expected)) in zip(result.logprobs, golden.logprobs).enumerated() {
            #expect(abs(Double(actual) - expected) < 2e-3, "token \(index): \(actual) vs \(expected)")
        }
    }

    @Test(arguments: RealModels.cases.filter { $0.greedyIDs != nil }.map(\.id))
    func greedyTokensMatchReference(caseID: String) throws {
        let golden = try #require(RealModels.cases.first { $0.id == caseID })
        let expected = try #require(golden.greedyIDs)
        let engine = try RealModels.engine(golden.model)
        let blend = try RealModels.blend(golden, engine: engine)

        var sampling = SamplingParameters()
        sampling.temperature = 0
        let request = GenerationRequest(promptTokens: golden.promptIDs, maxTokens: expected.count, sampling: sampling)
        let generator = Generator(model: engine.model, tokenizer: engine.tokenizer)
        let result = try generator.generate(request, state: engine.model.makeState(), delta: blend)
        #expect(result.tokens == expected)
    }
}
