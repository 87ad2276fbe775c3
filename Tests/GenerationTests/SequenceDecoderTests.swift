import Foundation
import Generation
import Testing
import Tokenizers

/// Uses the real SmolLM2 tokenizer (fetched by scripts/fetch-models.sh) and
/// one-hot logits to force the decoder through chosen tokens.
struct SequenceDecoderTests {
    let tokenizer: Tokenizer

    init() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let models = ProcessInfo.processInfo.environment["LORA_MOE_MODELS"].flatMap { $0.isEmpty ? nil : $0 } ?? root.appendingPathComponent("models").path
        tokenizer = try Tokenizer(directory: URL(fileURLWithPath: models + "/smollm2-135m-instruct"))
    }

    func oneHot(_ token: Int) -> [Float] {
        var logits = [Float](repeating: 0, count: tokenizer.vocabularySize)
        logits[token] = 10
        return logits
    }

    func greedy(maxTokens: Int, stops: [String] = [], eos: Set<Int> = []) -> SequenceDecoder {
        var sampling = SamplingParameters()
        sampling.temperature = 0
        return SequenceDecoder(
            request: GenerationRequest(promptTokens: [1], maxTokens: maxTokens, sampling: sampling, stopStrings: stops, stopTokens: eos),
            tokenizer: tokenizer)
    }

    /// Feeds the tokens of `text` one by one, then optionally `final`.
    func run(_ decoder: inout SequenceDecoder, text: String, final: Int? = nil) -> String {
        var output = ""
        for token in tokenizer.encode(text) + (final.map { [$0] } ?? []) {
            let (emitted, next) = decoder.step(logits: oneHot(token))
            output += emitted
            if next == nil { break }
        }
        return output
    }

    @Test func endOfSequenceFlushesHeldBackText() {
        let eos = tokenizer.id(forToken: "<|im_end|>") ?? 2
        var decoder = greedy(maxTokens: 50, stops: ["###"], eos: [eos])
        // " #" might start "###", so it is held back until the sequence ends.
        let output = run(&decoder, text: "Hello #", final: eos)
        #expect(output == "Hello #")
        #expect(decoder.text == "Hello #")
        #expect(decoder.finishReason == .stop)
        #expect(!decoder.generated.contains(eos))
    }

    @Test func stopStringCutsTheText() {
        var decoder = greedy(maxTokens: 50, stops: ["###"])
        let output = run(&decoder, text: "Hello ### world")
        #expect(output == "Hello ")
        #expect(decoder.finishReason == .stop)
    }

    @Test func maxTokensEndsWithLength() {
        var decoder = greedy(maxTokens: 3)
        let text = "one two three four five"
        let output = run(&decoder, text: text)
        #expect(decoder.generated.count == 3)
        #expect(decoder.finishReason == .length)
        #expect(output == tokenizer.decode(Array(tokenizer.encode(text).prefix(3))))
    }

    @Test func zeroMaxTokensProducesNothing() {
        var decoder = greedy(maxTokens: 0)
        let (text, next) = decoder.step(logits: oneHot(5))
        #expect(text.isEmpty)
        #expect(next == nil)
        #expect(decoder.finishReason == .length)
    }

    @Test func splitMultibyteCharacterIsNotEmittedEarly() {
        var decoder = greedy(maxTokens: 50)
        let tokens = tokenizer.encode("猫")
        var pieces: [String] = []
        for token in tokens {
            pieces.append(decoder.step(logits: oneHot(token)).text)
        }
        pieces.append(decoder.finish(.length))
        #expect(pieces.joined() == "猫")
        #expect(pieces.allSatisfy { !$0.contains("\u{FFFD}") })
    }
}
