/// A canonical form of a Jinja chat template, so that templates that differ only
/// in spelling are recognized as the same known template.
///
/// Two templates get the same canonical form when they differ only in these ways:
/// - whitespace inside tags,
/// - whitespace that Jinja removes: `-` markers, `trim_blocks` and `lstrip_blocks`
///   (which transformers enables), and one trailing newline,
/// - quote style and escapes of string literals,
/// - `x['name']` versus `x.name`,
/// - adjacent string literals joined with `+`,
/// - a constant `{{ 'text' }}` versus the same literal text,
/// - comments.
enum ChatTemplateCanonicalForm {
    struct SyntaxError: Error {
        let message: String
    }

    private enum TagKind {
        case variable  // {{ … }}
        case block  // {% … %}
        case comment  // {# … #}
    }

    private enum Item {
        case data(String)
        case tag(TagKind, body: String, leftMarker: Unicode.Scalar?, rightMarker: Unicode.Scalar?)
    }

    /// Returns the 64-bit FNV-1a hash of the canonical form, or nil for a template that cannot be lexed.
    static func fingerprint(_ source: String) -> UInt64? {
        guard let canonical = try? canonicalize(source) else { return nil }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in canonical.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    static func canonicalize(_ source: String) throws(SyntaxError) -> String {
        // Jinja turns "\r\n" and "\r" into "\n", then drops one trailing newline
        // (keep_trailing_newline is off).
        var text = normalizeNewlines(source)
        if text.unicodeScalars.last == "\n" { text.unicodeScalars.removeLast() }
        var items = try lex(Array(text.unicodeScalars))
        applyWhitespaceControl(&items)

        var output = ""
        var pendingData = ""
        func flushData() {
            if !pendingData.isEmpty {
                output += "D" + quote(pendingData)
                pendingData = ""
            }
        }
        for item in items {
            switch item {
            case let .data(data):
                pendingData += data
            case let .tag(kind, body, _, _):
                switch kind {
                case .comment:
                    continue
                case .variable:
                    let tokens = try canonicalTokens(body)
                    if tokens.count == 1, case let .string(constant) = tokens[0] {
                        pendingData += constant
                    } else {
                        flushData()
                        output += "V" + render(tokens)
                    }
                case .block:
                    flushData()
                    output += "B" + render(try canonicalTokens(body))
                }
            }
        }
        flushData()
        return output
    }

    // MARK: Lexing

    private static func lex(_ scalars: [Unicode.Scalar]) throws(SyntaxError) -> [Item] {
        var items: [Item] = []
        var data = String.UnicodeScalarView()
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "{", index + 1 < scalars.count, let kind = tagKind(scalars[index + 1]) {
                if !data.isEmpty {
                    items.append(.data(String(data)))
                    data = String.UnicodeScalarView()
                }
                index += 2
                var leftMarker: Unicode.Scalar?
                if index < scalars.count, scalars[index] == "-" || scalars[index] == "+" {
                    leftMarker = scalars[index]
                    index += 1
                }
                let close: Unicode.Scalar = kind == .variable ? "}" : (kind == .block ? "%" : "#")
                var body = String.UnicodeScalarView()
                var quote: Unicode.Scalar?
                var closed = false
                while index < scalars.count {
                    let current = scalars[index]
                    if let open = quote {
                        body.append(current)
                        if current == "\\", index + 1 < scalars.count {
                            body.append(scalars[index + 1])
                            index += 2
                            continue
                        }
                        if current == open { quote = nil }
                        index += 1
                        continue
                    }
                    if kind != .comment && (current == "'" || current == "\"") {
                        quote = current
                        body.append(current)
                        index += 1
                        continue
                    }
                    if current == close, index + 1 < scalars.count, scalars[index + 1] == "}" {
                        closed = true
                        index += 2
                        break
                    }
                    body.append(current)
                    index += 1
                }
                guard closed else { throw SyntaxError(message: "unterminated tag") }
                var rightMarker: Unicode.Scalar?
                if let last = body.last, last == "-" || last == "+" {
                    rightMarker = last
                    body.removeLast()
                }
                let bodyText = String(body)
                if kind == .block && bodyText.strippingLeadingWhitespace.hasPrefix("raw") {
                    throw SyntaxError(message: "raw blocks are not supported")
                }
                items.append(.tag(kind, body: bodyText, leftMarker: leftMarker, rightMarker: rightMarker))
            } else {
                data.append(scalar)
                index += 1
            }
        }
        if !data.isEmpty { items.append(.data(String(data))) }
        return items
    }

