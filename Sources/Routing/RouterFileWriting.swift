import Foundation
import SafeTensors

extension RouterFile {
    /// Writes the router file to `url` and, for a gate router, its weights to
    /// `gateFileName(for: url)` in the same directory (written first, so the
    /// router file never names a missing gate file). Both writes are atomic.
    public func write(to url: URL) throws {
        try validate(file: url.path)
        var gateMember: String?
        if kind == .gate, let gate {
            var writer = SafeTensorsWriter(metadata: ["format": "\(Self.formatName)-gate"])
            try writer.add(Self.gateWeightTensor, shape: [experts.count, model.hiddenSize], values: gate.weight)
            try writer.add(Self.gateBiasTensor, shape: [experts.count], values: gate.bias)
            let data = try writer.serialized()
            let gateName = Self.gateFileName(for: url)
            let gateURL = url.deletingLastPathComponent().appendingPathComponent(gateName)
            do {
                try data.write(to: gateURL, options: .atomic)
            } catch {
                throw RouterFileError.cannotWrite(file: gateURL.path, reason: error.localizedDescription)
            }
            var hash = FNV1a64()
            hash.combine(data)
            gateMember = RouterJSONWriter.inlineObject([
                ("file", RouterJSONWriter.string(gateName)),
                ("fingerprint", RouterJSONWriter.string(hash.fingerprint)),
            ])
        }

        let text = serializedJSON(gateMember: gateMember) + "\n"
        do {
            try Data(text.utf8).write(to: url, options: .atomic)
        } catch {
            throw RouterFileError.cannotWrite(file: url.path, reason: error.localizedDescription)
        }
    }

    /// Formats the JSON text with the keys in the documented order.
    func serializedJSON(gateMember: String?) -> String {
        typealias JSON = RouterJSONWriter
        var members: [(String, String)] = [
            ("format", JSON.string(Self.formatName)),
            ("version", "\(Self.formatVersion)"),
            ("kind", JSON.string(kind.rawValue)),
            ("model", JSON.inlineObject([
                ("name", JSON.string(model.name)),
                ("model_type", JSON.string(model.modelType)),
                ("hidden_size", "\(model.hiddenSize)"),
                ("num_hidden_layers", "\(model.numHiddenLayers)"),
                ("fingerprint", JSON.string(model.fingerprint)),
            ])),
            ("layer", "\(layer)"),
            ("pooling", JSON.string(pooling)),
            ("temperature", JSON.number(temperature)),
            ("top_k", selection.topK.map { "\($0)" } ?? "null"),
            ("min_weight", JSON.number(selection.minWeight)),
            ("renormalize", selection.renormalize ? "true" : "false"),
        ]
        if let center {
            members.append(("center", JSON.floats(center)))
        }
        let expertItems = experts.map { expert in
            var fields: [(String, String)] = [
                ("name", JSON.string(expert.name)),
                ("fingerprint", JSON.string(expert.fingerprint)),
                ("examples", "\(expert.exampleCount)"),
            ]
            if let prototype = expert.prototype {
                fields.append(("prototype", JSON.floats(prototype)))
            }
            return JSON.inlineObject(fields)
        }
        members.append(("experts", JSON.array(expertItems, indent: "  ")))
        if let gateMember {
            members.append(("gate", gateMember))
        }
        return JSON.object(members)
    }
}
