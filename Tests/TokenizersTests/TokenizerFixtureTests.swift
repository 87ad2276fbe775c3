import Foundation
import Testing
import Tokenizers

/// Compares encode and decode with the outputs of the Hugging Face `tokenizers`
/// library recorded by scripts/fixtures/make_tokenizer_fixtures.py.
@Suite("Tokenizer fixtures")
struct TokenizerFixtureTests {
    @Test("encode matches the reference ids", arguments: tokenizerFixtureNames)
    func encodeMatchesReference(fixtureName: String) throws {
        let fixture = try TokenizerFixture.load(fixtureName)
        let tokenizer = try fixture.makeTokenizer()
        #expect(fixture.encode.count >= 150)
        for testCase in fixture.encode {
            let ids = tokenizer.encode(testCase.text)
            #expect(ids == testCase.ids, "\(fixtureName): encode(\(visible(testCase.text)))")
        }
    }

    @Test("encode applies post-processor template", arguments: tokenizerFixtureNames)
    func encodeWithSpecialTokens(fixtureName: String) throws {
        let fixture = try TokenizerFixture.load(fixtureName)
        let tokenizer = try fixture.makeTokenizer()
        for testCase in fixture.encode {
            let ids = tokenizer.encode(testCase.text, addSpecialTokens: true)
            #expect(ids == testCase.idsWithSpecialTokens, "\(fixtureName): encode(\(visible(testCase.text)), addSpecialTokens: true)")
            let plain = tokenizer.encode(testCase.text, addSpecialTokens: false)
            #expect(plain == testCase.ids, "\(fixtureName): encode(\(visible(testCase.text)), addSpecialTokens: false)")
        }
    }

    @Test("decode matches the reference text", arguments: tokenizerFixtureNames)
    func decodeMatchesReference(fixtureName: String) throws {
        let fixture = try TokenizerFixture.load(fixtureName)
        let tokenizer = try fixture.makeTokenizer()
        for testCase in fixture.encode {
            #expect(tokenizer.decode(testCase.ids) == testCase.decoded, "\(fixtureName): decode of \(visible(testCase.text))")
            #expect(
                tokenizer.decode(testCase.ids, skipSpecialTokens: true) == testCase.decodedSkipSpecial,
                "\(fixtureName): decode skipping special tokens of \(visible(testCase.text))")
        }
    }

    @Test("decode of invalid UTF-8 matches", arguments: tokenizerFixtureNames)
    func decodeInvalidUTF8MatchesReference(fixtureName: String) throws {
        let fixture = try TokenizerFixture.load(fixtureName)
        let tokenizer = try fixture.makeTokenizer()
        #expect(fixture.decode.contains { $0.decoded.contains("\u{FFFD}") }, "the fixture should exercise invalid UTF-8")
        for testCase in fixture.decode {
            #expect(tokenizer.decode(testCase.ids) == testCase.decoded, "\(fixtureName): decode(\(testCase.ids))")
            #expect(
                tokenizer.decode(testCase.ids, skipSpecialTokens: true) == testCase.decodedSkipSpecial,
                "\(fixtureName): decode(\(testCase.ids), skipSpecialTokens: true)")
        }
    }

    @Test("vocabulary size matches the reference", arguments: tokenizerFixtureNames)
    func vocabularySizeMatchesReference(fixtureName: String) throws {
        let fixture = try TokenizerFixture.load(fixtureName)
        let tokenizer = try fixture.makeTokenizer()
        #expect(tokenizer.vocabularySize == fixture.vocabularySize)
    }

    @Test("2,000-token text encodes exactly", arguments: ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"])
    func longTextMatches(fixtureName: String) throws {
        let fixture = try TokenizerFixture.load(fixtureName)
        let tokenizer = try fixture.makeTokenizer()
        let longest = try #require(fixture.encode.max { $0.ids.count < $1.ids.count })
        #expect(longest.ids.count >= 2_000)
        #expect(tokenizer.encode(longest.text) == longest.ids)
    }
}
