import Foundation

/// The `normalizer` stage of tokenizer.json.
///
/// Supported types: NFC, NFD, NFKC, NFKD, Lowercase and Sequence. Unicode
/// normalization uses Foundation (ICU), whose Unicode version can differ from the
/// Rust `unicode-normalization` crate for recently assigned characters.
indirect enum Normalizer: Sendable {
    case nfc
    case nfd
    case nfkc
    case nfkd
    case lowercase
    case sequence([Normalizer])

    static let supportedTypes = "NFC, NFD, NFKC, NFKD, Lowercase or Sequence"

    /// Parses a normalizer object; returns nil for a JSON null.
    static func parse(_ node: JSONNode) throws -> Normalizer? {
        if node.isNull { return nil }
        let typeNode = try node.child("type")
        switch try typeNode.string() {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Sequence":
            let items = try node.child("normalizers").array()
            return .sequence(try items.map { item in
                guard let normalizer = try parse(item) else { throw item.invalid(expected: "a normalizer object") }
                return normalizer
            })
        default:
            throw typeNode.unsupported(expected: supportedTypes)
        }
    }

    /// Returns the normalized form of `scalars` (Unicode scalar values).
    func normalize(_ scalars: [UInt32]) -> [UInt32] {
        switch self {
        case .nfc: return Self.transform(scalars) { $0.precomposedStringWithCanonicalMapping }
        case .nfd: return Self.transform(scalars) { $0.decomposedStringWithCanonicalMapping }
        case .nfkc: return Self.transform(scalars) { $0.precomposedStringWithCompatibilityMapping }
        case .nfkd: return Self.transform(scalars) { $0.decomposedStringWithCompatibilityMapping }
        case .lowercase:
            // Per scalar, without context (no final-sigma rule), as Rust's char::to_lowercase.
            var result: [UInt32] = []
            result.reserveCapacity(scalars.count)
            for value in scalars {
                if value < 128 {
                    result.append(value >= 65 && value <= 90 ? value + 32 : value)
                } else if let scalar = Unicode.Scalar(value) {
                    result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars.map(\.value))
                }
            }
            return result
        case let .sequence(normalizers):
            return normalizers.reduce(scalars) { $1.normalize($0) }
        }
    }

    private static func transform(_ scalars: [UInt32], _ body: (String) -> String) -> [UInt32] {
        // Only non-ASCII text can change under Unicode normalization.
        if scalars.allSatisfy({ $0 < 0x80 }) { return scalars }
        var text = String.UnicodeScalarView()
        for value in scalars {
            if let scalar = Unicode.Scalar(value) { text.append(scalar) }
        }
        return body(String(text)).unicodeScalars.map(\.value)
    }
}
