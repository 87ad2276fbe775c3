import Foundation
import Models
import Testing

/// A copy of a tiny fixture model whose config.json can be edited.
final class EditableModelCopy {
    let url: URL

    init(fixture name: String) throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tiny/models/\(name)")
        url = FileManager.default.temporaryDirectory.appendingPathComponent("lora-moe-model-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: source, to: url)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func editConfig(_ edit: (inout [String: Any]) -> Void) throws {
        let configURL = url.appendingPathComponent("config.json")
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any] ?? [:]
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: configURL)
    }
}

struct WeightLoadingTests {
    func loadError(_ copy: EditableModelCopy) -> String? {
        do {
            _ = try LanguageModel(directory: copy.url)
            return nil
        } catch {
            return String(describing: error)
        }
    }

    @Test func loadsEveryFixtureModel() throws {
        for name in ["qwen3-f32", "qwen2-bf16", "llama-f16", "llama-sharded", "llama-legacy-rope"] {
            let copy = try EditableModelCopy(fixture: name)
            #expect(loadError(copy) == nil, "\(name)")
        }
    }

    @Test func reportsMissingLayerWeights() throws {
        let copy = try EditableModelCopy(fixture: "llama-f16")
        try copy.editConfig { $0["num_hidden_layers"] = 3 }
        let message = loadError(copy)
        #expect(message?.contains("tensor 'model.layers.2.input_layernorm.weight' is missing") == true, "\(message ?? "loaded")")
    }

    @Test func reportsWeightsTheConfigDoesNotUse() throws {
        let copy = try EditableModelCopy(fixture: "llama-f16")
        try copy.editConfig { $0["num_hidden_layers"] = 1 }
        let message = loadError(copy)
        #expect(message?.contains("tensor 'model.layers.1.") == true, "\(message ?? "loaded")")
        #expect(message?.contains("is not part of this architecture") == true)
    }

    @Test func reportsShapeMismatch() throws {
        let copy = try EditableModelCopy(fixture: "qwen3-f32")
        try copy.editConfig { $0["intermediate_size"] = 96 }
        let message = loadError(copy)
        #expect(message?.contains("gate_proj.weight' is shape [128, 64], expected shape [96, 64]") == true, "\(message ?? "loaded")")
    }

    @Test func reportsMissingLMHeadWhenUntied() throws {
        let copy = try EditableModelCopy(fixture: "llama-f16")
        try copy.editConfig { $0["tie_word_embeddings"] = false }
        let message = loadError(copy)
        #expect(message?.contains("tensor 'lm_head.weight' is missing") == true, "\(message ?? "loaded")")
    }

    @Test func rejectsOutOfRangeTokensAndOverflow() throws {
        let copy = try EditableModelCopy(fixture: "llama-f16")
        let model = try LanguageModel(directory: copy.url)
        #expect(throws: ModelError.tokenOutOfRange(token: 320, vocabularySize: 320)) {
            try model.forward([1, 320], state: model.makeState())
        }
        #expect(throws: ModelError.tokenOutOfRange(token: -1, vocabularySize: 320)) {
            try model.forward([-1], state: model.makeState())
        }
        let state = model.makeState(contextLength: 4)
        #expect(throws: ModelError.contextOverflow(requested: 5, maximum: 4)) {
            try model.forward([1, 2, 3, 4, 5], state: state)
        }
        #expect(state.count == 0, "a rejected call must not change the state")
    }
}

struct HiddenStateBoundsTests {
    @Test func meanHiddenStateRejectsTooManyTokens() throws {
        let copy = try EditableModelCopy(fixture: "llama-f16")
        let model = try LanguageModel(directory: copy.url)
        let tokens = [Int](repeating: 5, count: model.config.maxPositionEmbeddings + 1)
        #expect(throws: ModelError.contextOverflow(requested: tokens.count, maximum: model.config.maxPositionEmbeddings)) {
            try model.meanHiddenState(tokens, layer: 1)
        }
        #expect(throws: ModelError.self) { try model.meanHiddenState([1], layer: model.config.numHiddenLayers + 1) }
    }
}
