import Synchronization

/// The `model` stage of tokenizer.json for byte-level BPE.
///
/// Words arrive as raw bytes. Each byte starts as the vocabulary token of its
/// byte-level character, and merges are applied lowest rank first, leftmost on
/// ties. Loading rejects `byte_fallback`, `dropout` other than 0,
/// `continuing_subword_prefix` and `end_of_word_suffix` as unsupported.
final class BPEModel: Sendable {
    /// `tokens[id]` is the vocabulary string of `id`, nil for ids the vocabulary skips.
    let tokens: [String?]
    /// Vocabulary ids by the UTF-8 bytes of the token string.
    let idsByToken: [ByteString: Int]
    /// Vocabulary ids by the bytes a token spells in the byte-level table, for `ignore_merges`.
    private let idsBySpelledBytes: [ByteString: Int]
    /// Id of the single-byte token of each byte, or -1 when the vocabulary lacks it.
    private let byteIDs: [Int32]
    /// Merges by `leftID << 32 | rightID`.
    private let merges: [UInt64: (rank: Int32, newID: Int32)]
    private let unknownID: Int32?
    private let fuseUnknown: Bool
    private let ignoreMerges: Bool
    /// Token ids of recently seen words. Only affects speed, never the result.
    /// NOTE: ThreadSanitizer on Linux reports races inside `withLock` here, because
    /// `Mutex` waits on futexes that it does not intercept. The same accesses
    /// under `NSLock` run clean.
    private let cache = Mutex<[ByteString: [Int]]>([:])

    // Same limits as the tokenizers library's word cache.
    private static let cacheCapacity = 10_000
    private static let maximumCachedWordLength = 256

    private init(
        tokens: [String?], idsByToken: [ByteString: Int], idsBySpelledBytes: [ByteString: Int],
        byteIDs: [Int32], merges: [UInt64: (rank: Int32, newID: Int32)],
        unknownID: Int32?, fuseUnknown: Bool, ignoreMerges: Bool
    ) {
        self.tokens = tokens
        self.idsByToken = idsByToken
        self.idsBySpelledBytes = idsBySpelledBytes
        self.byteIDs = byteIDs
        self.merges = merges
        self.unknownID = unknownID
        self.fuseUnknown = fuseUnknown
        self.ignoreMerges = ignoreMerges
    }

    static func parse(_ node: JSONNode) throws -> BPEModel {
        let typeNode = try node.optionalChild("type")
        if let typeNode, try typeNode.string() != "BPE" {
            throw typeNode.unsupported(expected: "BPE")
        }
        if typeNode == nil, try node.optionalChild("merges") == nil {
            throw TokenizerError.missingKey(file: node.file, key: node.path + ".type")
        }
        try rejectUnsupportedOptions(node)

        let ignoreMerges = try node.bool("ignore_merges", default: false)
        let vocabularyNode = try node.child("vocab")
        guard case let .object(entries) = vocabularyNode.value else {
            throw vocabularyNode.invalid(expected: "an object")
        }
        // Plain loops over the parsed values: building a JSONNode (and its key path)
        // per entry would triple the load time of a 150k-token vocabulary.
        var pairs: [(token: String, id: Int)] = []
        pairs.reserveCapacity(entries.count)
        for (key, value) in entries {
            guard case let .number(number) = value, number == number.rounded(), number >= 0, number < Double(Int32.max)
            else {
                throw TokenizerError.invalidValue(
                    file: vocabularyNode.file, key: "\(vocabularyNode.path).\(key)",
                    expected: "an integer id from 0 to \(Int32.max - 1)", actual: value.summary)
            }
            pairs.append((key, Int(number)))
        }
        let size = (pairs.map(\.id).max() ?? -1) + 1
        var tokens = [String?](repeating: nil, count: size)
        var idsByToken: [ByteString: Int] = [:]
        var idsBySpelledBytes: [ByteString: Int] = [:]
        var byteIDs = [Int32](repeating: -1, count: 256)
        idsByToken.reserveCapacity(pairs.count)
        if ignoreMerges { idsBySpelledBytes.reserveCapacity(pairs.count) }
        for (token, id) in pairs {
            if let previous = tokens[id] {
                throw TokenizerError.invalidValue(
                    file: vocabularyNode.file, key: "\(vocabularyNode.path).\(token)",
                    expected: "an id used once", actual: "\(id), also the id of \"\(previous)\"")
            }
            tokens[id] = token
            idsByToken[ByteString(token)] = id
            if let spelled = ByteLevel.bytes(forToken: token) {
                if ignoreMerges { idsBySpelledBytes[ByteString(spelled)] = id }
                if spelled.count == 1 { byteIDs[Int(spelled[0])] = Int32(id) }
            }
        }

        let merges = try parseMerges(try node.child("merges"), idsByToken: idsByToken)

        var unknownID: Int32?
        if let unknownNode = try node.optionalChild("unk_token") {
            let unknown = try unknownNode.string()
            guard let id = idsByToken[ByteString(unknown)] else {
                throw unknownNode.invalid(expected: "a token in model.vocab")
            }
            unknownID = Int32(id)
        }
        return BPEModel(
            tokens: tokens, idsByToken: idsByToken,
            idsBySpelledBytes: idsBySpelledBytes,
            byteIDs: byteIDs, merges: merges, unknownID: unknownID,
            fuseUnknown: try node.bool("fuse_unk", default: false), ignoreMerges: ignoreMerges)
    }

