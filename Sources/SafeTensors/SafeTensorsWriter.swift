import Foundation

/// A tensor that cannot be added to a safetensors file, or a file that cannot
/// be written.
public enum SafeTensorsWriterError: Error, CustomStringConvertible, Equatable {
    case invalidName(String, reason: String)
    case duplicateTensor(String)
    case shapeMismatch(tensor: String, shape: [Int], valueCount: Int)
    case cannotWrite(file: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidName(name, reason):
            return "invalid tensor name '\(name)': \(reason)"
        case let .duplicateTensor(name):
            return "tensor '\(name)' is added twice; tensor names must be unique"
        case let .shapeMismatch(tensor, shape, valueCount):
            return "tensor '\(tensor)': shape \(shape) holds \(shape.reduce(1, *)) elements, but \(valueCount) values were given"
        case let .cannotWrite(file, reason):
            return "\(file): cannot write: \(reason)"
        }
    }
}

/// Builds a safetensors file of F32 tensors in memory and writes it.
///
/// Layout, as `SafeTensorsFile` reads it: an 8-byte little-endian header
/// length, then the JSON header with sorted keys, then the tensors'
/// little-endian bytes in the order they were added, without gaps. The
/// header is padded with spaces to a multiple of 8 bytes, as the reference
/// implementation does.
public struct SafeTensorsWriter {
    private struct Entry {
        let name: String
        let shape: [Int]
        let values: [Float]
    }

    private var entries: [Entry] = []
    /// Free-form string pairs stored under `__metadata__`.
    public var metadata: [String: String] = [:]

    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// Adds an F32 tensor. `values` are row-major and must fill `shape`.
    public mutating func add(_ name: String, shape: [Int], values: [Float]) throws {
        guard !name.isEmpty else {
            throw SafeTensorsWriterError.invalidName(name, reason: "the name is empty")
        }
        guard name != "__metadata__" else {
            throw SafeTensorsWriterError.invalidName(name, reason: "the header reserves this key for metadata")
        }
        guard !entries.contains(where: { $0.name == name }) else {
            throw SafeTensorsWriterError.duplicateTensor(name)
        }
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw SafeTensorsWriterError.shapeMismatch(tensor: name, shape: shape, valueCount: values.count)
        }
        entries.append(Entry(name: name, shape: shape, values: values))
    }

    /// Serializes the complete file.
    public func serialized() throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for entry in entries {
            let byteCount = entry.values.count * MemoryLayout<Float>.size
            header[entry.name] = ["dtype": "F32", "shape": entry.shape, "data_offsets": [offset, offset + byteCount]] as [String: Any]
            offset += byteCount
        }
        if !metadata.isEmpty {
            header["__metadata__"] = metadata
        }
        var headerBytes = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes])
        let padding = (8 - headerBytes.count % 8) % 8
        headerBytes.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: padding))

        var data = Data(capacity: 8 + headerBytes.count + offset)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(headerBytes)
        for entry in entries {
            for value in entry.values {
                withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
            }
        }
        return data
    }

    /// Writes the file atomically: readers see the old file or the new one,
    /// never a partial write.
    public func write(to url: URL) throws {
        let data = try serialized()
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw SafeTensorsWriterError.cannotWrite(file: url.path, reason: error.localizedDescription)
        }
    }
}
