import Foundation

/// A byte-level BPE tokenizer read from a Hugging Face tokenizer.json, giving the
/// same ids and decoded text as the `tokenizers` library for the supported
/// pipeline pieces (see `Normalizer`, `PreTokenizer`, `BPEModel`,
/// `TokenDecoder`, `PostProcessor`). Unsupported pieces are rejected when loading.
///
/// Immutable after loading and safe to share across threads; the word cache
/// inside the model is guarded by a mutex.
public final class Tokenizer: Sendable {
    private let model: BPEModel
    private let normalizer: Normalizer?
    private let preTokenizer: PreTokenizer
    private let postProcessor: PostProcessor?
    /// Added tokens matched in the raw text (`normalized: false`).
    private let rawTokenMatcher: AddedTokenMatcher
    /// Added tokens matched after normalization (`normalized: true`).
    private let normalizedTokenMatcher: AddedTokenMatcher
    /// Added-token ids by the UTF-8 of their content.
    private let addedIDsByContent: [ByteString: Int]
    /// Added tokens by id.
    private let addedTokensByID: [Int: AddedToken]
    /// Decoded bytes of every id: `decodedBytes[decodedOffsets[id]..<decodedOffsets[id + 1]]`.
    private let decodedBytes: [UInt8]
    private let decodedOffsets: [Int]

    /// Max id + 1 over the vocabulary and the added tokens.
    public let vocabularySize: Int
    /// Ids of added tokens marked `special`.
    public let specialTokenIDs: Set<Int>
    /// `bos_token` from tokenizer_config.json.
    public let bosToken: String?
    /// `eos_token` from tokenizer_config.json.
    public let eosToken: String?

    /// Reads tokenizer.json and, when present, tokenizer_config.json from a model directory.
    public convenience init(directory: URL) throws {
        let tokenizerURL = directory.appendingPathComponent("tokenizer.json")
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        let tokenizerData = try readFile(tokenizerURL)
        let configData = FileManager.default.fileExists(atPath: configURL.path) ? try readFile(configURL) : nil
        try self.init(tokenizerJSON: tokenizerData, tokenizerConfigJSON: configData, source: tokenizerURL.path)
    }