    private static func rejectUnsupportedOptions(_ node: JSONNode) throws {
        if let dropout = try node.optionalChild("dropout"), try dropout.double() != 0 {
            throw dropout.unsupported(expected: "null or 0 (BPE dropout is random and only for training)")
        }
        if let byteFallback = try node.optionalChild("byte_fallback"), try byteFallback.bool() {
            throw byteFallback.unsupported(expected: "false (byte fallback is not implemented)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let affix = try node.optionalChild(key), try !affix.string().isEmpty {
                throw affix.unsupported(expected: "null or an empty string")
            }
        }
    }

    private static func parseMerges(
        _ node: JSONNode, idsByToken: [ByteString: Int]
    ) throws -> [UInt64: (rank: Int32, newID: Int32)] {
        guard case let .array(items) = node.value else { throw node.invalid(expected: "an array") }
        var merges: [UInt64: (rank: Int32, newID: Int32)] = [:]
        merges.reserveCapacity(items.count)
        for (rank, value) in items.enumerated() {
            let left: String
            let right: String
            switch value {
            case let .string(line):
                // "a b": both parts are vocabulary tokens, which never contain a space.
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw mergeItem(node, rank).invalid(expected: "a merge written as \"left right\"")
                }
                left = String(parts[0])
                right = String(parts[1])
            case let .array(parts):
                guard parts.count == 2, case let .string(first) = parts[0], case let .string(second) = parts[1] else {
                    throw mergeItem(node, rank).invalid(expected: "a merge written as [\"left\", \"right\"]")
                }
                left = first
                right = second
            default:
                throw mergeItem(node, rank).invalid(expected: "a string \"left right\" or an array [\"left\", \"right\"]")
            }
            let leftBytes = ByteString(left)
            let rightBytes = ByteString(right)
            guard let leftID = idsByToken[leftBytes] else {
                throw unknownMergeToken(mergeItem(node, rank), left: left, right: right, missing: left)
            }
            guard let rightID = idsByToken[rightBytes] else {
                throw unknownMergeToken(mergeItem(node, rank), left: left, right: right, missing: right)
            }
            guard let newID = idsByToken[ByteString(leftBytes.bytes + rightBytes.bytes)] else {
                throw unknownMergeToken(mergeItem(node, rank), left: left, right: right, missing: left + right)
            }
            // A repeated pair keeps its last rank, as the library's merge map does.
            merges[UInt64(leftID) << 32 | UInt64(rightID)] = (Int32(rank), Int32(newID))
        }
        return merges
    }

    private static func mergeItem(_ merges: JSONNode, _ index: Int) -> JSONNode {
        guard case let .array(items) = merges.value else { return merges }
        return JSONNode(value: items[index], file: merges.file, path: "\(merges.path)[\(index)]")
    }

    private static func unknownMergeToken(_ item: JSONNode, left: String, right: String, missing: String) -> TokenizerError {
        .invalidValue(
            file: item.file, key: item.path,
            expected: "a merge whose parts and result are in model.vocab",
            actual: "\"\(left)\" + \"\(right)\", and \"\(missing)\" is not in model.vocab")
    }

    /// Returns the token ids of one pre-tokenized word given as raw bytes.
    func tokenize(_ word: [UInt8]) -> [Int] {
        if word.isEmpty { return [] }
        let key = ByteString(word)
        if ignoreMerges, let id = idsBySpelledBytes[key] {
            return [id]
        }
        if let cached = cache.withLock({ $0[key] }) {
            return cached
        }
        let ids = merge(word)
        if word.count < Self.maximumCachedWordLength {
            cache.withLock { cache in
                if cache.count < Self.cacheCapacity { cache[key] = ids }
            }
        }
        return ids
    }

    private struct Symbol {
        var id: Int32
        var previous: Int32
        var next: Int32
        /// Bytes covered; 0 marks a symbol merged into its left neighbour.
        var length: Int32
    }

    private func merge(_ word: [UInt8]) -> [Int] {
        var symbols: [Symbol] = []
        symbols.reserveCapacity(word.count)
        var pendingUnknown: (id: Int32, length: Int32)?
        func append(_ id: Int32, _ length: Int32) {
            let index = Int32(symbols.count)
            if !symbols.isEmpty { symbols[symbols.count - 1].next = index }
            symbols.append(Symbol(id: id, previous: index - 1, next: -1, length: length))
        }
        for byte in word {
            let id = byteIDs[Int(byte)]
            if id >= 0 {
                if let unknown = pendingUnknown {
                    append(unknown.id, unknown.length)
                    pendingUnknown = nil
                }
                append(id, 1)
            } else if let unknownID {
                // Without an unknown token the library drops the byte; with one it
                // emits it, fusing consecutive unknowns when fuse_unk is set.
                if let unknown = pendingUnknown {
                    if fuseUnknown {
                        pendingUnknown = (unknown.id, unknown.length + 1)
                        continue
                    }
                    append(unknown.id, unknown.length)
                }
                pendingUnknown = (unknownID, 1)
            }
        }
        if let unknown = pendingUnknown { append(unknown.id, unknown.length) }
        if symbols.count < 2 { return symbols.map { Int($0.id) } }

        var queue = MergeQueue(capacity: symbols.count)
        for index in 0..<(symbols.count - 1) {
            if let merge = merges[pairKey(symbols[index].id, symbols[index + 1].id)] {
                queue.push(MergeCandidate(rank: merge.rank, position: Int32(index), newID: merge.newID))
            }
        }
        while let top = queue.pop() {
            let position = Int(top.position)
            let current = symbols[position]
            if current.length == 0 || current.next < 0 { continue }
            let nextIndex = Int(current.next)
            let right = symbols[nextIndex]
            // Skip a queue entry made stale by an earlier merge.
            guard let merge = merges[pairKey(current.id, right.id)], merge.newID == top.newID else { continue }

            symbols[position].id = top.newID
            symbols[position].length += right.length
            symbols[position].next = right.next
            symbols[nextIndex].length = 0
            if right.next >= 0 {
                symbols[Int(right.next)].previous = Int32(position)
            }

            let merged = symbols[position]
            if merged.previous >= 0 {
                let previous = symbols[Int(merged.previous)]
                if let candidate = merges[pairKey(previous.id, merged.id)] {
                    queue.push(MergeCandidate(rank: candidate.rank, position: merged.previous, newID: candidate.newID))
                }
            }
            if merged.next >= 0 {
                let next = symbols[Int(merged.next)]
                if let candidate = merges[pairKey(merged.id, next.id)] {
                    queue.push(MergeCandidate(rank: candidate.rank, position: Int32(position), newID: candidate.newID))
                }
            }
        }
        return symbols.compactMap { $0.length > 0 ? Int($0.id) : nil }
    }

    @inline(__always)
    private func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
    }
}
