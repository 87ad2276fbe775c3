import Foundation
import SafeTensors

extension RouterFile {
    static let topLevelKeys: Set<String> = [
        "format", "version", "kind", "model", "layer", "pooling", "temperature",
        "top_k", "min_weight", "renormalize", "center", "experts", "gate",
    ]
    static let modelKeys: Set<String> = ["name", "model_type", "hidden_size", "num_hidden_layers", "fingerprint"]
    static let expertKeys: Set<String> = ["name", "fingerprint", "examples", "prototype"]
    static let gateKeys: Set<String> = ["file", "fingerprint"]

    /// Reads and validates a router file, and for a gate router its weights
    /// file. Checks the format completely, but not whether the model and the
    /// experts fit: `makeRouter` does that.
    public static func load(_ url: URL) throws -> RouterFile {
        let path = url.path
        let data: Data
        guard FileManager.default.fileExists(atPath: path) else {
            throw RouterFileError.cannotRead(file: path, reason: "file not found")
        }
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw RouterFileError.cannotRead(file: path, reason: error.localizedDescription)
        }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw RouterFileError.invalidJSON(file: path, detail: "the file is not valid JSON (\(error.localizedDescription))")
        }
        let root = try RouterJSONObject(file: path, path: "", value: parsed)

        // Format and version first, so that other files get a clear message.
        let format = try root.string("format")
        guard format == formatName else {
            throw RouterFileError.invalidValue(file: path, key: "format", expected: "\"\(formatName)\"", actual: "\"\(format)\"")
        }
        let version = try root.integer("version")
        guard version == formatVersion else {
            throw RouterFileError.invalidValue(
                file: path, key: "version", expected: "\(formatVersion) (the only version this lora-moe reads)", actual: "\(version)")
        }
        try root.rejectUnknownKeys(topLevelKeys)

        let kindName = try root.string("kind")
        guard let kind = Kind(rawValue: kindName) else {
            throw RouterFileError.invalidValue(file: path, key: "kind", expected: "\"encoder\" or \"gate\"", actual: "\"\(kindName)\"")
        }
        let model = try parseModel(try RouterJSONObject(file: path, path: "model", value: root.require("model")))
        let selection = ExpertSelection(
            topK: try root.optionalInteger("top_k"),
            minWeight: try root.number("min_weight"),
            renormalize: try root.boolean("renormalize"))

        var file = RouterFile(
            kind: kind, model: model, layer: try root.integer("layer"), pooling: try root.string("pooling"),
            temperature: try root.number("temperature"), selection: selection, experts: [])
        file.experts = try parseExperts(root, kind: kind, hiddenSize: model.hiddenSize)
        switch kind {
        case .encoder:
            if root.values["gate"] != nil { throw RouterFileError.unknownKey(file: path, key: "gate") }
            file.center = try root.floats("center", count: model.hiddenSize)
        case .gate:
            if root.values["center"] != nil { throw RouterFileError.unknownKey(file: path, key: "center") }
            let gate = try RouterJSONObject(file: path, path: "gate", value: root.require("gate"))
            file.gate = try loadGate(gate, routerURL: url, expertCount: file.experts.count, hiddenSize: model.hiddenSize)
        }
        try file.validate(file: path)
        return file
    }

    private static func parseModel(_ object: RouterJSONObject) throws -> Model {
        try object.rejectUnknownKeys(modelKeys)
        return Model(
            name: try object.string("name"),
            modelType: try object.string("model_type"),
            hiddenSize: try object.integer("hidden_size"),
            numHiddenLayers: try object.integer("num_hidden_layers"),
            fingerprint: try object.string("fingerprint"))
    }

    private static func parseExperts(_ root: RouterJSONObject, kind: Kind, hiddenSize: Int) throws -> [Expert] {
        guard hiddenSize > 0 else {
            throw RouterFileError.invalidValue(file: root.file, key: "model.hidden_size", expected: "a positive integer", actual: "\(hiddenSize)")
        }
        return try root.array("experts").enumerated().map { index, value in
            let object = try RouterJSONObject(file: root.file, path: "experts[\(index)]", value: value)
            try object.rejectUnknownKeys(expertKeys)
            var expert = Expert(
                name: try object.string("name"), fingerprint: try object.string("fingerprint"),
                exampleCount: try object.integer("examples"))
            switch kind {
            case .encoder:
                expert.prototype = try object.floats("prototype", count: hiddenSize)
            case .gate:
                if object.values["prototype"] != nil {
                    throw RouterFileError.unknownKey(file: root.file, key: object.key("prototype"))
                }
            }
            return expert
        }
    }

    /// Reads the gate weights file named by `gate.file`, a plain file name in
    /// the router file's directory whose bytes must match `gate.fingerprint`.
    private static func loadGate(_ object: RouterJSONObject, routerURL: URL, expertCount: Int, hiddenSize: Int) throws -> Gate {
        try object.rejectUnknownKeys(gateKeys)
        let name = try object.string("file")
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw object.invalid("file", expected: "a file name in the router file's directory", name)
        }
        let expectedFingerprint = try object.string("fingerprint")
        guard isRouterFingerprint(expectedFingerprint) else {
            throw object.invalid("fingerprint", expected: "'fnv1a64:' and 16 lowercase hex digits", expectedFingerprint)
        }
        let url = routerURL.deletingLastPathComponent().appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw RouterFileError.invalidValue(
                file: object.file, key: object.key("file"), expected: "an existing file next to the router file",
                actual: "\"\(name)\", but \(url.path) does not exist")
        }
        let actualFingerprint = try RouterFingerprint.file(url)
        guard actualFingerprint == expectedFingerprint else {
            throw RouterFileError.invalidValue(
                file: object.file, key: object.key("fingerprint"),
                expected: "\(expectedFingerprint) (the gate file written with this router file)",
                actual: "\(actualFingerprint) for \(url.path); the gate file was changed or belongs to another router")
        }

        let tensors = try SafeTensorsFile(path: url.path)
        let expected = [(gateWeightTensor, [expertCount, hiddenSize]), (gateBiasTensor, [expertCount])]
        if let extra = tensors.tensorNames.first(where: { name in !expected.contains { $0.0 == name } }) {
            throw RouterFileError.invalidValue(
                file: url.path, key: "tensor '\(extra)'", expected: "only '\(gateWeightTensor)' and '\(gateBiasTensor)'", actual: "an extra tensor")
        }
        var values: [String: [Float]] = [:]
        for (tensorName, shape) in expected {
            guard let dtype = tensors.dtypeName(of: tensorName), let actualShape = tensors.shape(of: tensorName) else {
                throw RouterFileError.missingKey(file: url.path, key: "tensor '\(tensorName)'")
            }
            guard dtype == "F32" else {
                throw RouterFileError.invalidValue(file: url.path, key: "tensor '\(tensorName)'", expected: "dtype F32", actual: "dtype \(dtype)")
            }
            guard actualShape == shape else {
                throw RouterFileError.invalidValue(
                    file: url.path, key: "tensor '\(tensorName)'", expected: "shape \(shape) ([experts, hidden] or [experts])", actual: "shape \(actualShape)")
            }
            values[tensorName] = try tensors.tensor(named: tensorName).toFloatArray()
        }
        return Gate(weight: values[gateWeightTensor] ?? [], bias: values[gateBiasTensor] ?? [])
    }
}
