/// A parsed regular expression.
indirect enum RegexNode: Sendable {
    case set(ScalarSet)
    case sequence([RegexNode])
    case alternation([RegexNode])
    case repetition(RegexNode, min: Int, max: Int?, greedy: Bool)
    case lookahead(RegexNode, negated: Bool)

    /// Whether the node can match without consuming input.
    var canMatchEmpty: Bool {
        switch self {
        case .set: return false
        case let .sequence(items): return items.allSatisfy(\.canMatchEmpty)
        case let .alternation(branches): return branches.contains(where: \.canMatchEmpty)
        case let .repetition(body, min, _, _): return min == 0 || body.canMatchEmpty
        case .lookahead: return true
        }
    }
}

/// A pattern outside the supported subset, with the scalar offset where parsing stopped.
struct RegexSyntaxError: Error {
    let message: String
    let offset: Int
}

/// Parses the subset of Oniguruma (Ruby syntax) that tokenizer.json files use:
/// literals, `.`, classes `[…]` with ranges, `\s \S \d \D \p{…} \P{…}`, the
/// escapes `\t \n \r \f \v \a \e \xHH \x{…} \uHHHH`, groups `(…)`, `(?:…)`,
/// `(?i:…)`, lookahead `(?=…)` and `(?!…)`, alternation, and greedy or lazy
/// quantifiers `* + ? {n} {n,} {n,m} {,m}`.
///
/// Everything else (anchors, backreferences, lookbehind, atomic groups,
/// possessive quantifiers, inline flags other than `(?i:`, `\w`, `\b`) throws,
/// so a pattern is either matched with Oniguruma's semantics or rejected.
struct RegexParser {
    private let pattern: [Unicode.Scalar]
    private var position = 0
    private var caseInsensitive = false

    static func parse(_ pattern: String) throws(RegexSyntaxError) -> RegexNode {
        var parser = RegexParser(pattern: Array(pattern.unicodeScalars))
        let node = try parser.parseAlternation()
        if parser.position < parser.pattern.count {
            throw parser.error("unmatched ')'")
        }
        return node
    }

