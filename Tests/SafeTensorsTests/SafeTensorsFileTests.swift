import Foundation
import Testing
import SafeTensors
import Tensor

/// A temporary directory removed when the value is deallocated.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("lora-moe-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func write(_ name: String, _ data: Data) throws -> String {
        let path = url.appendingPathComponent(name).path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }
}

/// Bytes of a safetensors file with `header` (JSON text) and `payload`.
func safetensorsBytes(header: String, payload: [UInt8], declaredLength: UInt64? = nil) -> Data {
    let headerBytes = Array(header.utf8)
    var data = Data()
    var length = (declaredLength ?? UInt64(headerBytes.count)).littleEndian
    withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
    data.append(contentsOf: headerBytes)
    data.append(contentsOf: payload)
    return data
}

func floatBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { value -> [UInt8] in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
}

func halfBytes(_ values: [UInt16]) -> [UInt8] {
    values.flatMap { value -> [UInt8] in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
}

struct SafeTensorsFileTests {
    @Test func readsTensorsOfEachDType() throws {
        let directory = try TemporaryDirectory()
        let f32 = floatBytes([1, -2, 3.5, 4])
        let bf16 = halfBytes([bfloat16FromFloat(1.5), bfloat16FromFloat(-3)])
        let f16 = halfBytes([float16FromFloat(0.25), float16FromFloat(-8), float16FromFloat(2)])
        let header = """
        {"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},\
        "b":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]},"c":{"dtype":"F16","shape":[3],"data_offsets":[20,26]}}
        """
        let path = try directory.write("ok.safetensors", safetensorsBytes(header: header, payload: f32 + bf16 + f16))
        let file = try SafeTensorsFile(path: path)

        #expect(file.tensorNames == ["a", "b", "c"])
        #expect(file.metadata == ["format": "pt"])
        #expect(try file.tensor(named: "a").shape == [2, 2])
        #expect(try file.tensor(named: "a").toFloatArray() == [1, -2, 3.5, 4])
        #expect(try file.tensor(named: "b").toFloatArray() == [1.5, -3])
        #expect(try file.tensor(named: "c").toFloatArray() == [0.25, -8, 2])
        #expect(throws: SafeTensorsError.tensorNotFound(file: path, tensor: "d")) { try file.tensor(named: "d") }
    }

    /// Each malformed file and a fragment its error message must contain.
    static let malformed: [(name: String, data: Data, fragment: String)] = [
        ("short", Data([1, 2, 3]), "3 bytes, shorter than the 8-byte header length"),
        ("length-past-end", safetensorsBytes(header: "{}", payload: [], declaredLength: 50), "header length 50 but only 2 bytes follow"),
        ("huge-length", safetensorsBytes(header: "{}", payload: [], declaredLength: 1 << 40), "exceeds the limit of 100000000 bytes"),
        ("not-json", safetensorsBytes(header: "{nope", payload: []), "header is not valid JSON (expected a string key at line 1, column 2)"),
        ("not-object", safetensorsBytes(header: "[1,2]", payload: []), "header is not a JSON object"),
        ("no-dtype", safetensorsBytes(header: #"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, payload: [0, 0, 0, 0]),
         "tensor 'a': missing string field 'dtype'"),
        ("unknown-dtype", safetensorsBytes(header: #"{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, payload: [0, 0, 0, 0]),
         "tensor 'a': unknown dtype 'F33'"),
        ("negative-shape", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, payload: [0, 0, 0, 0]),
         "has an entry that is not a non-negative integer"),
        ("bad-offsets", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, payload: [0, 0, 0, 0]),
         "data_offsets must be two integers [begin, end] with 0 <= begin <= end"),
        ("size-disagrees", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, payload: [0, 0, 0, 0]),
         "data_offsets [0, 4] hold 4 bytes, expected 8 for F32 [2]"),
        ("gap", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, payload: [UInt8](repeating: 0, count: 8)),
         "tensor 'a': data starts at byte 4, expected 0"),
        ("overlap", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, payload: [UInt8](repeating: 0, count: 8)),
         "tensor 'b': data starts at byte 4, expected 8"),
        ("data-truncated", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, payload: [UInt8](repeating: 0, count: 10)),
         "tensor data needs 16 bytes after the header, file has 10"),
        ("trailing-bytes", safetensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, payload: [UInt8](repeating: 0, count: 6)),
         "2 bytes after the last tensor are not described by the header"),
    ]

    @Test func rejectsMalformedFiles() throws {
        let directory = try TemporaryDirectory()
        for (name, data, fragment) in Self.malformed {
            let path = try directory.write("\(name).safetensors", data)
            do {
                _ = try SafeTensorsFile(path: path)
                Issue.record("\(name): opened without error")
            } catch {
                let message = String(describing: error)
                #expect(error is SafeTensorsError, "\(name)")
                #expect(message.hasPrefix(path), "\(name): \(message)")
                #expect(message.contains(fragment), "\(name): \(message)")
            }
        }
    }

    @Test func rejectsUnsupportedDTypeOnAccess() throws {
        let directory = try TemporaryDirectory()
        let header = #"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#
        let path = try directory.write("i64.safetensors", safetensorsBytes(header: header, payload: [UInt8](repeating: 0, count: 8)))
        let file = try SafeTensorsFile(path: path)
        #expect(file.dtypeName(of: "ids") == "I64")
        #expect(throws: SafeTensorsError.unsupportedDType(file: path, tensor: "ids", dtype: "I64")) { try file.tensor(named: "ids") }
    }

    @Test func rejectsMissingFile() {
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(path: "/nonexistent/model.safetensors") }
    }
}

