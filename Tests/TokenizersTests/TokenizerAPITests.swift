import Dispatch
import Foundation
import Testing
import Tokenizers

@Suite("Tokenizer API")
struct TokenizerAPITests {
    @Test("SmolLM2 vocabulary, special tokens and config")
    func smolLM2Properties() throws {
        let tokenizer = try SharedTokenizers.model("smollm2-135m-instruct")
        #expect(tokenizer.vocabularySize == 49_152)
        #expect(tokenizer.bosToken == "<|im_start|>")
        #expect(tokenizer.eosToken == "<|im_end|>")
        #expect(tokenizer.specialTokenIDs == Set(0...16))
        #expect(tokenizer.id(forToken: "<|im_end|>") == 2)
        #expect(tokenizer.token(forID: 2) == "<|im_end|>")
        #expect(tokenizer.token(forID: 49_152) == nil)
        #expect(tokenizer.token(forID: -1) == nil)
    }

    @Test("Qwen2.5 vocabulary, special tokens and config")
    func qwen25Properties() throws {
        let tokenizer = try SharedTokenizers.model("qwen2.5-coder-0.5b-instruct")
        #expect(tokenizer.vocabularySize == 151_936)
        #expect(tokenizer.bosToken == "<|endoftext|>")
        #expect(tokenizer.eosToken == "<|im_end|>")
        let imEnd = try #require(tokenizer.id(forToken: "<|im_end|>"))
        #expect(imEnd == 151_645)
        #expect(tokenizer.specialTokenIDs.contains(imEnd))
        // <tool_call> is an added token but not a special one.
        let toolCall = try #require(tokenizer.id(forToken: "<tool_call>"))
        #expect(!tokenizer.specialTokenIDs.contains(toolCall))
        #expect(tokenizer.decode([toolCall], skipSpecialTokens: true) == "<tool_call>")
    }

    @Test("token strings round-trip", arguments: ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"])
    func tokenStringsRoundTrip(modelName: String) throws {
        let tokenizer = try SharedTokenizers.model(modelName)
        for id in stride(from: 0, to: tokenizer.vocabularySize, by: 97) {
            let token = try #require(tokenizer.token(forID: id), "id \(id) has no token")
            #expect(tokenizer.id(forToken: token) == id, "token \(visible(token))")
        }
        // Vocabulary strings are in byte-level form: " the" is stored as "Ġthe".
        let ids = tokenizer.encode(" the")
        #expect(ids.count == 1)
        #expect(tokenizer.token(forID: ids[0]) == "\u{0120}the")
    }

    @Test("concurrent encoding gives same ids")
    func concurrentEncoding() throws {
        let fixture = try TokenizerFixture.load("qwen2.5-coder-0.5b-instruct")
        let tokenizer = try fixture.makeTokenizer()
        let cases = fixture.encode
        let results = UnsafeMutableBufferPointer<[Int]>.allocate(capacity: cases.count)
        results.initialize(repeating: [])
        defer { results.deallocate() }
        nonisolated(unsafe) let output = results
        // SAFETY: each iteration writes only its own slot.
        DispatchQueue.concurrentPerform(iterations: cases.count) { index in
            output[index] = tokenizer.encode(cases[index].text)
        }
        for (index, testCase) in cases.enumerated() {
            #expect(results[index] == testCase.ids, "encode(\(visible(testCase.text))) on a worker thread")
        }
    }

    @Test("2,000-token encode is fast")
    func encodeSpeed() throws {
        let fixture = try TokenizerFixture.load("qwen2.5-coder-0.5b-instruct")
        let longest = try #require(fixture.encode.max { $0.ids.count < $1.ids.count })
        // A fresh tokenizer, so that the word cache starts empty.
        let tokenizer = try Tokenizer(directory: TestPaths.modelDirectory("qwen2.5-coder-0.5b-instruct"))
        let clock = ContinuousClock()
        var ids: [Int] = []
        let cold = clock.measure { ids = tokenizer.encode(longest.text) }
        let warm = clock.measure { ids = tokenizer.encode(longest.text) }
        #expect(ids == longest.ids)
        #if DEBUG
        // Unoptimized builds are checked only for gross regressions.
        let limit = Duration.seconds(2)
        #else
        let limit = Duration.milliseconds(100)
        #endif
        #expect(cold < limit, "first encode of \(ids.count) tokens took \(cold)")
        #expect(warm < limit, "second encode of \(ids.count) tokens took \(warm)")
    }
}
