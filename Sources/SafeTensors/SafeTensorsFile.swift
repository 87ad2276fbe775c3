import Foundation
import JSON
import Tensor

/// One tensor of a safetensors file: a zero-copy view into the mapping.
public struct TensorView: @unchecked Sendable {
    // SAFETY: `data` points into `file`'s read-only mapping, which `file` keeps alive.
    public let name: String
    public let dtype: DType
    /// Outermost dimension first, as stored (a Linear weight is `[out, in]`).
    public let shape: [Int]
    public let data: UnsafeRawBufferPointer
    public let file: MappedFile

    public var elementCount: Int { shape.reduce(1, *) }

    /// All elements widened to Float. Allocates; for small tensors.
    public func toFloatArray() -> [Float] {
        [Float](unsafeUninitializedCapacity: elementCount) { buffer, count in
            if let source = data.baseAddress, elementCount > 0 {
                // The source may be unaligned, so widen from a copy when it is.
                if Int(bitPattern: source) % dtype.byteSize == 0 {
                    convertToFloat(source, dtype: dtype, count: elementCount, into: buffer.baseAddress!)
                } else {
                    let aligned = UnsafeMutableRawPointer.allocate(byteCount: data.count, alignment: 16)
                    defer { aligned.deallocate() }
                    aligned.copyMemory(from: source, byteCount: data.count)
                    convertToFloat(aligned, dtype: dtype, count: elementCount, into: buffer.baseAddress!)
                }
            }
            count = elementCount
        }
    }
}

/// Metadata of one tensor entry in a header, before its dtype is checked
/// against what the kernels support.
struct TensorEntry {
    var dtypeName: String
    var shape: [Int]
    var range: Range<Int>
}

/// A memory-mapped safetensors file with a validated header.
///
/// Layout: an 8-byte little-endian header length `N`, `N` bytes of JSON mapping
/// each tensor name to `{dtype, shape, data_offsets: [begin, end]}` (offsets
/// relative to the end of the header), then the tensor bytes. The header is
/// checked completely on open: sizes agree with shapes, every range lies inside
/// the file, and ranges tile the data region without gaps or overlaps.
public final class SafeTensorsFile: Sendable {
    public let path: String
    public let metadata: [String: String]
    let file: MappedFile
    let entries: [String: TensorEntry]
    let dataStart: Int

    /// Header size limit; real headers are a few hundred kilobytes.
    static let maximumHeaderBytes = 100_000_000