    private init(pattern: [Unicode.Scalar]) {
        self.pattern = pattern
    }

    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        position + offset < pattern.count ? pattern[position + offset] : nil
    }

    private func error(_ message: String) -> RegexSyntaxError {
        RegexSyntaxError(message: message, offset: position)
    }

    private mutating func parseAlternation() throws(RegexSyntaxError) -> RegexNode {
        var branches = [try parseSequence()]
        while peek() == "|" {
            position += 1
            branches.append(try parseSequence())
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func parseSequence() throws(RegexSyntaxError) -> RegexNode {
        var items: [RegexNode] = []
        var previousLiteral: Unicode.Scalar?
        while let scalar = peek(), scalar != "|", scalar != ")" {
            let atom = try parseAtom()
            let literal = caseInsensitive ? Self.caseInsensitiveLiteral(atom) : nil
            if let previousLiteral, let literal {
                try rejectMultiCharacterFoldTarget(previousLiteral, literal)
            }
            // A quantified literal still counts, because `s+s` can also spell "ss".
            previousLiteral = literal
            items.append(try parseQuantifier(applyingTo: atom))
        }
        return items.count == 1 ? items[0] : .sequence(items)
    }

    private static func caseInsensitiveLiteral(_ node: RegexNode) -> Unicode.Scalar? {
        guard case let .set(set) = node else { return nil }
        return set.singleLiteralIgnoringCase
    }

    /// Rejects two case-insensitive literals that spell the case folding of one
    /// character: Oniguruma matches `(?i:ss)` against "ß" and `(?i:fi)` against "ﬁ".
    /// NOTE: only the ASCII fold targets are checked. Non-ASCII ones such as
    /// "ʼn" (from U+0149) are matched one scalar at a time, unlike Oniguruma.
    private func rejectMultiCharacterFoldTarget(_ first: Unicode.Scalar, _ second: Unicode.Scalar) throws(RegexSyntaxError) {
        let pair = String(String.UnicodeScalarView([
            ScalarProperties.simpleCaseFold(first), ScalarProperties.simpleCaseFold(second),
        ]))
        if ["ss", "st", "ff", "fi", "fl"].contains(pair) {
            throw error("case-insensitive \"\(pair)\" also matches a single character in Oniguruma, which is not supported")
        }
    }

    /// Rejects a case-insensitive literal whose full case folding is several
    /// characters (such as "ß" folding to "ss"), which Oniguruma also matches.
    private func rejectMultiCharacterFold(_ scalar: Unicode.Scalar) throws(RegexSyntaxError) {
        let upper = scalar.properties.uppercaseMapping
        let folded = upper.unicodeScalars.count == 1
            ? (upper.unicodeScalars.first?.properties.lowercaseMapping ?? "")
            : upper.lowercased()
        if folded.unicodeScalars.count > 1 || scalar.properties.lowercaseMapping.unicodeScalars.count > 1 {
            throw error("case-insensitive matching of U+\(String(scalar.value, radix: 16, uppercase: true)), which folds to several characters, is not supported")
        }
    }

    private mutating func parseQuantifier(applyingTo atom: RegexNode) throws(RegexSyntaxError) -> RegexNode {
        guard let scalar = peek() else { return atom }
        var minimum: Int
        var maximum: Int?
        switch scalar {
        case "*": minimum = 0; maximum = nil; position += 1
        case "+": minimum = 1; maximum = nil; position += 1
        case "?": minimum = 0; maximum = 1; position += 1
        case "{":
            guard let bounds = parseBraces() else { return atom }
            (minimum, maximum) = bounds
        default:
            return atom
        }
        if let maximum, maximum < minimum {
            throw error("quantifier maximum is below its minimum")
        }
        var greedy = true
        if peek() == "?" {
            greedy = false
            position += 1
        }
        if let next = peek(), next == "+" || next == "*" || next == "?" || next == "{" && parseBracesLookahead() {
            throw error("possessive or nested quantifiers are not supported")
        }
        if case .lookahead = atom {
            throw error("a quantifier on a lookahead is not supported")
        }
        return .repetition(atom, min: minimum, max: maximum, greedy: greedy)
    }

    /// Parses `{n}`, `{n,}`, `{n,m}` or `{,m}`. Returns nil and leaves the position
    /// unchanged when the brace is not a quantifier, which Oniguruma reads as a literal `{`.
    private mutating func parseBraces() -> (Int, Int?)? {
        let start = position
        position += 1
        let minimum = parseDecimal()
        if peek() == "}", let minimum {
            position += 1
            return (minimum, minimum)
        }
        guard peek() == "," else {
            position = start
            return nil
        }
        position += 1
        let maximum = parseDecimal()
        guard peek() == "}", minimum != nil || maximum != nil else {
            position = start
            return nil
        }
        position += 1
        return (minimum ?? 0, maximum)
    }

    private func parseBracesLookahead() -> Bool {
        var copy = self
        return copy.parseBraces() != nil
    }

    /// Parses ASCII digits; values are capped so that a long digit run cannot overflow.
    private mutating func parseDecimal() -> Int? {
        var value: Int?
        while let scalar = peek(), scalar.isASCII, let digit = Int(String(scalar)) {
            value = min((value ?? 0) * 10 + digit, 1_000_000)
            position += 1
        }
        return value
    }

    private mutating func parseAtom() throws(RegexSyntaxError) -> RegexNode {
        guard let scalar = peek() else { throw error("unexpected end of pattern") }
        switch scalar {
        case "(":
            return try parseGroup()
        case "[":
            return .set(try parseClass())
        case ".":
            position += 1
            var set = ScalarSet()
            set.scalars = [0x0A]  // Ruby syntax: `.` matches anything but a newline.
            set.negated = true
            return .set(set)
        case "\\":
            return .set(try parseEscape())
        case "*", "+", "?":
            throw error("quantifier without a preceding expression")
        case "^", "$":
            throw error("anchors are not supported")
        case "{":
            if parseBracesLookahead() { throw error("quantifier without a preceding expression") }
            position += 1
            return .set(try literal(scalar))
        default:
            position += 1
            return .set(try literal(scalar))
        }
    }

    private func literal(_ scalar: Unicode.Scalar) throws(RegexSyntaxError) -> ScalarSet {
        if caseInsensitive { try rejectMultiCharacterFold(scalar) }
        var set = ScalarSet()
        set.caseInsensitive = caseInsensitive
        set.insert(scalar)
        return set
    }

    private mutating func parseGroup() throws(RegexSyntaxError) -> RegexNode {
        position += 1  // "("
        let savedCaseInsensitive = caseInsensitive
        var lookahead: Bool?
        if peek() == "?" {
            switch (peek(1), peek(2)) {
            case (":", _):
                position += 2
            case ("i", ":"):
                position += 3
                caseInsensitive = true
            case ("=", _):
                position += 2
                lookahead = false
            case ("!", _):
                position += 2
                lookahead = true
            default:
                throw error("only (?:…), (?i:…), (?=…) and (?!…) groups are supported")
            }
        }
        let body = try parseAlternation()
        guard peek() == ")" else { throw error("missing ')'") }
        position += 1
        caseInsensitive = savedCaseInsensitive
        if let negated = lookahead {
            return .lookahead(body, negated: negated)
        }
        return body
    }

    private mutating func parseClass() throws(RegexSyntaxError) -> ScalarSet {
        position += 1  // "["
        var set = ScalarSet()
        set.caseInsensitive = caseInsensitive
        if peek() == "^" {
            set.negated = true
            position += 1
        }
        var first = true
        while true {
            guard let scalar = peek() else { throw error("missing ']'") }
            if scalar == "]" && !first { break }
            first = false
            if scalar == "[" { throw error("nested character classes are not supported") }
            if scalar == "&" && peek(1) == "&" { throw error("class intersection is not supported") }

            let low: Unicode.Scalar
            if scalar == "\\" {
                let escaped = try parseEscape()
                guard let single = escaped.singleLiteralIgnoringCase else {
                    merge(escaped, into: &set)
                    continue
                }
                low = single
            } else {
                position += 1
                low = scalar
            }

            // A range needs a "-" that is neither the last class member nor followed by "]".
            if peek() == "-", let after = peek(1), after != "]" {
                position += 1
                let high: Unicode.Scalar
                if after == "\\" {
                    let escaped = try parseEscape()
                    guard let single = escaped.singleLiteralIgnoringCase else {
                        throw error("a class range must end in a single character")
                    }
                    high = single
                } else {
                    position += 1
                    high = after
                }
                guard low.value <= high.value else { throw error("class range out of order") }
                if caseInsensitive && (low.properties.changesWhenCaseMapped || high.properties.changesWhenCaseMapped) {
                    throw error("case-insensitive class ranges of cased letters are not supported")
                }
                set.ranges.append(low.value...high.value)
            } else {
                if caseInsensitive { try rejectMultiCharacterFold(low) }
                set.insert(low)
            }
        }
        position += 1  // "]"
        return set
    }

    private func merge(_ escaped: ScalarSet, into set: inout ScalarSet) {
        set.propertyMask |= escaped.propertyMask
        set.negatedPropertyMasks += escaped.negatedPropertyMasks
        set.scalars += escaped.scalars
        set.ranges += escaped.ranges
    }

    /// Parses an escape into the set it matches.
    private mutating func parseEscape() throws(RegexSyntaxError) -> ScalarSet {
        position += 1  // "\"
        guard let scalar = peek() else { throw error("pattern ends with '\\'") }
        position += 1
        var set = ScalarSet()
        set.caseInsensitive = caseInsensitive
        switch scalar {
        case "s": set.propertyMask = ScalarProperties.whitespaceBit
        case "S": set.negatedPropertyMasks = [ScalarProperties.whitespaceBit]
        case "d": set.propertyMask = ScalarProperties.decimalNumberMask
        case "D": set.negatedPropertyMasks = [ScalarProperties.decimalNumberMask]
        case "p", "P":
            let mask = try parsePropertyName()
            if scalar == "p" { set.propertyMask = mask } else { set.negatedPropertyMasks = [mask] }
        case "t": set.insert("\t")
        case "n": set.insert("\n")
        case "r": set.insert("\r")
        case "f": set.insert("\u{0C}")
        case "v": set.insert("\u{0B}")
        case "a": set.insert("\u{07}")
        case "e": set.insert("\u{1B}")
        case "x", "u":
            let value = try parseHexEscape(braced: scalar == "x" && peek() == "{", digits: scalar == "x" ? 2 : 4)
            if caseInsensitive { try rejectMultiCharacterFold(value) }
            set.insert(value)
        default:
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                throw error("escape '\\\(scalar)' is not supported")
            }
            set.insert(scalar)
        }
        return set
    }

    private mutating func parsePropertyName() throws(RegexSyntaxError) -> UInt64 {
        guard peek() == "{" else { throw error("expected '{' after \\p") }
        position += 1
        var name = ""
        while let scalar = peek(), scalar != "}" {
            name.unicodeScalars.append(scalar)
            position += 1
        }
        guard peek() == "}" else { throw error("missing '}' after a property name") }
        position += 1
        guard let mask = ScalarProperties.categoryMask(named: name) else {
            throw error("property \\p{\(name)} is not supported (only general categories such as L, N, Lu)")
        }
        return mask
    }

    private mutating func parseHexEscape(braced: Bool, digits: Int) throws(RegexSyntaxError) -> Unicode.Scalar {
        if braced { position += 1 }
        var value: UInt32 = 0
        var count = 0
        while let scalar = peek(), scalar.isASCII, let digit = UInt32(String(scalar), radix: 16) {
            if !braced && count == digits { break }
            if count == 8 { throw error("hexadecimal escape is too long") }
            value = value &* 16 &+ digit
            count += 1
            position += 1
        }
        if braced {
            guard peek() == "}" else { throw error("missing '}' in a \\x{…} escape") }
            position += 1
        }
        guard count > 0, braced || count == digits, let scalar = Unicode.Scalar(value) else {
            throw error("invalid hexadecimal escape")
        }
        return scalar
    }
}

private extension ScalarSet {
    /// The literal scalar of a one-scalar set, looking through case variants.
    var singleLiteralIgnoringCase: Unicode.Scalar? {
        guard !scalars.isEmpty, ranges.isEmpty, propertyMask == 0, negatedPropertyMasks.isEmpty, !negated
        else { return nil }
        return Unicode.Scalar(scalars[0])
    }
}