    /// Builds a tokenizer from the contents of tokenizer.json and tokenizer_config.json.
    ///
    /// `source` is the tokenizer.json path used in error messages; errors in the
    /// config name `tokenizer_config.json` in the same directory.
    public init(tokenizerJSON: Data, tokenizerConfigJSON: Data?, source: String) throws {
        let root = try JSONNode.parse([UInt8](tokenizerJSON), file: source)
        guard case .object = root.value else { throw root.invalid(expected: "a JSON object") }

        for key in ["truncation", "padding"] {
            if let node = try root.optionalChild(key) {
                throw node.unsupported(expected: "null (truncation and padding change the ids)")
            }
        }
        let model = try BPEModel.parse(try root.child("model"))
        let normalizer = try Normalizer.parse(try root.childOrNull("normalizer"))
        let preTokenizer = try PreTokenizer.parse(try root.childOrNull("pre_tokenizer"))
        let postProcessor = try PostProcessor.parse(try root.childOrNull("post_processor"))
        let decoder = try TokenDecoder.parse(try root.childOrNull("decoder"))
        let addedTokens = try Self.parseAddedTokens(root, model: model, normalizer: normalizer)

        self.model = model
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.postProcessor = postProcessor
        self.rawTokenMatcher = AddedTokenMatcher(tokens: addedTokens.filter { !$0.normalized })
        self.normalizedTokenMatcher = AddedTokenMatcher(tokens: addedTokens.filter(\.normalized))
        self.addedIDsByContent = Dictionary(addedTokens.map { (ByteString($0.content), $0.id) }, uniquingKeysWith: { first, _ in first })
        let addedTokensByID = Dictionary(addedTokens.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        self.addedTokensByID = addedTokensByID
        self.specialTokenIDs = Set(addedTokens.filter(\.special).map(\.id))

        let vocabularySize = max(model.tokens.count, (addedTokens.map(\.id).max() ?? -1) + 1)
        self.vocabularySize = vocabularySize
        (self.decodedBytes, self.decodedOffsets) = Self.decodedByteTable(
            size: vocabularySize, model: model, addedTokensByID: addedTokensByID, decoder: decoder)

        var config = TokenizerConfig()
        if let tokenizerConfigJSON {
            // The sibling of `source`, built as text so that a relative source stays relative.
            let directory = source.range(of: "/", options: .backwards).map { String(source[..<$0.upperBound]) } ?? ""
            let configFile = directory + "tokenizer_config.json"
            config = try TokenizerConfig.parse([UInt8](tokenizerConfigJSON), file: configFile)
        }
        self.bosToken = config.bosToken
        self.eosToken = config.eosToken
    }

    /// Returns the decoded bytes of every id, concatenated, and the offset of each id's bytes.
    private static func decodedByteTable(
        size: Int, model: BPEModel, addedTokensByID: [Int: AddedToken], decoder: TokenDecoder
    ) -> (bytes: [UInt8], offsets: [Int]) {
        var bytes: [UInt8] = []
        var offsets = [0]
        offsets.reserveCapacity(size + 1)
        for id in 0..<size {
            // An added token takes precedence over a vocabulary entry with the same id, as in the library.
            let token = addedTokensByID[id]?.surfaceForm ?? (id < model.tokens.count ? model.tokens[id] : nil)
            if let token {
                bytes += decoder.bytes(ofToken: token)
            }
            offsets.append(bytes.count)
        }
        return (bytes, offsets)
    }

    /// Parses `added_tokens`, checking each id against the one the tokenizers library
    /// assigns (it ignores the "id" field): the vocabulary id of the content, else the
    /// next id after the vocabulary and the previous added tokens.
    private static func parseAddedTokens(_ root: JSONNode, model: BPEModel, normalizer: Normalizer?) throws -> [AddedToken] {
        guard let listNode = try root.optionalChild("added_tokens") else { return [] }
        var tokens: [AddedToken] = []
        var idsByContent: [ByteString: Int] = [:]
        for entry in try listNode.array() {
            let content = try entry.child("content").string()
            if content.isEmpty { continue }  // the library skips empty tokens
            let key = ByteString(content)
            if idsByContent[key] != nil {
                throw try entry.child("content").invalid(expected: "content that appears once in added_tokens")
            }
            let expectedID: Int
            if let id = model.idsByToken[key] {
                expectedID = id
            } else if let maximum = idsByContent.values.max(), maximum >= model.idsByToken.count {
                expectedID = maximum + 1
            } else {
                expectedID = model.idsByToken.count
            }
            let idNode = try entry.child("id")
            guard try idNode.int() == expectedID else {
                throw idNode.invalid(expected: "\(expectedID), the id the tokenizers library assigns to \"\(content)\"")
            }
            idsByContent[key] = expectedID
            let normalized = try entry.bool("normalized", default: true)
            var pattern = content.unicodeScalars.map(\.value)
            if normalized, let normalizer {
                pattern = normalizer.normalize(pattern)
            }
            tokens.append(AddedToken(
                id: expectedID, content: content, pattern: pattern,
                singleWord: try entry.bool("single_word", default: false),
                lstrip: try entry.bool("lstrip", default: false),
                rstrip: try entry.bool("rstrip", default: false),
                normalized: normalized,
                special: try entry.bool("special", default: false)))
        }
        return tokens
    }

    /// Token ids for `text`; added and special tokens written in the text are
    /// recognized, as `encode(text, add_special_tokens=False)` does.
    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        let scalars = text.unicodeScalars.map(\.value)
        for segment in rawTokenMatcher.split(scalars) {
            switch segment {
            case let .token(id):
                ids.append(id)
            case let .text(piece):
                let normalized = normalizer?.normalize(piece) ?? piece
                for inner in normalizedTokenMatcher.split(normalized) {
                    switch inner {
                    case let .token(id):
                        ids.append(id)
                    case let .text(normalizedPiece):
                        for word in preTokenizer.words(from: normalizedPiece) {
                            ids += model.tokenize(word)
                        }
                    }
                }
            }
        }
        return ids
    }

    /// Token ids for `text`, with the post-processor's special tokens (BOS, EOS, …)
    /// added when `addSpecialTokens` is true.
    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int] {
        let ids = encode(text)
        guard addSpecialTokens, let postProcessor else { return ids }
        return postProcessor.process(ids)
    }

    /// Text for `ids`. Unknown ids are skipped and invalid UTF-8 becomes U+FFFD, as in the tokenizers library.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &bytes)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the decoded bytes of `id`; unknown ids and, if requested, special tokens add nothing.
    func appendBytes(of id: Int, skipSpecialTokens: Bool, to bytes: inout [UInt8]) {
        guard id >= 0, id < vocabularySize else { return }
        if skipSpecialTokens && specialTokenIDs.contains(id) { return }
        bytes += decodedBytes[decodedOffsets[id]..<decodedOffsets[id + 1]]
    }

    /// Returns the token string of `id` as stored in the vocabulary (in byte-level
    /// characters, such as "Ġthe") or the added token's content, and nil for an unknown id.
    public func token(forID id: Int) -> String? {
        if let added = addedTokensByID[id] { return added.surfaceForm }
        guard id >= 0, id < model.tokens.count else { return nil }
        return model.tokens[id]
    }

    /// Returns the id of a token string (byte-level vocabulary form or added-token content).
    public func id(forToken token: String) -> Int? {
        let key = ByteString(token)
        return addedIDsByContent[key] ?? model.idsByToken[key]
    }
}

private func readFile(_ url: URL) throws -> Data {
    guard FileManager.default.fileExists(atPath: url.path) else {
        throw TokenizerError.fileNotFound(file: url.path)
    }
    do {
        return try Data(contentsOf: url)
    } catch {
        throw TokenizerError.unreadableFile(file: url.path, reason: error.localizedDescription)
    }
}
