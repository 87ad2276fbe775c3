import Foundation
import Generation
import Testing

func parameters(_ edit: (inout SamplingParameters) -> Void) -> SamplingParameters {
    var parameters = SamplingParameters()
    edit(&parameters)
    return parameters
}

struct SamplerTests {
    @Test func greedyPicksLargestLogitAndLowestIndexOnTies() {
        var sampler = Sampler(parameters: parameters { $0.temperature = 0 })
        #expect(sampler.sample(logits: [0.1, 3, -1, 2.9], history: []) == 1)
        #expect(sampler.sample(logits: [5, 1, 5], history: []) == 0)
    }

    /// Table of settings that leave exactly one candidate, whatever the seed.
    static let deterministicCases: [(name: String, parameters: SamplingParameters, logits: [Float], expected: Int)] = [
        ("top-k 1", parameters { $0.topK = 1; $0.topP = 1; $0.minP = 0 }, [1, 4, 2, 3.9], 1),
        ("tiny top-p", parameters { $0.topK = 0; $0.topP = 0.01; $0.minP = 0 }, [1, 2, 8, 3], 2),
        ("high min-p", parameters { $0.topK = 0; $0.topP = 1; $0.minP = 0.9 }, [0, 5, 1, 2], 1),
        ("low temperature", parameters { $0.temperature = 0.01; $0.topK = 0; $0.topP = 1; $0.minP = 0 }, [1, 1.5, 0], 1),
    ]

    @Test(arguments: 0..<deterministicCases.count)
    func filtersLeavingOneCandidate(index: Int) {
        let (name, base, logits, expected) = Self.deterministicCases[index]
        for seed: UInt64 in 0..<50 {
            var settings = base
            settings.seed = seed
            var sampler = Sampler(parameters: settings)
            #expect(sampler.sample(logits: logits, history: []) == expected, "\(name) seed \(seed)")
        }
    }

    @Test func minPKeepsTokensAboveThreshold() {
        // Probabilities 0.5, 0.3, 0.2; min-p 0.5 keeps p >= 0.25: tokens 0 and 1.
        let logits = [0.5, 0.3, 0.2].map { Float(log($0)) }
        var sampler = Sampler(parameters: parameters { $0.temperature = 1; $0.topK = 0; $0.topP = 1; $0.minP = 0.5; $0.seed = 3 })
        let draws = (0..<2000).map { _ in sampler.sample(logits: logits, history: []) }
        #expect(!draws.contains(2))
        #expect(draws.contains(0) && draws.contains(1))
    }

    @Test func topPKeepsSmallestSetReachingMass() {
        // Probabilities 0.5, 0.3, 0.2; top-p 0.75 needs tokens 0 and 1 (0.8 >= 0.75).
        let logits = [0.5, 0.3, 0.2].map { Float(log($0)) }
        var sampler = Sampler(parameters: parameters { $0.temperature = 1; $0.topK = 0; $0.topP = 0.75; $0.minP = 0; $0.seed = 4 })
        let draws = (0..<2000).map { _ in sampler.sample(logits: logits, history: []) }
        #expect(!draws.contains(2))
        #expect(draws.contains(1))
    }

    @Test func samplesFollowTheDistribution() {
        let probabilities: [Double] = [0.5, 0.3, 0.2]
        var sampler = Sampler(parameters: parameters { $0.temperature = 1; $0.topK = 0; $0.topP = 1; $0.minP = 0; $0.seed = 42 })
        var counts = [0, 0, 0]
        let draws = 20000
        for _ in 0..<draws {
            counts[sampler.sample(logits: probabilities.map { Float(log($0)) }, history: [])] += 1
        }
        for (count, probability) in zip(counts, probabilities) {
            #expect(abs(Double(count) / Double(draws) - probability) < 0.02)
        }
    }

    @Test func sameSeedSameTokensDifferentSeedDifferentTokens() {
        let logits = (0..<50).map { Float($0 % 7) * 0.3 }
        func run(seed: UInt64) -> [Int] {
            var sampler = Sampler(parameters: parameters { $0.temperature = 1.2; $0.topK = 0; $0.topP = 1; $0.minP = 0; $0.seed = seed })
            return (0..<100).map { _ in sampler.sample(logits: logits, history: []) }
        }
        #expect(run(seed: 7) == run(seed: 7))
        #expect(run(seed: 7) != run(seed: 8))
    }

    @Test func repeatPenaltyLowersRecentTokens() {
        // Token 0 leads before the penalty; penalised (3 / 2 = 1.5) it falls below token 2.
        var sampler = Sampler(parameters: parameters { $0.temperature = 0; $0.repeatPenalty = 2; $0.repeatLastN = 2 })
        #expect(sampler.sample(logits: [3, -1, 2], history: [0]) == 2)
        // Outside the window of the last 2 tokens, token 0 is not penalised.
        #expect(sampler.sample(logits: [3, -1, 2], history: [0, 1, 1]) == 0)
        // A negative logit is multiplied, so it becomes less likely still.
        #expect(sampler.sample(logits: [-1, -1.5, -3], history: [0]) == 1)
        // -1 means the whole history.
        var all = Sampler(parameters: parameters { $0.temperature = 0; $0.repeatPenalty = 2; $0.repeatLastN = -1 })
        #expect(all.sample(logits: [3, -1, 2], history: [0, 1, 1, 1, 1]) == 2)
    }

