import Adapters
import Foundation
import Models
import Tensor

/// The tiny random models, adapters and transformers + peft goldens under
/// Tests/Fixtures/tiny, made by scripts/fixtures/make_tiny_fixtures.py.
public enum TinyFixtures {
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny")

    public struct Case: Sendable {
        public let name: String
        public let model: String
        public let experts: [String]
        public let weights: [Double]
        public let promptIDs: [Int]
        public let continuationIDs: [Int]
        public let logprobs: [Double]
        public let greedyIDs: [Int]
    }

    public struct Rejection: Sendable {
        public let name: String
        public let model: String
        public let adapter: String
        public let mentions: [String]
    }

    public static let goldens: (cases: [Case], rejected: [Rejection]) = {
        do {
            let data = try Data(contentsOf: root.appendingPathComponent("goldens.json"))
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let cases = object["cases"] as? [[String: Any]],
                  let rejected = object["rejected"] as? [[String: Any]]
            else { return ([], []) }
            return (
                cases.map { item in
                    Case(name: item["name"] as? String ?? "?", model: item["model"] as? String ?? "?",
                         experts: item["experts"] as? [String] ?? [], weights: item["weights"] as? [Double] ?? [],
                         promptIDs: item["prompt_ids"] as? [Int] ?? [], continuationIDs: item["continuation_ids"] as? [Int] ?? [],
                         logprobs: item["logprobs"] as? [Double] ?? [], greedyIDs: item["greedy_ids"] as? [Int] ?? [])
                },
                rejected.map { item in
                    Rejection(name: item["name"] as? String ?? "?", model: item["model"] as? String ?? "?",
                              adapter: item["adapter"] as? String ?? "?", mentions: item["mentions"] as? [String] ?? [])
                })
        } catch {
            return ([], [])
        }
    }()

    public static func modelURL(_ name: String) -> URL { root.appendingPathComponent("models/\(name)") }
    public static func adapterURL(_ name: String) -> URL { root.appendingPathComponent("adapters/\(name)") }

    public static func model(_ name: String) throws -> LanguageModel {
        try LanguageModel(directory: modelURL(name))
    }

    public static func blend(_ experts: [String], _ weights: [Double], model: LanguageModel) throws -> ExpertBlend? {
        if experts.isEmpty { return nil }
        let adapters = try experts.map { try LoRAAdapter(directory: adapterURL($0), modelConfig: model.config) }
        return try ExpertBlend(experts: adapters, weights: weights)
    }
}

/// Greedy decoding with plain argmax over the logits, `count` tokens.
public func greedyTokens(_ model: LanguageModel, prompt: [Int], count: Int, delta: (any ProjectionDelta)?) throws -> [Int] {
    let state = model.makeState()
    var logits = try model.forward(prompt, state: state, delta: delta)
    var tokens: [Int] = []
    for _ in 0..<count {
        var best = 0
        for index in logits.indices where logits[index] > logits[best] { best = index }
        tokens.append(best)
        if tokens.count < count {
            logits = try model.forward([best], state: state, delta: delta)
        }
    }
    return tokens
}

/// Natural-log probabilities of `continuation` after `prompt`.
public func continuationLogprobs(_ model: LanguageModel, prompt: [Int], continuation: [Int], delta: (any ProjectionDelta)?) throws -> [Float] {
    let state = model.makeState()
    let logits = try model.forward(prompt + continuation, state: state, delta: delta, logits: .all)
    let vocab = model.config.vocabSize
    var result: [Float] = []
    var row = [Float](repeating: 0, count: vocab)
    logits.withUnsafeBufferPointer { all in
        row.withUnsafeMutableBufferPointer { output in
            for (index, token) in continuation.enumerated() {
                Kernels.logSoftmax(all.baseAddress! + (prompt.count - 1 + index) * vocab, count: vocab, output: output.baseAddress!)
                result.append(output[token])
            }
        }
    }
    return result
}
