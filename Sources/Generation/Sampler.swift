import Foundation

/// Decoding settings. Defaults follow llama.cpp's command-line defaults.
public struct SamplingParameters: Sendable, Equatable {
    /// Softmax temperature; 0 picks the most likely token (greedy).
    public var temperature: Float = 0.8
    /// Keep only the `topK` most likely tokens; 0 disables.
    public var topK: Int = 40
    /// Keep the smallest set of most likely tokens whose probability reaches `topP`; 1 disables.
    public var topP: Float = 0.95
    /// Drop tokens less likely than `minP` times the most likely one; 0 disables.
    public var minP: Float = 0.05
    /// Divide positive logits (multiply negative ones) of recently seen tokens; 1 disables.
    public var repeatPenalty: Float = 1.0
    /// How many of the latest tokens (prompt included) the penalty looks at; -1 means all.
    public var repeatLastN: Int = 64
    public var seed: UInt64 = 0

    public init() {}

    /// Checks ranges; the message names the option.
    public func validate() throws {
        func fail(_ name: String, _ value: Any, _ expected: String) -> GenerationError {
            .invalidParameter(name: name, value: "\(value)", expected: expected)
        }
        guard temperature.isFinite, temperature >= 0 else { throw fail("temperature", temperature, "a number >= 0") }
        guard topK >= 0 else { throw fail("top-k", topK, "an integer >= 0") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw fail("top-p", topP, "a number in (0, 1]") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw fail("min-p", minP, "a number in [0, 1]") }
        guard repeatPenalty.isFinite, repeatPenalty > 0 else { throw fail("repeat-penalty", repeatPenalty, "a number > 0") }
        guard repeatLastN >= -1 else { throw fail("repeat-last-n", repeatLastN, "an integer >= -1") }
    }
}

/// Picks the next token from logits. The steps run in the order transformers
/// applies them: repetition penalty, temperature, top-k, top-p, min-p, then a
/// draw from what is left.
public struct Sampler {
    public let parameters: SamplingParameters
    private var random: SeededGenerator

    public init(parameters: SamplingParameters) {
        self.parameters = parameters
        random = SeededGenerator(seed: parameters.seed)
    }

    /// The next token; `history` is every token so far (prompt and generated).
    public mutating func sample(logits: [Float], history: [Int]) -> Int {
        if parameters.temperature == 0 {
            var penalized = logits
            applyRepeatPenalty(&penalized, history: history)
            return Self.argmax(penalized)
        }
        let choices = distribution(logits: logits, history: history)
        var draw = random.nextUnitInterval()
        for choice in choices {
            draw -= choice.probability
            if draw < 0 { return choice.token }
        }
        return choices.last?.token ?? Self.argmax(logits)
    }

    /// The tokens left after every filter, with their renormalized
    /// probabilities. Greedy decoding (temperature 0) gives the one most
    /// likely token with probability 1.
    public func distribution(logits input: [Float], history: [Int]) -> [(token: Int, probability: Double)] {
        var logits = input
        applyRepeatPenalty(&logits, history: history)
        if parameters.temperature == 0 {
            return [(Self.argmax(logits), 1)]
        }
        guard let maximum = logits.lazy.filter({ !$0.isNaN }).max() else { return [] }

        // Unnormalized probabilities after temperature: e = exp((logit - max) / T).
        let temperature = parameters.temperature
        let weights = logits.map { $0.isNaN ? 0 : exp(($0 - maximum) / temperature) }
        let total = weights.reduce(0.0) { $0 + Double($1) }

        var candidates = orderedCandidates(logits, weights: weights, total: total)
        var mass = parameters.topK > 0 ? candidates.reduce(0.0) { $0 + Double(weights[$1]) } : total
        if parameters.topP < 1 {
            // Keep the most likely tokens until their share reaches top_p.
            var cumulative = 0.0
            var keep = candidates.count
            for (index, token) in candidates.enumerated() {
                cumulative += Double(weights[token])
                if cumulative >= Double(parameters.topP) * mass {
                    keep = index + 1
                    break
                }
            }
            candidates.removeLast(candidates.count - keep)
            mass = cumulative
        }
        if parameters.minP > 0, let first = candidates.first {
            let threshold = parameters.minP * weights[first]
            let keep = max(1, candidates.prefix { weights[$0] >= threshold }.count)
            candidates.removeLast(candidates.count - keep)
            mass = candidates.reduce(0.0) { $0 + Double(weights[$1]) }
        }
        return candidates.map { ($0, Double(weights[$0]) / mass) }
    }

    /// The tokens the filters choose among. Sorted by logit, most likely first
    /// (ties: lower id first), whenever top-k, top-p or min-p needs an order;
    /// in id order when no filter is on, which avoids sorting the vocabulary.
    private func orderedCandidates(_ logits: [Float], weights: [Float], total: Double) -> [Int] {
        let byLikelihood: (Int, Int) -> Bool = { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        let valid = logits.indices.filter { !logits[$0].isNaN }
        if parameters.topK > 0, parameters.topK < valid.count {
            return Self.topIndices(valid, count: parameters.topK, by: byLikelihood)
        }
        guard parameters.topP < 1 || parameters.minP > 0 else { return valid }

        // Sorting only the tokens above a tiny share of the top one is exact
        // when the tail left out cannot reach top-p's cut and lies below
        // min-p's threshold; otherwise sort everything.
        let cutoff = Float(0x1p-20)
        let head = valid.filter { weights[$0] >= cutoff }
        let tail = total - head.reduce(0.0) { $0 + Double(weights[$1]) }
        let topPSafe = parameters.topP >= 1 || tail < (1 - Double(parameters.topP)) * total
        let minPSafe = parameters.minP == 0 || parameters.minP > cutoff
        return (topPSafe && minPSafe ? head : valid).sorted(by: byLikelihood)
    }

    /// The `count` first elements of `indices` in `order`, sorted; a bounded
    /// selection, so the cost grows with the vocabulary only linearly.
    static func topIndices(_ indices: [Int], count: Int, by order: (Int, Int) -> Bool) -> [Int] {
        var best = Array(indices.prefix(count)).sorted(by: order)
        for index in indices.dropFirst(count) {
            guard let last = best.last, order(index, last) else { continue }
            // Insert keeping `best` sorted; top-k lists are short.
            let position = best.firstIndex { order(index, $0) } ?? best.count
            best.insert(index, at: position)
            best.removeLast()
        }
        return best
    }

    private func applyRepeatPenalty(_ logits: inout [Float], history: [Int]) {
        guard parameters.repeatPenalty != 1, parameters.repeatLastN != 0 else { return }
        let window = parameters.repeatLastN < 0 ? history[...] : history.suffix(parameters.repeatLastN)
        for token in Set(window) where token >= 0 && token < logits.count {
            let value = logits[token]
            logits[token] = value > 0 ? value / parameters.repeatPenalty : value * parameters.repeatPenalty
        }
    }

    /// Index of the largest logit; the lowest index among equal maxima.
    public static func argmax(_ logits: [Float]) -> Int {
        var best = 0
        for index in logits.indices where logits[index] > logits[best] {
            best = index
        }
        return best
    }

}
