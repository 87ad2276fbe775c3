import Foundation

/// The weights of a model directory: either one `model.safetensors`, or shards
/// listed by `model.safetensors.index.json` (`{"weight_map": {tensor: file}}`).
public final class ModelTensors: Sendable {
    public let directory: URL
    private let files: [String: SafeTensorsFile]
    /// Tensor name → file name within `directory`.
    private let location: [String: String]

    public init(directory: URL) throws {
        self.directory = directory
        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        let fileManager = FileManager.default

        // transformers loads model.safetensors when both it and an index exist.
        if fileManager.fileExists(atPath: single.path) {
            let file = try SafeTensorsFile(path: single.path)
            files = ["model.safetensors": file]
            location = Dictionary(uniqueKeysWithValues: file.tensorNames.map { ($0, "model.safetensors") })
        } else if fileManager.fileExists(atPath: index.path) {
            let shardNames = try Self.readIndex(index)
            var files: [String: SafeTensorsFile] = [:]
            for fileName in Set(shardNames.values) {
                files[fileName] = try SafeTensorsFile(path: directory.appendingPathComponent(fileName).path)
            }
            for (tensor, fileName) in shardNames where files[fileName]?.contains(tensor) != true {
                throw SafeTensorsError.invalidIndex(file: index.path, detail: "weight_map puts '\(tensor)' in \(fileName), but that file has no such tensor")
            }
            self.files = files
            location = shardNames
        } else {
            throw SafeTensorsError.cannotOpen(
                file: directory.path,
                reason: "no model.safetensors or model.safetensors.index.json in this directory")
        }
    }

    private static func readIndex(_ url: URL) throws -> [String: String] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw SafeTensorsError.cannotOpen(file: url.path, reason: error.localizedDescription)
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw SafeTensorsError.invalidIndex(file: url.path, detail: "not a JSON object")
        }
        guard let weightMap = object["weight_map"] as? [String: Any] else {
            throw SafeTensorsError.invalidIndex(file: url.path, detail: "'weight_map' must be an object mapping tensor names to shard files")
        }
        var result: [String: String] = [:]
        for (tensor, value) in weightMap {
            guard let fileName = value as? String else {
                throw SafeTensorsError.invalidIndex(file: url.path, detail: "weight_map['\(tensor)'] is not a string")
            }
            // Shards must be plain file names inside the model directory.
            guard !fileName.isEmpty, !fileName.contains("/"), fileName != "..", fileName != "." else {
                throw SafeTensorsError.invalidIndex(file: url.path, detail: "weight_map['\(tensor)'] = '\(fileName)' is not a file name in the model directory")
            }
            result[tensor] = fileName
        }
        return result
    }

    /// Names of all tensors across shards, sorted.
    public var tensorNames: [String] { location.keys.sorted() }

    public func contains(_ name: String) -> Bool { location[name] != nil }

    /// Path of the file that stores `name`, for error messages.
    public func path(of name: String) -> String {
        directory.appendingPathComponent(location[name] ?? "model.safetensors").path
    }

    public func tensor(named name: String) throws -> TensorView {
        guard let fileName = location[name], let file = files[fileName] else {
            throw SafeTensorsError.tensorNotFound(file: directory.path, tensor: name)
        }
        return try file.tensor(named: name)
    }
}
