import Foundation

/// A blend named in a request: `base`, one expert (`pirate`, weight 1), or
/// `pirate:0.7+json:0.3`. Names are those given at load time.
public struct BlendSpec: Sendable, Equatable {
    public var terms: [(name: String, weight: Double)]

    public init(terms: [(name: String, weight: Double)]) {
        self.terms = terms
    }

    public static func == (lhs: BlendSpec, rhs: BlendSpec) -> Bool {
        lhs.terms.count == rhs.terms.count && zip(lhs.terms, rhs.terms).allSatisfy { $0.name == $1.name && $0.weight == $1.weight }
    }

    /// Parses `name:weight+name:weight`; a term without `:weight` has weight 1.
    /// Throws for empty names, non-numeric or non-finite weights and repeated names.
    public init(parsing text: String, param: String = "model") throws {
        var terms: [(name: String, weight: Double)] = []
        for term in text.split(separator: "+", omittingEmptySubsequences: false) {
            let parts = term.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            let name = parts[0]
            guard !name.isEmpty else {
                throw APIError.invalidRequest("invalid blend '\(text)': empty expert name; write name:weight+name:weight", param: param)
            }
            var weight = 1.0
            if parts.count == 2 {
                guard let value = Double(parts[1]) else {
                    throw APIError.invalidRequest("invalid blend '\(text)': weight '\(parts[1])' of '\(name)' is not a number", param: param)
                }
                guard value.isFinite else {
                    throw APIError.invalidRequest("invalid blend '\(text)': weight '\(parts[1])' of '\(name)' is not a finite number", param: param)
                }
                weight = value
            }
            guard !terms.contains(where: { $0.name == name }) else {
                throw APIError.invalidRequest("invalid blend '\(text)': expert '\(name)' appears twice", param: param)
            }
            terms.append((name, weight))
        }
        self.terms = terms
    }

    /// `pirate:0.7+json:0.3`, or `base` for no experts.
    public var text: String {
        terms.isEmpty ? "base" : terms.map { "\($0.name):\(formatWeight($0.weight))" }.joined(separator: "+")
    }
}

func formatWeight(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}
