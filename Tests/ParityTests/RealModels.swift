import Foundation
import LoRAMoE

/// The real models fetched by scripts/fetch-models.sh, and their goldens
/// under Tests/Fixtures/real made by scripts/fixtures/make_real_goldens.py.
enum RealModels {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var modelsDirectory: URL {
        if let override = ProcessInfo.processInfo.environment["LORA_MOE_MODELS"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        return repositoryRoot.appendingPathComponent("models")
    }

    static let names = ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"]

    struct MissingModel: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) not found; run scripts/fetch-models.sh first" }
    }

    /// Engines are loaded once per process and shared by the tests.
    private static let engines: [String: Result<Engine, Error>] = {
        var result: [String: Result<Engine, Error>] = [:]
        for name in names {
            let directory = modelsDirectory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("config.json").path) else {
                result[name] = .failure(MissingModel(path: directory.path))
                continue
            }
            result[name] = Result { try Engine(directory: directory) }
        }
        return result
    }()

    static func engine(_ name: String) throws -> Engine {
        guard let loaded = engines[name] else { throw MissingModel(path: name) }
        return try loaded.get()
    }

    static func fixtureDirectory(_ name: String) -> URL {
        repositoryRoot.appendingPathComponent("Tests/Fixtures/real/\(name)")
    }

    struct Case: Sendable {
        let model: String
        let name: String
        let experts: [String]
        let weights: [Double]
        let prompt: String
        let continuation: String
        let promptIDs: [Int]
        let continuationIDs: [Int]
        let logprobs: [Double]
        let greedyIDs: [Int]?
        var id: String { "\(model)/\(name)" }
    }

    static let cases: [Case] = names.flatMap { model -> [Case] in
        let url = fixtureDirectory(model).appendingPathComponent("goldens.json")
        guard let data = try? Data(contentsOf: url),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let items = object["cases"] as? [[String: Any]]
        else { return [] }
        return items.map { item in
            Case(model: model, name: item["name"] as? String ?? "?",
                 experts: item["experts"] as? [String] ?? [], weights: item["weights"] as? [Double] ?? [],
                 prompt: item["prompt"] as? String ?? "", continuation: item["continuation"] as? String ?? "",
                 promptIDs: item["prompt_ids"] as? [Int] ?? [], continuationIDs: item["continuation_ids"] as? [Int] ?? [],
                 logprobs: item["logprobs"] as? [Double] ?? [], greedyIDs: item["greedy_ids"] as? [Int])
        }
    }

    static func blend(_ golden: Case, engine: Engine) throws -> ExpertBlend? {
        guard !golden.experts.isEmpty else { return nil }
        let specs = golden.experts.map {
            ExpertSpec(name: $0, path: fixtureDirectory(golden.model).appendingPathComponent("adapters/\($0)").path)
        }
        return try ExpertBlend(experts: engine.loadExperts(specs), weights: golden.weights)
    }
}
