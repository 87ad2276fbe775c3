/// The `pre_tokenizer` stage of tokenizer.json: splits normalized text into words
/// and turns each word into the bytes that the byte-level BPE model merges.
///
/// Supported: Split (regex or string pattern, every behavior, invert), Digits,
/// and ByteLevel, alone or in a Sequence whose last step is ByteLevel. A
/// pipeline without a final ByteLevel step is rejected, because the model and
/// the decoder here work on bytes.
struct PreTokenizer: Sendable {
    /// Steps before ByteLevel, applied in order to every piece.
    let steps: [PreTokenizerStep]
    let addPrefixSpace: Bool
    /// The GPT-2 pattern when ByteLevel has `use_regex: true`.
    let byteLevelRegex: TokenizerRegex?

    static func parse(_ node: JSONNode) throws -> PreTokenizer {
        if node.isNull {
            throw node.unsupported(expected: "a pre-tokenizer ending in ByteLevel (only byte-level BPE is supported)")
        }
        var flat: [JSONNode] = []
        try flatten(node, into: &flat)
        var steps: [PreTokenizerStep] = []
        var byteLevelNode: JSONNode?
        for (index, step) in flat.enumerated() {
            let typeNode = try step.child("type")
            switch try typeNode.string() {
            case "ByteLevel" where index == flat.count - 1:
                byteLevelNode = step
            case "ByteLevel":
                throw typeNode.unsupported(expected: "ByteLevel only as the last pre-tokenizer step")
            case "Split", "Digits":
                steps.append(try PreTokenizerStep.parse(step))
            default:
                throw typeNode.unsupported(expected: "Split, Digits, ByteLevel or Sequence")
            }
        }
        guard let last = byteLevelNode else {
            throw node.unsupported(expected: "a pre-tokenizer whose last step is ByteLevel (only byte-level BPE is supported)")
        }
        let useRegex = try last.bool("use_regex", default: true)
        let regex: TokenizerRegex?
        do {
            regex = useRegex ? try TokenizerRegex(pattern: ByteLevel.gpt2Pattern) : nil
        } catch {
            throw last.unsupported(expected: "the GPT-2 pattern to compile (\(error.message))")
        }
        return PreTokenizer(steps: steps, addPrefixSpace: try last.bool("add_prefix_space", default: true), byteLevelRegex: regex)
    }

    private static func flatten(_ node: JSONNode, into flat: inout [JSONNode]) throws {
        let typeNode = try node.child("type")
        if try typeNode.string() == "Sequence" {
            for item in try node.child("pretokenizers").array() {
                try flatten(item, into: &flat)
            }
        } else {
            flat.append(node)
        }
    }

    /// Returns the byte words of one piece of normalized text, in order.
    func words(from piece: [UInt32]) -> [[UInt8]] {
        var pieces = [piece]
        for step in steps {
            pieces = pieces.flatMap { step.split($0) }.filter { !$0.isEmpty }
        }
        var words: [[UInt8]] = []
        for var piece in pieces where !piece.isEmpty {
            if addPrefixSpace && piece[0] != 0x20 {
                piece.insert(0x20, at: 0)
            }
            if let regex = byteLevelRegex {
                for range in SplitPattern.regex(regex).findMatches(in: piece).map(\.range) {
                    words.append(Self.utf8(piece[range]))
                }
            } else {
                words.append(Self.utf8(piece[...]))
            }
        }
        return words
    }

    private static func utf8(_ scalars: ArraySlice<UInt32>) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(scalars.count)
        for value in scalars {
            switch value {
            case 0..<0x80:
                bytes.append(UInt8(value))
            case 0x80..<0x800:
                bytes.append(UInt8(0xC0 | (value >> 6)))
                bytes.append(UInt8(0x80 | (value & 0x3F)))
            case 0x800..<0x10000:
                bytes.append(UInt8(0xE0 | (value >> 12)))
                bytes.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
                bytes.append(UInt8(0x80 | (value & 0x3F)))
            default:
                bytes.append(UInt8(0xF0 | (value >> 18)))
                bytes.append(UInt8(0x80 | ((value >> 12) & 0x3F)))
                bytes.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
                bytes.append(UInt8(0x80 | (value & 0x3F)))
            }
        }
        return bytes
    }
}

/// A pre-tokenizer step that splits a piece of text without changing it.
enum PreTokenizerStep: Sendable {
    case split(SplitPattern, SplitDelimiterBehavior, invert: Bool)
    /// Digits: each digit alone (`individual_digits`) or runs of digits kept together.
    case digits(individual: Bool)

    static func parse(_ node: JSONNode) throws -> PreTokenizerStep {
        let typeNode = try node.child("type")
        switch try typeNode.string() {
        case "Split":
            let patternNode = try node.child("pattern")
            let pattern: SplitPattern
            if let regexNode = try patternNode.optionalChild("Regex") {
                pattern = .regex(try compile(try regexNode.string(), node: regexNode))
            } else if let stringNode = try patternNode.optionalChild("String") {
                let literal = try stringNode.string()
                // The library compiles an empty string to a regex that matches
                // everywhere; that empty-match behaviour is not reproduced.
                if literal.isEmpty {
                    throw stringNode.unsupported(expected: "a non-empty string")
                }
                pattern = .regex(try compile(escape(literal), node: stringNode))
            } else {
                throw patternNode.invalid(expected: "an object with a \"Regex\" or \"String\" key")
            }
            let behavior = try SplitDelimiterBehavior.parse(try node.child("behavior"))
            return .split(pattern, behavior, invert: try node.child("invert").bool())
        case "Digits":
            return .digits(individual: try node.bool("individual_digits", default: false))
        default:
            throw typeNode.unsupported(expected: "Split or Digits")
        }
    }

