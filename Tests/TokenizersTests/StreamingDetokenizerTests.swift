import Foundation
import Testing
import Tokenizers

@Suite("Streaming detokenizer")
struct StreamingDetokenizerTests {
    /// Feeds `ids` one at a time and returns every chunk, the final `finish()` output last.
    private func stream(_ ids: [Int], tokenizer: Tokenizer, skipSpecialTokens: Bool) -> [String] {
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: skipSpecialTokens)
        var chunks = ids.map { detokenizer.append($0) }
        chunks.append(detokenizer.finish())
        return chunks
    }

    @Test("valid text streams without U+FFFD",
          arguments: ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"], [false, true])
    func validTextStreamsExactly(fixtureName: String, skipSpecialTokens: Bool) throws {
        let fixture = try TokenizerFixture.load(fixtureName)
        let tokenizer = try fixture.makeTokenizer()
        for testCase in fixture.encode {
            let expected = skipSpecialTokens ? testCase.decodedSkipSpecial : testCase.decoded
            let chunks = stream(testCase.ids, tokenizer: tokenizer, skipSpecialTokens: skipSpecialTokens)
            #expect(chunks.joined() == expected, "stream of \(visible(testCase.text))")
            // The reference text is valid Unicode, so a replacement character in a
            // chunk would mean the stream split a character.
            if !expected.contains("\u{FFFD}") {
                #expect(!chunks.contains { $0.contains("\u{FFFD}") }, "broken UTF-8 in the stream of \(visible(testCase.text))")
            }
        }
    }

    @Test("invalid bytes stream like decode",
          arguments: ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"], [false, true])
    func invalidBytesStreamLikeDecode(fixtureName: String, skipSpecialTokens: Bool) throws {
        let fixture = try TokenizerFixture.load(fixtureName)
        let tokenizer = try fixture.makeTokenizer()
        for testCase in fixture.decode {
            let expected = skipSpecialTokens ? testCase.decodedSkipSpecial : testCase.decoded
            let chunks = stream(testCase.ids, tokenizer: tokenizer, skipSpecialTokens: skipSpecialTokens)
            #expect(chunks.joined() == expected, "stream of \(testCase.ids)")
        }
    }

    @Test("multi-token emoji held until complete")
    func emojiIsHeldBack() throws {
        let tokenizer = try SharedTokenizers.model("smollm2-135m-instruct")
        let emoji = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}"
        let ids = tokenizer.encode(emoji)
        #expect(ids.count > 1, "the family emoji should span several byte-level tokens")
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var emitted = ""
        for id in ids {
            let chunk = detokenizer.append(id)
            // Every chunk is a whole number of the emoji's scalars.
            #expect(emoji.unicodeScalars.starts(with: (emitted + chunk).unicodeScalars))
            emitted += chunk
        }
        emitted += detokenizer.finish()
        #expect(emitted == emoji)
    }

    @Test("truncated character replaced at finish")
    func truncatedCharacterAtFinish() throws {
        let tokenizer = try SharedTokenizers.model("qwen2.5-coder-0.5b-instruct")
        // U+1FAE8 SHAKING FACE is three byte-level tokens in the Qwen vocabulary.
        let ids = tokenizer.encode("\u{1FAE8}")
        #expect(ids.count > 1)
        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        let streamed = ids.dropLast().map { detokenizer.append($0) }.joined()
        #expect(streamed.isEmpty)
        let rest = detokenizer.finish()
        #expect(rest == tokenizer.decode(Array(ids.dropLast())))
        #expect(rest.contains("\u{FFFD}"))
    }
}