    private static func tagKind(_ scalar: Unicode.Scalar) -> TagKind? {
        switch scalar {
        case "{": return .variable
        case "%": return .block
        case "#": return .comment
        default: return nil
        }
    }

    /// Applies `-` markers, `lstrip_blocks` and `trim_blocks` to the data around each tag.
    private static func applyWhitespaceControl(_ items: inout [Item]) {
        for index in items.indices {
            guard case let .tag(kind, _, leftMarker, rightMarker) = items[index] else { continue }
            let isBlock = kind != .variable
            if index > 0, case var .data(previous) = items[index - 1] {
                if leftMarker == "-" {
                    previous = previous.strippingTrailingWhitespace
                } else if isBlock && leftMarker != "+" {
                    previous = previous.strippingIndentationOfLastLine(atTemplateStart: index == 1)
                }
                items[index - 1] = .data(previous)
            }
            if index + 1 < items.count, case var .data(next) = items[index + 1] {
                if rightMarker == "-" {
                    next = next.strippingLeadingWhitespace
                } else if isBlock && rightMarker != "+" {
                    if next.hasPrefix("\r\n") {
                        next.unicodeScalars.removeFirst(2)
                    } else if next.unicodeScalars.first == "\n" || next.unicodeScalars.first == "\r" {
                        next.unicodeScalars.removeFirst()
                    }
                }
                items[index + 1] = .data(next)
            }
        }
    }

    // MARK: Expressions

    private enum Token: Equatable {
        case string(String)
        case word(String)
        case symbol(String)
    }

    /// Names that are methods of a Python dict, where `x['name']` and `x.name` differ.
    private static let dictMethodNames: Set<String> = [
        "clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem", "setdefault", "update", "values",
    ]

    private static func canonicalTokens(_ body: String) throws(SyntaxError) -> [Token] {
        var tokens = try tokenize(Array(body.unicodeScalars))

        // x['name'] -> x.name
        var index = 0
        while index + 2 < tokens.count {
            if tokens[index] == .symbol("["), case let .string(name) = tokens[index + 1],
               tokens[index + 2] == .symbol("]"), isIdentifier(name), !dictMethodNames.contains(name),
               index > 0, isSubscriptable(tokens[index - 1]) {
                tokens.replaceSubrange(index...(index + 2), with: [.symbol("."), .word(name)])
            }
            index += 1
        }

        // 'a' + 'b' -> 'ab' where no operator binds tighter on either side.
        let tighterBefore: Set<String> = ["-", "*", "/", "%", "|", ".", "**", "//"]
        let tighterAfter: Set<String> = ["*", "/", "%", "|", ".", "[", "(", "**", "//"]
        index = 0
        while index + 2 < tokens.count {
            if case let .string(left) = tokens[index], tokens[index + 1] == .symbol("+"),
               case let .string(right) = tokens[index + 2] {
                let before: String? = index > 0 ? symbolText(tokens[index - 1]) : nil
                let after: String? = index + 3 < tokens.count ? symbolText(tokens[index + 3]) : nil
                if !tighterBefore.contains(before ?? ""), !tighterAfter.contains(after ?? "") {
                    tokens.replaceSubrange(index...(index + 2), with: [.string(left + right)])
                    continue
                }
            }
            index += 1
        }
        return tokens
    }

    /// Returns whether a `[` after `token` is a subscript rather than the start of a list literal.
    private static func isSubscriptable(_ token: Token) -> Bool {
        switch token {
        case let .word(word): return !keywords.contains(word)
        case .symbol(")"), .symbol("]"): return true
        default: return false
        }
    }

    private static let keywords: Set<String> = [
        "and", "or", "not", "in", "is", "if", "else", "elif", "for", "set", "endif", "endfor", "recursive",
    ]

    private static func symbolText(_ token: Token) -> String? {
        if case let .symbol(text) = token { return text }
        return nil
    }