    /// Bytes per element of every dtype the format defines.
    static let elementSizes: [String: Int] = [
        "F64": 8, "I64": 8, "U64": 8,
        "F32": 4, "I32": 4, "U32": 4,
        "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
        "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    ]

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let bytes = file.bytes

        guard bytes.count >= 8 else {
            throw SafeTensorsError.truncated(file: path, detail: "\(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(Self.maximumHeaderBytes) else {
            throw SafeTensorsError.invalidHeader(file: path, detail: "header length \(headerLength) exceeds the limit of \(Self.maximumHeaderBytes) bytes")
        }
        guard Int(headerLength) <= bytes.count - 8 else {
            throw SafeTensorsError.truncated(file: path, detail: "header length \(headerLength) but only \(bytes.count - 8) bytes follow")
        }
        dataStart = 8 + Int(headerLength)

        let headerData = Data(bytes[8..<dataStart])
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            // The project's parser names the line and column of the problem;
            // Foundation's message does not.
            var reason = error.localizedDescription
            do {
                _ = try JSONValue.parse([UInt8](headerData))
            } catch let parseError {
                reason = "\(parseError)"
            }
            throw SafeTensorsError.invalidHeader(file: path, detail: "header is not valid JSON (\(reason))")
        }
        guard let object = parsed as? [String: Any] else {
            throw SafeTensorsError.invalidHeader(file: path, detail: "header is not a JSON object")
        }

        var metadata: [String: String] = [:]
        var entries: [String: TensorEntry] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let dictionary = value as? [String: Any] else {
                    throw SafeTensorsError.invalidHeader(file: path, detail: "__metadata__ is not an object")
                }
                for (key, item) in dictionary {
                    guard let text = item as? String else {
                        throw SafeTensorsError.invalidHeader(file: path, detail: "__metadata__.\(key) is not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            entries[name] = try Self.parseEntry(name: name, value: value, path: path)
        }
        self.metadata = metadata
        self.entries = entries
        try Self.checkTiling(entries, dataSize: bytes.count - dataStart, path: path)
    }

    private static func parseEntry(name: String, value: Any, path: String) throws -> TensorEntry {
        func invalid(_ detail: String) -> SafeTensorsError {
            .invalidTensorEntry(file: path, tensor: name, detail: detail)
        }
        guard let fields = value as? [String: Any] else { throw invalid("entry is not an object") }
        guard let dtypeName = fields["dtype"] as? String else { throw invalid("missing string field 'dtype'") }
        guard let elementSize = elementSizes[dtypeName] else { throw invalid("unknown dtype '\(dtypeName)'") }
        guard let shapeValues = fields["shape"] as? [Any] else { throw invalid("missing array field 'shape'") }
        let shape = try shapeValues.map { item -> Int in
            guard let dimension = exactInteger(item), dimension >= 0 else {
                throw invalid("shape \(shapeValues) has an entry that is not a non-negative integer")
            }
            return dimension
        }
        guard let offsetValues = fields["data_offsets"] as? [Any], offsetValues.count == 2,
              let begin = exactInteger(offsetValues[0]), let end = exactInteger(offsetValues[1]),
              begin >= 0, begin <= end
        else {
            throw invalid("data_offsets must be two integers [begin, end] with 0 <= begin <= end")
        }

        var byteCount = elementSize
        for dimension in shape {
            let (product, overflow) = byteCount.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw invalid("shape \(shape) is too large") }
            byteCount = product
        }
        guard end - begin == byteCount else {
            throw invalid("data_offsets [\(begin), \(end)] hold \(end - begin) bytes, expected \(byteCount) for \(dtypeName) \(shape)")
        }
        return TensorEntry(dtypeName: dtypeName, shape: shape, range: begin..<end)
    }

    /// Checks that the tensors cover the data region exactly, in some order.
    private static func checkTiling(_ entries: [String: TensorEntry], dataSize: Int, path: String) throws {
        var expectedBegin = 0
        for (name, entry) in entries.sorted(by: { ($0.value.range.lowerBound, $0.key) < ($1.value.range.lowerBound, $1.key) }) {
            if entry.range.lowerBound != expectedBegin {
                throw SafeTensorsError.invalidTensorEntry(
                    file: path, tensor: name,
                    detail: "data starts at byte \(entry.range.lowerBound), expected \(expectedBegin) (tensors must be contiguous without overlap)")
            }
            expectedBegin = entry.range.upperBound
        }
        if expectedBegin > dataSize {
            throw SafeTensorsError.truncated(file: path, detail: "tensor data needs \(expectedBegin) bytes after the header, file has \(dataSize)")
        }
        if expectedBegin < dataSize {
            throw SafeTensorsError.invalidHeader(file: path, detail: "\(dataSize - expectedBegin) bytes after the last tensor are not described by the header")
        }
    }

    /// Names of all tensors, sorted.
    public var tensorNames: [String] { entries.keys.sorted() }

    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// Shape of `name` without checking its dtype, or nil when absent.
    public func shape(of name: String) -> [Int]? { entries[name]?.shape }

    /// dtype name as stored (e.g. "BF16"), or nil when absent.
    public func dtypeName(of name: String) -> String? { entries[name]?.dtypeName }

    /// The tensor `name`; throws when it is missing or not F32, F16 or BF16.
    public func tensor(named name: String) throws -> TensorView {
        guard let entry = entries[name] else {
            throw SafeTensorsError.tensorNotFound(file: path, tensor: name)
        }
        guard let dtype = DType(rawValue: entry.dtypeName) else {
            throw SafeTensorsError.unsupportedDType(file: path, tensor: name, dtype: entry.dtypeName)
        }
        let start = dataStart + entry.range.lowerBound
        let slice = UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + entry.range.count)])
        return TensorView(name: name, dtype: dtype, shape: entry.shape, data: slice, file: file)
    }
}

/// The integer value of a JSON number, or nil when it is not an exact integer.
func exactInteger(_ value: Any) -> Int? {
    if let number = value as? NSNumber {
        // JSON booleans arrive as NSNumbers of type "c" (char); reject them.
        if String(cString: number.objCType) == "c" { return nil }
        let double = number.doubleValue
        guard double.rounded() == double, abs(double) < 9.0e15 else { return nil }
        return number.intValue
    }
    return nil
}
