import Foundation
import Models

/// PEFT's rules for which modules an adapter targets and with what rank and
/// alpha (peft 0.21: `check_target_module_exists` and `get_pattern_key`).
extension AdapterConfig {
    /// Whether PEFT wraps the module `name` (a `named_modules()` name such as
    /// `model.layers.3.self_attn.q_proj`) with a LoRA layer.
    func targets(_ name: String, modelType: String) throws -> Bool {
        if let excluded = excludeModules, try matches(excluded, name) {
            return false
        }
        let targets = targetModules ?? AdapterConfig.defaultTargets(modelType: modelType).map { .names($0) }
        switch targets ?? .names([]) {
        case let .pattern(pattern):
            // A regular expression target ignores layers_to_transform, as in PEFT.
            return try PythonRegex.fullMatch(pattern, name, file: file, key: "target_modules")
        case .allLinear:
            return try matchesNameList(ProjectionKind.allCases.map(\.rawValue), name)
        case let .names(names):
            return try matchesNameList(names, name)
        }
    }

    private func matches(_ targets: TargetModules, _ name: String) throws -> Bool {
        switch targets {
        case let .pattern(pattern): return try PythonRegex.fullMatch(pattern, name, file: file, key: "exclude_modules")
        case let .names(names): return names.contains(name) || names.contains { name.hasSuffix(".\($0)") }
        case .allLinear: return false
        }
    }

    /// A list target: an exact full name matches outright; a suffix match
    /// must also pass the layers_to_transform filter.
    private func matchesNameList(_ names: [String], _ name: String) throws -> Bool {
        if names.contains(name) { return true }
        guard names.contains(where: { name.hasSuffix(".\($0)") }) else { return false }
        guard let layers = layersToTransform else { return true }
        guard let index = try layerIndex(of: name) else { return false }
        return layers.contains(index)
    }

    /// The first numbered path segment after a layers_pattern (or after any
    /// segment when there is none), e.g. 3 in `model.layers.3.mlp.up_proj`.
    private func layerIndex(of name: String) throws -> Int? {
        let patterns = layersPattern.isEmpty
            ? [#".*?\.[^.]*\.(?<idx>\d+)\."#]
            : layersPattern.map { "(?:^|.*?\\.)\(PythonRegex.translate($0))\\.(?<idx>\\d+)\\." }
        for pattern in patterns {
            if let captured = try PythonRegex.firstCapture(pattern, name, file: file, key: "layers_pattern") {
                return Int(captured)
            }
        }
        return nil
    }

    /// Rank for a module: the first rank_pattern key (in file order) that
    /// matches the end of the name at a dot boundary, else `r`.
    public func rank(for name: String) throws -> Int {
        for (pattern, rank) in rankPattern where try PythonRegex.matchesSuffix(pattern, name, file: file, key: "rank_pattern") {
            return rank
        }
        return r
    }

    /// Alpha for a module, looked up in alpha_pattern independently of the rank.
    public func alpha(for name: String) throws -> Double {
        for (pattern, alpha) in alphaPattern where try PythonRegex.matchesSuffix(pattern, name, file: file, key: "alpha_pattern") {
            return alpha
        }
        return loraAlpha
    }

    /// PEFT's scaling of a module: `alpha / r`, or `alpha / sqrt(r)` with rsLoRA.
    public func scaling(for name: String) throws -> Double {
        let rank = Double(try rank(for: name))
        let alpha = try alpha(for: name)
        return useRslora ? alpha / rank.squareRoot() : alpha / rank
    }
}

/// Python `re` patterns evaluated with ICU regular expressions. The syntax the
/// two share covers what adapter configs use; Python's named groups
/// `(?P<name>…)` are rewritten to `(?<name>…)`.
enum PythonRegex {
    static func translate(_ pattern: String) -> String {
        pattern.replacingOccurrences(of: "(?P<", with: "(?<")
    }

    static func compile(_ pattern: String, file: String, key: String) throws -> NSRegularExpression {
        do {
            return try NSRegularExpression(pattern: pattern)
        } catch {
            throw AdapterError.invalidConfig(file: file, key: key, expected: "a valid regular expression", actual: "\"\(pattern)\"")
        }
    }

    /// `re.fullmatch(pattern, text)`.
    static func fullMatch(_ pattern: String, _ text: String, file: String, key: String) throws -> Bool {
        let regex = try compile("^(?:\(translate(pattern)))$", file: file, key: key)
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// `re.match(rf"(.*\.)?({pattern})$", text)`: the pattern matches a
    /// dot-separated suffix of the text (or all of it).
    static func matchesSuffix(_ pattern: String, _ text: String, file: String, key: String) throws -> Bool {
        let regex = try compile("^(?:.*\\.)?(?:\(translate(pattern)))$", file: file, key: key)
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// The group named `idx` of `re.match(pattern, text)` (anchored at the start only), or nil.
    static func firstCapture(_ pattern: String, _ text: String, file: String, key: String) throws -> String? {
        let regex = try compile(pattern, file: file, key: key)
        guard let match = regex.firstMatch(in: text, options: .anchored, range: NSRange(text.startIndex..., in: text)),
              let range = Range(match.range(withName: "idx"), in: text)
        else { return nil }
        return String(text[range])
    }
}