    private static func tokenize(_ scalars: [Unicode.Scalar]) throws(SyntaxError) -> [Token] {
        var tokens: [Token] = []
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar.properties.isWhitespace {
                index += 1
            } else if scalar == "'" || scalar == "\"" {
                let (value, next) = try parseStringLiteral(scalars, from: index)
                tokens.append(.string(value))
                index = next
            } else if isWordScalar(scalar) {
                var word = String.UnicodeScalarView()
                while index < scalars.count, isWordScalar(scalars[index]) {
                    word.append(scalars[index])
                    index += 1
                }
                tokens.append(.word(String(word)))
            } else {
                // Two-character operators stay one token so that "//" and "**" are recognized.
                if index + 1 < scalars.count {
                    let pair = String(String.UnicodeScalarView([scalar, scalars[index + 1]]))
                    if ["==", "!=", "<=", ">=", "//", "**"].contains(pair) {
                        tokens.append(.symbol(pair))
                        index += 2
                        continue
                    }
                }
                tokens.append(.symbol(String(scalar)))
                index += 1
            }
        }
        return tokens
    }

    /// Decodes a Jinja string literal (Python `unicode-escape` rules after newline normalization).
    private static func parseStringLiteral(_ scalars: [Unicode.Scalar], from start: Int) throws(SyntaxError) -> (String, Int) {
        let quote = scalars[start]
        var value = String.UnicodeScalarView()
        var index = start + 1
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == quote { return (normalizeNewlines(String(value)), index + 1) }
            if scalar == "\\", index + 1 < scalars.count {
                let escaped = scalars[index + 1]
                index += 2
                switch escaped {
                case "n": value.append("\n")
                case "t": value.append("\t")
                case "r": value.append("\r")
                case "\\": value.append("\\")
                case "'": value.append("'")
                case "\"": value.append("\"")
                case "a": value.append("\u{07}")
                case "b": value.append("\u{08}")
                case "f": value.append("\u{0C}")
                case "v": value.append("\u{0B}")
                case "\n": break  // a backslash-newline continues the line
                case "x", "u", "U":
                    let digits = escaped == "x" ? 2 : (escaped == "u" ? 4 : 8)
                    guard index + digits <= scalars.count,
                          let code = UInt32(String(String.UnicodeScalarView(scalars[index..<(index + digits)])), radix: 16),
                          let decoded = Unicode.Scalar(code)
                    else { throw SyntaxError(message: "invalid escape in a string literal") }
                    value.append(decoded)
                    index += digits
                default:
                    // Python keeps unknown escapes, backslash included.
                    value.append("\\")
                    value.append(escaped)
                }
                continue
            }
            value.append(scalar)
            index += 1
        }
        throw SyntaxError(message: "unterminated string literal")
    }

    private static func normalizeNewlines(_ text: String) -> String {
        var result = String.UnicodeScalarView()
        var iterator = text.unicodeScalars.makeIterator()
        var pendingCarriageReturn = false
        while let scalar = iterator.next() {
            if pendingCarriageReturn {
                pendingCarriageReturn = false
                result.append("\n")
                if scalar == "\n" { continue }
            }
            if scalar == "\r" {
                pendingCarriageReturn = true
            } else {
                result.append(scalar)
            }
        }
        if pendingCarriageReturn { result.append("\n") }
        return String(result)
    }

    private static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "_" || (scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)))
    }

    private static func isIdentifier(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return text.unicodeScalars.allSatisfy(isWordScalar)
    }

    private static func render(_ tokens: [Token]) -> String {
        var output = ""
        var previousWasWord = false
        for token in tokens {
            switch token {
            case let .string(value):
                output += quote(value)
                previousWasWord = false
            case let .word(word):
                if previousWasWord { output += " " }
                output += word
                previousWasWord = true
            case let .symbol(symbol):
                output += symbol
                previousWasWord = false
            }
        }
        return output
    }

    /// Quotes text unambiguously: backslash, quote and control characters are escaped.
    private static func quote(_ text: String) -> String {
        var output = "'"
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": output += "\\\\"
            case "'": output += "\\'"
            case "\n": output += "\\n"
            default:
                if scalar.value < 0x20 {
                    output += "\\x" + String(scalar.value, radix: 16)
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        return output + "'"
    }
}

private extension String {

    /// Python `str.rstrip()`.
    var strippingTrailingWhitespace: String {
        var scalars = unicodeScalars
        while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }

    /// Python `str.lstrip()`.
    var strippingLeadingWhitespace: String {
        String(unicodeScalars.drop(while: { $0.properties.isWhitespace }))
    }

    /// Removes spaces and tabs between the last newline and the end (Jinja's
    /// `lstrip_blocks`); the first line counts only at the start of the template.
    func strippingIndentationOfLastLine(atTemplateStart: Bool) -> String {
        var scalars = Array(unicodeScalars)
        var start = scalars.count
        while start > 0, scalars[start - 1] == " " || scalars[start - 1] == "\t" { start -= 1 }
        let atLineStart = start == 0 ? atTemplateStart : scalars[start - 1] == "\n" || scalars[start - 1] == "\r"
        guard atLineStart else { return self }
        scalars.removeSubrange(start...)
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
