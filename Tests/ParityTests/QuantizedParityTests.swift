import Foundation
import LoRAMoE
import Testing

/// Quantized weights and an f16 KV cache against the float32 transformers
/// goldens. They cannot match exactly; these are the documented tolerances
/// on the mean absolute difference of per-token log-probabilities (natural
/// log), over every case of each real model's goldens, experts included: with
/// quantized weights the engine keeps the experts' stacks in f16.
struct QuantizedParityTests {
    static let tolerances: [(option: String, quantization: DType?, cache: KVCacheType, meanTolerance: Double)] = [
        ("kv-f16", nil, .f16, 0.005),
        ("q8", .q8_0, .f32, 0.05),
        ("q4", .q4_0, .f32, 0.8),
    ]

    /// Engines with the given load options, loaded once per process.
    nonisolated(unsafe) static var engines: [String: Engine] = [:]
    static let lock = NSLock()

    static func engine(_ model: String, _ option: String, _ options: ModelLoadOptions) throws -> Engine {
        lock.lock()
        defer { lock.unlock() }
        if let engine = engines["\(model)/\(option)"] { return engine }
        let directory = RealModels.modelsDirectory.appendingPathComponent(model)
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("config.json").path) else {
            throw RealModels.MissingModel(path: directory.path)
        }
        let engine = try Engine(directory: directory, options: options)
        engines["\(model)/\(option)"] = engine
        return engine
    }

    @Test(arguments: RealModels.names)
    func meanDifferenceWithinTolerance(model: String) throws {
        let cases = RealModels.cases.filter { $0.model == model }
        try #require(cases.contains { $0.experts.isEmpty } && cases.contains { !$0.experts.isEmpty })
        for (option, quantization, cache, tolerance) in Self.tolerances {
            let engine = try Self.engine(model, option, ModelLoadOptions(quantization: quantization, kvCacheType: cache))
            var differences: [Double] = []
            for golden in cases {
                let blend = try RealModels.blend(golden, engine: engine)
                if let blend, !blend.activeWeights.isEmpty {
                    #expect(blend.stackType == (quantization == nil ? .f32 : .f16), "\(model) \(option) \(golden.name)")
                }
                let result = try engine.model.score(prompt: golden.promptIDs, continuation: golden.continuationIDs, delta: blend)
                differences += zip(result.logprobs, golden.logprobs).map { abs(Double($0) - $1) }
            }
            let mean = differences.reduce(0, +) / Double(differences.count)
            #expect(mean < tolerance, "\(model) \(option): mean |Δ logprob| \(mean)")
            print("\(model) \(option): mean |Δ logprob| \(String(format: "%.5f", mean)), max \(String(format: "%.4f", differences.max() ?? 0))")
        }
    }
}
