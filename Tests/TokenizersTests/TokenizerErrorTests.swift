import Foundation
import Testing
import Tokenizers

/// Parts of a tiny byte-level BPE tokenizer.json; each test replaces one part with bad input.
private struct TinyTokenizerJSON {
    var addedTokens = #"[{"id": 3, "content": "<|end|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}]"#
    var normalizer = "null"
    var preTokenizer = #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#
    var postProcessor = "null"
    var decoder = #"{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}"#
    var modelType = #""BPE""#
    var byteFallback = "false"
    var vocabulary = #"{"a": 0, "b": 1, "ab": 2, "<|end|>": 3}"#
    var merges = #"[["a", "b"]]"#
    var truncation = "null"
    var includeModel = true

    var text: String {
        let model = """
            "model": {"type": \(modelType), "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
              "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": \(byteFallback), "ignore_merges": false,
              "vocab": \(vocabulary), "merges": \(merges)}
            """
        return """
            {"version": "1.0", "truncation": \(truncation), "padding": null, "added_tokens": \(addedTokens),
             "normalizer": \(normalizer), "pre_tokenizer": \(preTokenizer), "post_processor": \(postProcessor),
             "decoder": \(decoder)\(includeModel ? ",\n" + model : "")}
            """
    }

    func load() throws -> Tokenizer {
        try Tokenizer(tokenizerJSON: Data(text.utf8), tokenizerConfigJSON: nil, source: "tiny/tokenizer.json")
    }
}