    @Test func rejectsInvalidParameters() {
        let invalid: [(String, SamplingParameters)] = [
            ("temperature", parameters { $0.temperature = -1 }),
            ("temperature", parameters { $0.temperature = .nan }),
            ("top-k", parameters { $0.topK = -2 }),
            ("top-p", parameters { $0.topP = 0 }),
            ("top-p", parameters { $0.topP = 1.5 }),
            ("min-p", parameters { $0.minP = -0.1 }),
            ("repeat-penalty", parameters { $0.repeatPenalty = 0 }),
            ("repeat-last-n", parameters { $0.repeatLastN = -5 }),
        ]
        for (name, settings) in invalid {
            #expect(throws: GenerationError.self, "\(name)") { try settings.validate() }
            do {
                try settings.validate()
            } catch {
                #expect(String(describing: error).contains(name))
            }
        }
        #expect(throws: Never.self) { try SamplingParameters().validate() }
    }

    @Test func seededGeneratorIsUniformInUnitInterval() {
        var random = SeededGenerator(seed: 1)
        let values = (0..<10000).map { _ in random.nextUnitInterval() }
        #expect(values.allSatisfy { $0 >= 0 && $0 < 1 })
        let mean = values.reduce(0, +) / Double(values.count)
        #expect(abs(mean - 0.5) < 0.02)
    }
}

struct StopStringTests {
    @Test func passesTextThroughWithoutStops() {
        var matcher = StopStringMatcher(stopStrings: [])
        #expect(matcher.append("abc") == ("abc", false))
        #expect(matcher.finish() == "")
    }

    @Test func findsStopSplitAcrossPieces() {
        var matcher = StopStringMatcher(stopStrings: ["STOP"])
        var emitted = ""
        var stopped = false
        for piece in ["Hel", "lo S", "TO", "P and more"] {
            let result = matcher.append(piece)
            emitted += result.emit
            if result.stopped { stopped = true; break }
        }
        #expect(stopped)
        #expect(emitted == "Hello ")
    }

    @Test func releasesHeldTextThatIsNotAStop() {
        var matcher = StopStringMatcher(stopStrings: ["</end>"])
        let first = matcher.append("a </e")
        #expect(first == ("a ", false))
        let second = matcher.append("x")
        #expect(second == ("</ex", false))
        #expect(matcher.append("</en").emit == "")
        #expect(matcher.finish() == "</en")
    }

    @Test func earliestOfSeveralStopsWins() {
        var matcher = StopStringMatcher(stopStrings: ["world", "lo w"])
        #expect(matcher.append("hello world") == ("hel", true))
    }

    @Test func ignoresEmptyStopStrings() {
        var matcher = StopStringMatcher(stopStrings: ["", "x"])
        #expect(matcher.append("abc") == ("abc", false))
    }
}

/// The filtered distribution against a slow reference that sorts the whole
/// vocabulary and applies each filter in transformers' order.
struct SamplerDistributionTests {
    func referenceDistribution(_ logits: [Float], _ settings: SamplingParameters) -> [Int: Double] {
        var order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if settings.topK > 0 { order = Array(order.prefix(settings.topK)) }
        let maximum = logits.max() ?? 0
        var probabilities = order.map { exp(Double((logits[$0] - maximum) / settings.temperature)) }
        func normalize() {
            let sum = probabilities.reduce(0, +)
            probabilities = probabilities.map { $0 / sum }
        }
        normalize()
        if settings.topP < 1 {
            var cumulative = 0.0
            var keep = order.count
            for (index, probability) in probabilities.enumerated() {
                cumulative += probability
                if cumulative >= Double(settings.topP) - 1e-12 { keep = index + 1; break }
            }
            order = Array(order.prefix(keep))
            probabilities = Array(probabilities.prefix(keep))
            normalize()
        }
        if settings.minP > 0 {
            let threshold = Double(settings.minP) * (probabilities.first ?? 0)
            let keep = max(1, probabilities.prefix { $0 >= threshold }.count)
            order = Array(order.prefix(keep))
            probabilities = Array(probabilities.prefix(keep))
            normalize()
        }
        return Dictionary(uniqueKeysWithValues: zip(order, probabilities))
    }

    @Test func matchesSortingReference() {
        var random = SeededGenerator(seed: 5)
        let settingsTable: [(Int, Float, Float, Float)] = [
            (0, 1, 0, 1), (0, 1, 0, 0.7), (40, 1, 0, 0.8), (0, 0.9, 0, 1), (0, 0.5, 0, 1.3), (0, 1, 0.05, 1),
            (40, 0.95, 0.05, 0.8), (5, 0.3, 0.2, 2), (0, 0.999, 0, 1),
        ]
        for (topK, topP, minP, temperature) in settingsTable {
            for trial in 0..<5 {
                // Logits with a peaked head and a long tail, like a language model's.
                let logits = (0..<3000).map { index -> Float in
                    let noise = Float(random.nextUnitInterval()) * 4
                    return index < 20 ? 8 + noise : noise - 4 + Float(trial)
                }
                var settings = SamplingParameters()
                settings.topK = topK
                settings.topP = topP
                settings.minP = minP
                settings.temperature = temperature
                let expected = referenceDistribution(logits, settings)
                let actual = Sampler(parameters: settings).distribution(logits: logits, history: [])
                let label = "k \(topK) p \(topP) min-p \(minP) T \(temperature) trial \(trial)"
                #expect(actual.count == expected.count, "\(label)")
                for (token, probability) in actual {
                    #expect(abs(probability - (expected[token] ?? -1)) < 1e-5, "\(label) token \(token)")
                }
            }
        }
    }
}
