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
    public mutating func sample(logits input: [Float], history: [Int]) -> Int {
        var logits = input
        applyRepeatPenalty(&logits, history: history)
        if parameters.temperature == 0 {
            return Self.argmax(logits)
        }

        // Candidates sorted by logit, most likely first (ties: lower id first).
        var candidates = logits.indices.filter { !logits[$0].isNaN }
        candidates.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if parameters.topK > 0, candidates.count > parameters.topK {
            candidates.removeLast(candidates.count - parameters.topK)
        }
        guard !candidates.isEmpty else { return Self.argmax(input) }

        var probabilities = Self.softmax(candidates.map { logits[$0] / parameters.temperature })
        if parameters.topP < 1 {
            var cumulative: Float = 0
            var keep = probabilities.count
            for (index, probability) in probabilities.enumerated() {
                cumulative += probability
                if cumulative >= parameters.topP {
                    keep = index + 1
                    break
                }
            }
            candidates.removeLast(candidates.count - keep)
            probabilities = Self.renormalized(Array(probabilities.prefix(keep)))
        }
        if parameters.minP > 0, let top = probabilities.first {
            let threshold = parameters.minP * top
            let keep = max(1, probabilities.prefix { $0 >= threshold }.count)
            candidates.removeLast(candidates.count - keep)
            probabilities = Self.renormalized(Array(probabilities.prefix(keep)))
        }

        var draw = Float(random.nextUnitInterval())
        for (index, probability) in probabilities.enumerated() {
            draw -= probability
            if draw < 0 { return candidates[index] }
        }
        return candidates[candidates.count - 1]
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

    static func softmax(_ values: [Float]) -> [Float] {
        guard let maximum = values.max() else { return [] }
        let exponentials = values.map { exp($0 - maximum) }
        let sum = exponentials.reduce(0, +)
        return exponentials.map { $0 / sum }
    }

    static func renormalized(_ values: [Float]) -> [Float] {
        let sum = values.reduce(0, +)
        return sum > 0 ? values.map { $0 / sum } : values
    }
}
