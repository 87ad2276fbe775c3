/// Unicode property tests shared by the regex matcher, the pre-tokenizers and the
/// added-token matcher. Property data comes from the Swift standard library, so a
/// scalar assigned in a Unicode version newer than the one in the Rust reference
/// can be classified differently.
enum ScalarProperties {
    /// Bit of the White_Space property in a property mask; bits 0...29 are the general categories.
    static let whitespaceBit: UInt64 = 1 << 30

    static let letterMask: UInt64 = mask(of: [
        .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
    ])
    static let markMask: UInt64 = mask(of: [.nonspacingMark, .spacingMark, .enclosingMark])
    static let numberMask: UInt64 = mask(of: [.decimalNumber, .letterNumber, .otherNumber])
    static let decimalNumberMask: UInt64 = mask(of: [.decimalNumber])

    private static let asciiMasks: [UInt64] = (0..<128).map { value in
        computeMask(Unicode.Scalar(UInt8(value)))
    }

    /// Returns the general-category bit of `scalar`, plus `whitespaceBit` when it has White_Space.
    @inline(__always)
    static func mask(of scalar: Unicode.Scalar) -> UInt64 {
        scalar.value < 128 ? asciiMasks[Int(scalar.value)] : computeMask(scalar)
    }

    private static func computeMask(_ scalar: Unicode.Scalar) -> UInt64 {
        let properties = scalar.properties
        var mask = categoryBit(properties.generalCategory)
        if properties.isWhitespace { mask |= whitespaceBit }
        return mask
    }

    /// Unicode White_Space, which is `\s` in Oniguruma and Rust's `regex` and `char::is_whitespace`.
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        mask(of: scalar) & whitespaceBit != 0
    }

    /// General category N (Nd, Nl, No), which is Rust's `char::is_numeric`.
    static func isNumeric(_ scalar: Unicode.Scalar) -> Bool {
        mask(of: scalar) & numberMask != 0
    }

    /// Rust `regex` `\w`: Alphabetic, marks, decimal numbers, connector punctuation and Join_Control.
    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        let bit = categoryBit(properties.generalCategory)
        return bit & (markMask | decimalNumberMask | mask(of: [.connectorPunctuation])) != 0
    }

    /// Returns the mask of a `\p{…}` general category name (one or two letters, as in `L` or `Nd`).
    static func categoryMask(named name: String) -> UInt64? {
        switch name {
        case "L": return letterMask
        case "M": return markMask
        case "N": return numberMask
        case "P": return mask(of: [
            .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation,
        ])
        case "S": return mask(of: [.mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol])
        case "Z": return mask(of: [.spaceSeparator, .lineSeparator, .paragraphSeparator])
        case "C": return mask(of: [.control, .format, .surrogate, .privateUse, .unassigned])
        default: break
        }
        let categories: [String: Unicode.GeneralCategory] = [
            "Lu": .uppercaseLetter, "Ll": .lowercaseLetter, "Lt": .titlecaseLetter,
            "Lm": .modifierLetter, "Lo": .otherLetter,
            "Mn": .nonspacingMark, "Mc": .spacingMark, "Me": .enclosingMark,
            "Nd": .decimalNumber, "Nl": .letterNumber, "No": .otherNumber,
            "Pc": .connectorPunctuation, "Pd": .dashPunctuation, "Ps": .openPunctuation,
            "Pe": .closePunctuation, "Pi": .initialPunctuation, "Pf": .finalPunctuation,
            "Po": .otherPunctuation,
            "Sm": .mathSymbol, "Sc": .currencySymbol, "Sk": .modifierSymbol, "So": .otherSymbol,
            "Zs": .spaceSeparator, "Zl": .lineSeparator, "Zp": .paragraphSeparator,
            "Cc": .control, "Cf": .format, "Cs": .surrogate, "Co": .privateUse, "Cn": .unassigned,
        ]
        return categories[name].map { categoryBit($0) }
    }

    private static func mask(of categories: [Unicode.GeneralCategory]) -> UInt64 {
        categories.reduce(0) { $0 | categoryBit($1) }
    }

    private static func categoryBit(_ category: Unicode.GeneralCategory) -> UInt64 {
        let index: Int
        switch category {
        case .uppercaseLetter: index = 0
        case .lowercaseLetter: index = 1
        case .titlecaseLetter: index = 2
        case .modifierLetter: index = 3
        case .otherLetter: index = 4
        case .nonspacingMark: index = 5
        case .spacingMark: index = 6
        case .enclosingMark: index = 7
        case .decimalNumber: index = 8
        case .letterNumber: index = 9
        case .otherNumber: index = 10
        case .connectorPunctuation: index = 11
        case .dashPunctuation: index = 12
        case .openPunctuation: index = 13
        case .closePunctuation: index = 14
        case .initialPunctuation: index = 15
        case .finalPunctuation: index = 16
        case .otherPunctuation: index = 17
        case .mathSymbol: index = 18
        case .currencySymbol: index = 19
        case .modifierSymbol: index = 20
        case .otherSymbol: index = 21
        case .spaceSeparator: index = 22
        case .lineSeparator: index = 23
        case .paragraphSeparator: index = 24
        case .control: index = 25
        case .format: index = 26
        case .surrogate: index = 27
        case .privateUse: index = 28
        case .unassigned: index = 29
        @unknown default: index = 29
        }
        return 1 << UInt64(index)
    }

    /// Returns the simple case folding of `scalar` for case-insensitive regex matching:
    /// the lowercase of its uppercase when both mappings are single scalars
    /// (so U+017F LATIN SMALL LETTER LONG S folds to "s" as in Oniguruma).
    static func simpleCaseFold(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        if scalar.value < 128 {
            if scalar.value >= 65 && scalar.value <= 90 {
                return Unicode.Scalar(UInt8(scalar.value + 32))
            }
            return scalar
        }
        let upper = singleScalar(scalar.properties.uppercaseMapping) ?? scalar
        if let lower = singleScalar(upper.properties.lowercaseMapping) { return lower }
        return singleScalar(scalar.properties.lowercaseMapping) ?? scalar
    }

    /// Returns the single-scalar uppercase mapping of `scalar`, or `scalar` itself.
    static func simpleUppercase(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        singleScalar(scalar.properties.uppercaseMapping) ?? scalar
    }

    private static func singleScalar(_ text: String) -> Unicode.Scalar? {
        var iterator = text.unicodeScalars.makeIterator()
        guard let first = iterator.next(), iterator.next() == nil else { return nil }
        return first
    }
}