struct ModelTensorsTests {
    func writeShard(_ directory: TemporaryDirectory, _ name: String, tensor: String, value: Float) throws {
        let header = #"{"\#(tensor)":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        _ = try directory.write(name, safetensorsBytes(header: header, payload: floatBytes([value])))
    }

    @Test func readsShardsThroughIndex() throws {
        let directory = try TemporaryDirectory()
        try writeShard(directory, "model-00001-of-00002.safetensors", tensor: "x", value: 1)
        try writeShard(directory, "model-00002-of-00002.safetensors", tensor: "y", value: 2)
        let index = #"{"metadata":{},"weight_map":{"x":"model-00001-of-00002.safetensors","y":"model-00002-of-00002.safetensors"}}"#
        _ = try directory.write("model.safetensors.index.json", Data(index.utf8))
        let tensors = try ModelTensors(directory: directory.url)
        #expect(tensors.tensorNames == ["x", "y"])
        #expect(try tensors.tensor(named: "y").toFloatArray() == [2])
    }

    @Test func rejectsBadIndexes() throws {
        let cases: [(index: String, fragment: String)] = [
            (#"{"metadata":{}}"#, "'weight_map' must be an object"),
            (#"{"weight_map":{"x":"../outside.safetensors"}}"#, "is not a file name in the model directory"),
            (#"{"weight_map":{"x":"model-00002-of-00002.safetensors"}}"#, "weight_map puts 'x' in model-00002-of-00002.safetensors"),
            (#"{"weight_map":{"x":7}}"#, "is not a string"),
            ("not json", "not a JSON object"),
        ]
        for (index, fragment) in cases {
            let directory = try TemporaryDirectory()
            try writeShard(directory, "model-00001-of-00002.safetensors", tensor: "x", value: 1)
            try writeShard(directory, "model-00002-of-00002.safetensors", tensor: "y", value: 2)
            _ = try directory.write("model.safetensors.index.json", Data(index.utf8))
            do {
                _ = try ModelTensors(directory: directory.url)
                Issue.record("index \(index) accepted")
            } catch {
                #expect(String(describing: error).contains(fragment), "\(index): \(error)")
            }
        }
    }

    @Test func rejectsDirectoryWithoutWeights() throws {
        let directory = try TemporaryDirectory()
        #expect(throws: SafeTensorsError.self) { try ModelTensors(directory: directory.url) }
    }
}
