import Foundation
import SafeTensors
import Testing

struct SafeTensorsWriterTests {
    @Test func writtenFileReadsBack() throws {
        let directory = try TemporaryDirectory()
        var writer = SafeTensorsWriter(metadata: ["format": "test"])
        try writer.add("gate.weight", shape: [2, 3], values: [1, -2, 3.5, 0, .greatestFiniteMagnitude, -0.0])
        try writer.add("gate.bias", shape: [2], values: [0.25, -8])
        try writer.add("scalar", shape: [], values: [42])
        try writer.add("empty", shape: [0, 4], values: [])
        let url = directory.url.appendingPathComponent("out.safetensors")
        try writer.write(to: url)

        let file = try SafeTensorsFile(path: url.path)
        #expect(file.tensorNames == ["empty", "gate.bias", "gate.weight", "scalar"])
        #expect(file.metadata == ["format": "test"])
        #expect(file.dtypeName(of: "gate.weight") == "F32")
        #expect(try file.tensor(named: "gate.weight").shape == [2, 3])
        let weight = try file.tensor(named: "gate.weight").toFloatArray()
        #expect(weight == [1, -2, 3.5, 0, .greatestFiniteMagnitude, -0.0])
        #expect(weight[5].sign == .minus)
        #expect(try file.tensor(named: "gate.bias").toFloatArray() == [0.25, -8])
        #expect(try file.tensor(named: "scalar").toFloatArray() == [42])
        #expect(try file.tensor(named: "empty").toFloatArray() == [])
    }

    @Test func layoutFollowsTheFormat() throws {
        var writer = SafeTensorsWriter()
        try writer.add("b", shape: [1], values: [2])
        try writer.add("a", shape: [2], values: [1, 1.5])
        let data = try writer.serialized()
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0)
        #expect(data.count == 8 + headerLength + 12)
        let header = String(decoding: data[8..<(8 + headerLength)], as: UTF8.self)
        #expect(header.hasPrefix("{\"a\":"))
        #expect(header.trimmingCharacters(in: .whitespaces).hasSuffix("}"))
        // Tensors are stored in the order they were added, little-endian.
        #expect(header.contains("\"b\":{\"data_offsets\":[0,4]"))
        #expect(Array(data[(8 + headerLength)..<(8 + headerLength + 4)]) == [0, 0, 0, 0x40])
        #expect(!header.contains("__metadata__"))
    }

    @Test func invalidTensorsAreRejected() throws {
        var writer = SafeTensorsWriter()
        try writer.add("x", shape: [2], values: [1, 2])
        #expect(throws: SafeTensorsWriterError.duplicateTensor("x")) { try writer.add("x", shape: [1], values: [1]) }
        #expect(throws: SafeTensorsWriterError.self) { try writer.add("", shape: [1], values: [1]) }
        #expect(throws: SafeTensorsWriterError.self) { try writer.add("__metadata__", shape: [1], values: [1]) }
        #expect(throws: SafeTensorsWriterError.shapeMismatch(tensor: "y", shape: [2, 2], valueCount: 3)) {
            try writer.add("y", shape: [2, 2], values: [1, 2, 3])
        }
        #expect(throws: SafeTensorsWriterError.self) { try writer.add("z", shape: [-1, -2], values: [1, 2]) }
        let directory = try TemporaryDirectory()
        let url = directory.url.appendingPathComponent("x.safetensors")
        try writer.write(to: url)
        #expect(try SafeTensorsFile(path: url.path).tensorNames == ["x"])
    }

    @Test func unwritablePathIsReported() throws {
        let writer = SafeTensorsWriter()
        let path = "/nonexistent-directory/out.safetensors"
        let error = #expect(throws: SafeTensorsWriterError.self) { try writer.write(to: URL(fileURLWithPath: path)) }
        #expect(error.map { "\($0)" }?.contains(path) == true)
    }
}
