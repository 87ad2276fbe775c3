/// One entry of `added_tokens` in tokenizer.json.
struct AddedToken: Sendable {
    let id: Int
    /// The content as written in the file.
    let content: String
    /// The scalars matched in text: `content`, normalized when `normalized` is true.
    let pattern: [UInt32]
    let singleWord: Bool
    let lstrip: Bool
    let rstrip: Bool
    let normalized: Bool
    let special: Bool

    /// The token string the tokenizers library returns for this id: the normalized
    /// content for a normalized token (observed with tokenizers 0.23.3).
    var surfaceForm: String {
        var text = String.UnicodeScalarView()
        for value in pattern {
            if let scalar = Unicode.Scalar(value) { text.append(scalar) }
        }
        return String(text)
    }
}

/// A piece of input after added tokens are split out: an added token id, or text to tokenize.
enum TextSegment: Sendable {
    case token(Int)
    case text([UInt32])
}

/// Finds added tokens in text, as the tokenizers library's AddedVocabulary does:
/// leftmost-longest non-overlapping matches, then `single_word`, `lstrip` and
/// `rstrip` applied to each match.
struct AddedTokenMatcher: Sendable {
    private let tokens: [AddedToken]
    /// Trie over the patterns: `children[node][scalar]` is the next node.
    private let children: [[UInt32: Int]]
    /// Index into `tokens` of the pattern ending at each node, or -1.
    private let terminal: [Int]

    init(tokens: [AddedToken]) {
        var children: [[UInt32: Int]] = [[:]]
        var terminal = [-1]
        for (index, token) in tokens.enumerated() where !token.pattern.isEmpty {
            var node = 0
            for value in token.pattern {
                if let next = children[node][value] {
                    node = next
                } else {
                    children.append([:])
                    terminal.append(-1)
                    children[node][value] = children.count - 1
                    node = children.count - 1
                }
            }
            // The first of two tokens with the same pattern wins, as in the automaton's pattern order.
            if terminal[node] < 0 { terminal[node] = index }
        }
        self.tokens = tokens
        self.children = children
        self.terminal = terminal
    }

    var isEmpty: Bool { children[0].isEmpty }

    /// Splits `text` into added tokens and the text between them; empty text is dropped.
    func split(_ text: [UInt32]) -> [TextSegment] {
        if isEmpty { return text.isEmpty ? [] : [.text(text)] }
        var segments: [TextSegment] = []
        var startOffset = 0
        for (matchStart, matchEnd, tokenIndex) in automatonMatches(in: text) {
            let token = tokens[tokenIndex]
            var start = matchStart
            var stop = matchEnd
            if token.singleWord {
                let startIsBoundary = start == 0 || !isWordScalar(text[start - 1])
                let stopIsBoundary = stop == text.count || !isWordScalar(text[stop])
                if !startIsBoundary || !stopIsBoundary { continue }
            }
            if token.lstrip {
                var newStart = start
                while newStart > 0 && isWhitespace(text[newStart - 1]) { newStart -= 1 }
                start = max(newStart, startOffset)
            }
            if token.rstrip {
                while stop < text.count && isWhitespace(text[stop]) { stop += 1 }
            }
            if startOffset < start {
                segments.append(.text(Array(text[startOffset..<start])))
            }
            segments.append(.token(token.id))
            startOffset = stop
        }
        if startOffset < text.count {
            segments.append(.text(Array(text[startOffset...])))
        }
        return segments
    }

    /// Returns the leftmost-longest, non-overlapping pattern matches.
    private func automatonMatches(in text: [UInt32]) -> [(start: Int, end: Int, token: Int)] {
        var matches: [(start: Int, end: Int, token: Int)] = []
        var position = 0
        while position < text.count {
            var node = 0
            var longest: (end: Int, token: Int)?
            var index = position
            while index < text.count, let next = children[node][text[index]] {
                node = next
                index += 1
                if terminal[node] >= 0 { longest = (index, terminal[node]) }
            }
            if let longest {
                matches.append((position, longest.end, longest.token))
                position = longest.end
            } else {
                position += 1
            }
        }
        return matches
    }

    private func isWordScalar(_ value: UInt32) -> Bool {
        Unicode.Scalar(value).map(ScalarProperties.isWordCharacter) ?? false
    }

    private func isWhitespace(_ value: UInt32) -> Bool {
        Unicode.Scalar(value).map(ScalarProperties.isWhitespace) ?? false
    }
}