/// Checks that `body` throws a `TokenizerError` that names tiny/tokenizer.json and `key`.
private func expectError(
    key: String, _ body: () throws -> Tokenizer,
    matches: (TokenizerError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation
) {
    do {
        _ = try body()
        Issue.record("expected an error for key \(key)", sourceLocation: sourceLocation)
    } catch let error as TokenizerError {
        #expect(matches(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
        let message = String(describing: error)
        #expect(message.contains("tiny/tokenizer.json"), "message without the file: \(message)", sourceLocation: sourceLocation)
        #expect(message.contains(key), "message without the key \(key): \(message)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a TokenizerError, got \(error)", sourceLocation: sourceLocation)
    }
}

/// Decoder JSON and the key the error names.
private let unsupportedDecoders = [
    (#"{"type": "WordPiece", "prefix": "@@"}"#, "decoder.type"),
    ("null", "decoder"),
]

/// Split patterns outside the supported subset, and a phrase of the expected error.
private let unsupportedPatterns = [
    (#"(?<=a)b"#, "groups are supported"),
    (#"a*"#, "empty string"),
    (#"\bword"#, "escape '\\b'"),
    (#"(a)\1"#, "escape '\\1'"),
    (#"a++"#, "possessive"),
    (#"^a"#, "anchors"),
    (#"\p{Han}"#, "property"),
    (#"(?i:\u00df)"#, "folds to several characters"),
    (#"(?i:'ss)"#, "matches a single character"),
]

@Suite("Tokenizer errors")
struct TokenizerErrorTests {
    @Test("tiny tokenizer loads and encodes")
    func tinyTokenizerLoads() throws {
        let tokenizer = try TinyTokenizerJSON().load()
        #expect(tokenizer.encode("ab") == [2])
        #expect(tokenizer.encode("ba<|end|>ab") == [1, 0, 3, 2])
        #expect(tokenizer.decode([2, 3]) == "ab<|end|>")
        #expect(tokenizer.decode([2, 3], skipSpecialTokens: true) == "ab")
        #expect(tokenizer.vocabularySize == 4)
        #expect(tokenizer.specialTokenIDs == [3])
    }

    @Test("invalid JSON")
    func invalidJSON() {
        var json = TinyTokenizerJSON()
        json.vocabulary = #"{"a": 0,"#
        expectError(key: "line 6, column 20", json.load) { error in
            if case let .invalidJSON(file, reason) = error { return file == "tiny/tokenizer.json" && reason.contains("expected a string key") }
            return false
        }
    }

    @Test("missing model")
    func missingModel() {
        var json = TinyTokenizerJSON()
        json.includeModel = false
        expectError(key: "model", json.load) { error in
            error == .missingKey(file: "tiny/tokenizer.json", key: "model")
        }
    }

    @Test("unknown model type")
    func unknownModelType() {
        var json = TinyTokenizerJSON()
        json.modelType = #""WordPiece""#
        expectError(key: "model.type", json.load) { error in
            if case let .unsupported(file, key, expected, actual) = error {
                return file == "tiny/tokenizer.json" && key == "model.type" && expected == "BPE" && actual == "\"WordPiece\""
            }
            return false
        }
    }

    @Test("unknown pre-tokenizer type")
    func unknownPreTokenizerType() {
        var json = TinyTokenizerJSON()
        json.preTokenizer = #"{"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}, {"type": "ByteLevel"}]}"#
        expectError(key: "pre_tokenizer.pretokenizers[0].type", json.load) { error in
            if case let .unsupported(_, key, expected, actual) = error {
                return key == "pre_tokenizer.pretokenizers[0].type" && expected.contains("Split") && actual == "\"Whitespace\""
            }
            return false
        }
    }

    @Test("pre-tokenizer without ByteLevel")
    func preTokenizerWithoutByteLevel() {
        var json = TinyTokenizerJSON()
        json.preTokenizer = #"{"type": "Digits", "individual_digits": true}"#
        expectError(key: "pre_tokenizer", json.load) { error in
            if case let .unsupported(_, key, expected, _) = error { return key == "pre_tokenizer" && expected.contains("ByteLevel") }
            return false
        }
    }

    @Test("unsupported regex features", arguments: unsupportedPatterns)
    func unsupportedRegex(pattern: String, reason: String) {
        var json = TinyTokenizerJSON()
        let escaped = pattern.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        json.preTokenizer = """
            {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\(escaped)"},
             "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "use_regex": false}]}
            """
        expectError(key: "pre_tokenizer.pretokenizers[0].pattern.Regex", json.load) { error in
            if case let .unsupported(_, key, expected, actual) = error {
                return key == "pre_tokenizer.pretokenizers[0].pattern.Regex"
                    && expected.contains(reason) && actual == "\"\(pattern)\""
            }
            return false
        }
    }

    @Test("merge part missing from vocabulary")
    func mergeWithUnknownToken() {
        var json = TinyTokenizerJSON()
        json.merges = #"[["a", "b"], ["a", "zz"]]"#
        expectError(key: "model.merges[1]", json.load) { error in
            if case let .invalidValue(_, key, _, actual) = error { return key == "model.merges[1]" && actual.contains("\"zz\"") }
            return false
        }
    }

    @Test("merge result missing from vocabulary")
    func mergeWithUnknownResult() {
        var json = TinyTokenizerJSON()
        json.merges = #"["a b", "b a"]"#
        expectError(key: "model.merges[1]", json.load) { error in
            if case let .invalidValue(_, key, _, actual) = error { return key == "model.merges[1]" && actual.contains("\"ba\"") }
            return false
        }
    }

    @Test("merge string without a space")
    func malformedMergeString() {
        var json = TinyTokenizerJSON()
        json.merges = #"["ab"]"#
        expectError(key: "model.merges[0]", json.load) { error in
            if case let .invalidValue(_, key, _, _) = error { return key == "model.merges[0]" }
            return false
        }
    }

    @Test("non-integer vocabulary id")
    func nonIntegerVocabularyID() {
        var json = TinyTokenizerJSON()
        json.vocabulary = #"{"a": 0, "b": "one", "ab": 2, "<|end|>": 3}"#
        expectError(key: "model.vocab.b", json.load) { error in
            if case let .invalidValue(_, key, expected, actual) = error {
                return key == "model.vocab.b" && expected.hasPrefix("an integer") && actual == "\"one\""
            }
            return false
        }
    }

    @Test("byte fallback is rejected")
    func byteFallbackRejected() {
        var json = TinyTokenizerJSON()
        json.byteFallback = "true"
        expectError(key: "model.byte_fallback", json.load) { error in
            if case let .unsupported(_, key, _, actual) = error { return key == "model.byte_fallback" && actual == "true" }
            return false
        }
    }

    @Test("added token id mismatch")
    func addedTokenIDMismatch() {
        var json = TinyTokenizerJSON()
        json.addedTokens = #"[{"id": 7, "content": "<|end|>", "special": true, "normalized": false}]"#
        expectError(key: "added_tokens[0].id", json.load) { error in
            if case let .invalidValue(_, key, expected, actual) = error {
                return key == "added_tokens[0].id" && expected.hasPrefix("3") && actual == "7"
            }
            return false
        }
    }

    @Test("unknown normalizer type")
    func unknownNormalizer() {
        var json = TinyTokenizerJSON()
        json.normalizer = #"{"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Precompiled", "precompiled_charsmap": ""}]}"#
        expectError(key: "normalizer.normalizers[1].type", json.load) { error in
            if case let .unsupported(_, key, _, actual) = error {
                return key == "normalizer.normalizers[1].type" && actual == "\"Precompiled\""
            }
            return false
        }
    }

    @Test("unknown decoder type and missing decoder", arguments: unsupportedDecoders)
    func unsupportedDecoder(decoder: String, key: String) {
        var json = TinyTokenizerJSON()
        json.decoder = decoder
        expectError(key: key, json.load) { error in
            if case let .unsupported(_, errorKey, _, _) = error { return errorKey == key }
            return false
        }
    }

    @Test("unknown post-processor type")
    func unknownPostProcessor() {
        var json = TinyTokenizerJSON()
        json.postProcessor = #"{"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]}"#
        expectError(key: "post_processor.type", json.load) { error in
            if case let .unsupported(_, key, _, actual) = error { return key == "post_processor.type" && actual == "\"RobertaProcessing\"" }
            return false
        }
    }

    @Test("truncation is rejected")
    func truncationRejected() {
        var json = TinyTokenizerJSON()
        json.truncation = #"{"max_length": 8, "strategy": "LongestFirst", "stride": 0, "direction": "Right"}"#
        expectError(key: "truncation", json.load) { error in
            if case let .unsupported(_, key, _, _) = error { return key == "truncation" }
            return false
        }
    }

    @Test("directory without tokenizer.json")
    func missingTokenizerFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("no-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(throws: TokenizerError.fileNotFound(file: directory.appendingPathComponent("tokenizer.json").path)) {
            try Tokenizer(directory: directory)
        }
    }

    @Test("malformed config names its file")
    func malformedTokenizerConfig() {
        #expect {
            try Tokenizer(
                tokenizerJSON: Data(TinyTokenizerJSON().text.utf8), tokenizerConfigJSON: Data("{\"eos_token\": }".utf8),
                source: "tiny/tokenizer.json")
        } throws: { error in
            guard case let TokenizerError.invalidJSON(file, _) = error else { return false }
            return file == "tiny/tokenizer_config.json"
        }
    }
}