    private static func compile(_ pattern: String, node: JSONNode) throws -> TokenizerRegex {
        do {
            return try TokenizerRegex(pattern: pattern)
        } catch {
            throw node.unsupported(expected: "a regular expression in the supported subset (\(error.message) at offset \(error.offset))")
        }
    }

    /// Escapes every ASCII punctuation character so the regex parser reads `literal` literally.
    private static func escape(_ literal: String) -> String {
        var escaped = ""
        for scalar in literal.unicodeScalars {
            if scalar.isASCII && !scalar.properties.isAlphabetic && !(48...57).contains(scalar.value)
                && scalar.value > 0x20 {
                escaped.unicodeScalars.append("\\")
            }
            escaped.unicodeScalars.append(scalar)
        }
        return escaped
    }

    func split(_ piece: [UInt32]) -> [[UInt32]] {
        switch self {
        case let .split(pattern, behavior, invert):
            var matches = pattern.findMatches(in: piece)
            if invert {
                matches = matches.map { ($0.range, !$0.isMatch) }
            }
            return behavior.apply(matches).map { Array(piece[$0]) }
        case let .digits(individual):
            let matches = SplitPattern.numeric.findMatches(in: piece)
            let behavior: SplitDelimiterBehavior = individual ? .isolated : .contiguous
            return behavior.apply(matches).map { Array(piece[$0]) }
        }
    }
}

/// The pattern of a Split step.
enum SplitPattern: Sendable {
    case regex(TokenizerRegex)
    /// One match per numeric scalar (general category N), as the Digits pre-tokenizer.
    case numeric

    /// Returns ranges that cover `piece` in order, each flagged as a match or the text between matches.
    func findMatches(in piece: [UInt32]) -> [(range: Range<Int>, isMatch: Bool)] {
        if piece.isEmpty { return [(0..<0, false)] }
        var matchRanges: [Range<Int>] = []
        switch self {
        case let .regex(regex):
            let properties = piece.map { value in
                Unicode.Scalar(value).map(ScalarProperties.mask(of:)) ?? 0
            }
            matchRanges = piece.withUnsafeBufferPointer { scalars in
                properties.withUnsafeBufferPointer { regex.matches(in: scalars, properties: $0) }
            }
        case .numeric:
            for (index, value) in piece.enumerated() {
                if let scalar = Unicode.Scalar(value), ScalarProperties.isNumeric(scalar) {
                    matchRanges.append(index..<index + 1)
                }
            }
        }
        var result: [(range: Range<Int>, isMatch: Bool)] = []
        var previous = 0
        for range in matchRanges {
            if previous != range.lowerBound {
                result.append((previous..<range.lowerBound, false))
            }
            result.append((range, true))
            previous = range.upperBound
        }
        if previous != piece.count {
            result.append((previous..<piece.count, false))
        }
        return result
    }
}

/// The handling of matched delimiters in a Split step (the `behavior` key).
enum SplitDelimiterBehavior: Sendable {
    case removed
    case isolated
    case mergedWithPrevious
    case mergedWithNext
    case contiguous

    static func parse(_ node: JSONNode) throws -> SplitDelimiterBehavior {
        switch try node.string() {
        case "Removed": return .removed
        case "Isolated": return .isolated
        case "MergedWithPrevious": return .mergedWithPrevious
        case "MergedWithNext": return .mergedWithNext
        case "Contiguous": return .contiguous
        default: throw node.invalid(expected: "Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous")
        }
    }

    /// Returns the ranges of the resulting pieces (possibly empty ones, which callers drop).
    func apply(_ matches: [(range: Range<Int>, isMatch: Bool)]) -> [Range<Int>] {
        switch self {
        case .isolated:
            return matches.map(\.range)
        case .removed:
            return matches.filter { !$0.isMatch }.map(\.range)
        case .contiguous:
            var result: [Range<Int>] = []
            var previousMatch = false
            for (range, isMatch) in matches {
                if isMatch == previousMatch, let last = result.last {
                    result[result.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    result.append(range)
                }
                previousMatch = isMatch
            }
            return result
        case .mergedWithPrevious:
            var result: [Range<Int>] = []
            var previousMatch = false
            for (range, isMatch) in matches {
                if isMatch && !previousMatch, let last = result.last {
                    result[result.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    result.append(range)
                }
                previousMatch = isMatch
            }
            return result
        case .mergedWithNext:
            var result: [Range<Int>] = []
            var previousMatch = false
            for (range, isMatch) in matches.reversed() {
                if isMatch && !previousMatch, let last = result.last {
                    result[result.count - 1] = range.lowerBound..<last.upperBound
                } else {
                    result.append(range)
                }
                previousMatch = isMatch
            }
            return result.reversed()
        }
    }
}
