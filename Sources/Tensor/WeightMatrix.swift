import CKernels

/// Memory owned by a tensor that does not live in a mapped file.
public final class OwnedBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int

    public init(byteCount: Int) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
    }

    deinit { pointer.deallocate() }
}

/// A read-only row-major matrix `[rows, columns]` whose elements are stored in
/// `dtype`, usually a zero-copy view into a memory-mapped safetensors file.
/// Quantized matrices (`.q8_0`, `.q4_0`) come from `quantized(to:pool:)` and
/// follow the layout described in Quantization.swift.
/// A PyTorch `nn.Linear` weight is `[out_features, in_features]`.
public struct WeightMatrix: @unchecked Sendable {
    // SAFETY: the memory at `base` is never written after construction and
    // stays alive as long as `owner` does, so sharing across threads is safe.
    public let rows: Int
    public let columns: Int
    public let dtype: DType
    public let base: UnsafeRawPointer
    /// Keeps the memory behind `base` alive (a mapped file or an `OwnedBuffer`).
    public let owner: AnyObject

    public init(rows: Int, columns: Int, dtype: DType, base: UnsafeRawPointer, owner: AnyObject) {
        self.rows = rows
        self.columns = columns
        self.dtype = dtype
        self.base = base
        self.owner = owner
    }

    /// Copies `values` (row-major, `rows * columns` elements) into a new
    /// matrix stored as `dtype`: `.f32` keeps them exactly, `.f16` rounds each
    /// to the nearest binary16 value and halves the bytes.
    public init(copying values: [Float], rows: Int, columns: Int, dtype: DType = .f32) {
        precondition(values.count == rows * columns, "WeightMatrix: \(values.count) values for [\(rows), \(columns)]")
        precondition(dtype == .f32 || dtype == .f16, "WeightMatrix(copying:): \(dtype.rawValue) is not f32 or f16")
        let buffer = OwnedBuffer(byteCount: values.count * dtype.byteSize)
        values.withUnsafeBufferPointer { source in
            guard let start = source.baseAddress else { return }
            if dtype == .f16 {
                ck_f32_to_f16(start, buffer.pointer.assumingMemoryBound(to: UInt16.self), source.count)
            } else {
                buffer.pointer.copyMemory(from: start, byteCount: source.count * 4)
            }
        }
        self.init(rows: rows, columns: columns, dtype: dtype, base: UnsafeRawPointer(buffer.pointer), owner: buffer)
    }

    /// Bytes of one row. For quantized types: its quants plus its scales,
    /// which are stored apart (see `QuantizedLayout`).
    public var rowByteCount: Int {
        if let layout = quantizedLayout { return layout.quantRowBytes + layout.blocksPerRow * 2 }
        return columns * dtype.byteSize
    }

    /// Bytes of the whole matrix.
    public var byteCount: Int {
        if let layout = quantizedLayout { return layout.byteCount }
        return rows * rowByteCount
    }

    /// Widens row `row` into `destination[0..<columns]`.
    public func copyRow(_ row: Int, to destination: UnsafeMutablePointer<Float>) {
        precondition(row >= 0 && row < rows, "WeightMatrix.copyRow: row \(row) outside 0..<\(rows)")
        if let layout = quantizedLayout {
            layout.dequantizeRow(base, row: row, into: destination)
        } else {
            convertToFloat(base + row * rowByteCount, dtype: dtype, count: columns, into: destination)
        }
    }

    /// Element at (`row`, `column`), widened to Float. Slow; for tests and one-off reads.
    public func element(row: Int, column: Int) -> Float {
        precondition(row >= 0 && row < rows && column >= 0 && column < columns, "WeightMatrix.element: index outside [\(rows), \(columns)]")
        if let layout = quantizedLayout {
            let scale = floatFromFloat16(layout.scaleBits(base, row: row, block: column / QuantizedLayout.blockSize))
            return scale * Float(layout.signedQuant(base, row: row, column: column))
        }
        let address = base + (row * columns + column) * dtype.byteSize
        switch dtype {
        case .f32: return address.loadUnaligned(as: Float.self)
        case .bf16: return floatFromBFloat16(address.loadUnaligned(as: UInt16.self))
        case .f16: return floatFromFloat16(address.loadUnaligned(as: UInt16.self))
        case .q8_0, .q4_0: preconditionFailure("unreachable: quantized types return above")
        }
    }

    /// All elements widened to Float, row-major. Allocates; for tests and small matrices.
    public func toFloatArray() -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * columns) { buffer, count in
            if rows * columns > 0 {
                if dtype.isQuantized {
                    for row in 0..<rows { copyRow(row, to: buffer.baseAddress! + row * columns) }
                } else {
                    convertToFloat(base, dtype: dtype, count: rows * columns, into: buffer.baseAddress!)
                }
            }
            count = rows * columns
        }
    }
}

/// Widens `count` elements of `dtype` at `source` into `destination`.
/// Traps for quantized types, whose elements need their block's scale; use
/// `WeightMatrix.copyRow` for those.
@inline(__always)
public func convertToFloat(_ source: UnsafeRawPointer, dtype: DType, count: Int, into destination: UnsafeMutablePointer<Float>) {
    switch dtype {
    case .f32:
        destination.update(from: source.assumingMemoryBound(to: Float.self), count: count)
    case .bf16:
        ck_bf16_to_f32(source.assumingMemoryBound(to: UInt16.self), destination, count)
    case .f16:
        ck_f16_to_f32(source.assumingMemoryBound(to: UInt16.self), destination, count)
    case .q8_0, .q4_0:
        preconditionFailure("convertToFloat: \(dtype.rawValue) is block-quantized; use WeightMatrix.copyRow")
    }
}
