/// A set of Unicode scalars that one regex step matches: a literal, `.`, an
/// escape such as `\s` or `\p{L}`, or a bracketed class.
struct ScalarSet: Sendable {
    var scalars: [UInt32] = []
    var ranges: [ClosedRange<UInt32>] = []
    /// Matches a scalar whose property mask shares a bit with this mask.
    var propertyMask: UInt64 = 0
    /// Each entry matches a scalar whose property mask shares no bit with it (`\S`, `\P{L}`, `\D`).
    var negatedPropertyMasks: [UInt64] = []
    var negated = false
    /// Also match the simple case folding and uppercase of the input scalar, as inside `(?i:…)`.
    var caseInsensitive = false

    /// The single literal scalar when the set is exactly one case-sensitive scalar.
    var singleLiteral: UInt32? {
        guard scalars.count == 1, ranges.isEmpty, propertyMask == 0, negatedPropertyMasks.isEmpty,
              !negated, !caseInsensitive
        else { return nil }
        return scalars[0]
    }

    @inline(__always)
    func contains(_ scalar: UInt32, properties: UInt64) -> Bool {
        var found = containsIgnoringNegation(scalar, properties: properties)
        if !found && caseInsensitive, let value = Unicode.Scalar(scalar) {
            let folded = ScalarProperties.simpleCaseFold(value).value
            let upper = ScalarProperties.simpleUppercase(value).value
            found = (folded != scalar && containsLiteral(folded)) || (upper != scalar && containsLiteral(upper))
        }
        return found != negated
    }

    private func containsIgnoringNegation(_ scalar: UInt32, properties: UInt64) -> Bool {
        if properties & propertyMask != 0 { return true }
        for mask in negatedPropertyMasks where properties & mask == 0 { return true }
        return containsLiteral(scalar)
    }

    private func containsLiteral(_ scalar: UInt32) -> Bool {
        for value in scalars where value == scalar { return true }
        for range in ranges where range.contains(scalar) { return true }
        return false
    }

    /// Adds `scalar` and, for a case-insensitive set, its case variants.
    mutating func insert(_ scalar: Unicode.Scalar) {
        scalars.append(scalar.value)
        if caseInsensitive {
            for variant in [ScalarProperties.simpleCaseFold(scalar), ScalarProperties.simpleUppercase(scalar)]
            where !scalars.contains(variant.value) {
                scalars.append(variant.value)
            }
        }
    }
}
