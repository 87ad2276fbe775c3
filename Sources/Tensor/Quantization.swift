import CKernels

// Memory layout of a quantized `WeightMatrix` (`dtype` `.q8_0` or `.q4_0`),
// all in one buffer starting at `base`.
//
// Rows are stored in groups of four, interleaved unit by unit, so that the
// matrix-vector kernel, which computes four rows at once, reads one
// sequential stream. With one stream per row it read 3-9 GB/s instead of 15
// on one thread (kernel-bench and a C test, 2026-12-04). A unit is 32 bytes:
//
// - Q8_0: one block, the int8 quants of 32 columns.
// - Q4_0: one pair of blocks, 64 columns. Byte j of unit p contains column
//   64p + j in its low nibble and column 64p + 32 + j in its high nibble, so
//   one 32-byte load feeds two blocks. llama.cpp packs each block on its own, with
//   columns j and j + 16 in byte j. The quants and scales are the same as
//   llama.cpp's; only their places differ.
//
// Unit u of row r is at byte `((r / 4 * unitsPerRow + u) * 4 + r % 4) * 32`.
// The binary16 scales follow at `scalesOffset` (64-byte aligned), grouped the
// same way: the scale of block b of row r is element
// `(r / 4 * blocksPerRow + b) * 4 + r % 4`, so the four rows' scales of one
// block are adjacent.
//
// Rows are padded with zero columns to whole units, and the row count to a
// multiple of four with zero rows. Padding quantizes to value 0 and is never
// returned as data.

/// Offsets and sizes of a block-quantized matrix in memory.
public struct QuantizedLayout: Sendable, Equatable {
    /// Columns per block.
    public static let blockSize = 32
    /// Rows per interleaved group.
    public static let groupRows = 4

    public let dtype: DType
    public let rows: Int
    public let columns: Int
    /// Blocks per row, padding included (even for Q4_0).
    public let blocksPerRow: Int
    /// 32-byte units per row: `blocksPerRow` for Q8_0, half that for Q4_0.
    public let unitsPerRow: Int
    /// Byte offset of the first scale.
    public let scalesOffset: Int
    /// Bytes of the whole matrix: quants, alignment gap and scales.
    public let byteCount: Int

    public init(dtype: DType, rows: Int, columns: Int) {
        precondition(dtype.isQuantized, "QuantizedLayout: \(dtype.rawValue) is not a quantized type")
        precondition(rows >= 0 && columns >= 0, "QuantizedLayout: invalid shape [\(rows), \(columns)]")
        self.dtype = dtype
        self.rows = rows
        self.columns = columns
        if dtype == .q4_0 {
            unitsPerRow = (columns + 63) / 64
            blocksPerRow = 2 * unitsPerRow
        } else {
            unitsPerRow = (columns + 31) / 32
            blocksPerRow = unitsPerRow
        }
        let paddedRows = (rows + 3) & ~3
        scalesOffset = (paddedRows * unitsPerRow * 32 + 63) & ~63
        byteCount = scalesOffset + paddedRows * blocksPerRow * 2
    }

    /// Rows including padding, a multiple of `groupRows`.
    public var paddedRows: Int { (rows + 3) & ~3 }

    /// Columns per row including padding.
    public var paddedColumns: Int { blocksPerRow * Self.blockSize }

    /// Bytes of quants per row.
    public var quantRowBytes: Int { unitsPerRow * 32 }

    /// First quant byte of row `row`; its next unit is 128 bytes further.
    func quants(_ base: UnsafeRawPointer, row: Int) -> UnsafeRawPointer {
        base + (row / 4 * unitsPerRow * 4 + row % 4) * 32
    }

    /// First scale of row `row`; its next block's scale is 4 elements further.
    func scales(_ base: UnsafeRawPointer, row: Int) -> UnsafePointer<UInt16> {
        (base + scalesOffset).assumingMemoryBound(to: UInt16.self) + row / 4 * blocksPerRow * 4 + row % 4
    }

    /// Returns the binary16 bits of the scale of block `block` of row `row`.
    func scaleBits(_ base: UnsafeRawPointer, row: Int, block: Int) -> UInt16 {
        scales(base, row: row)[4 * block]
    }

    /// Returns the integer that multiplies the block scale at (`row`,
    /// `column`): `q` for Q8_0, `q - 8` for Q4_0.
    func signedQuant(_ base: UnsafeRawPointer, row: Int, column: Int) -> Int {
        let rowQuants = quants(base, row: row)
        if dtype == .q8_0 {
            return Int(rowQuants.load(fromByteOffset: column / 32 * 128 + column % 32, as: Int8.self))
        }
        let byte = rowQuants.load(fromByteOffset: column / 64 * 128 + column % 32, as: UInt8.self)
        let nibble = column % 64 < 32 ? byte & 0x0F : byte >> 4
        return Int(nibble) - 8
    }

    /// Widens row `row` into `destination[0..<columns]`.
    func dequantizeRow(_ base: UnsafeRawPointer, row: Int, into destination: UnsafeMutablePointer<Float>) {
        let padded = paddedColumns
        let target = padded == columns ? destination : UnsafeMutablePointer<Float>.allocate(capacity: padded)
        defer { if target != destination { target.deallocate() } }
        let quantPointer = quants(base, row: row)
        let scalePointer = scales(base, row: row)
        if dtype == .q4_0 {
            ck_dequantize_q4_0(quantPointer.assumingMemoryBound(to: UInt8.self), 128, scalePointer, 4, unitsPerRow, target)
        } else {
            ck_dequantize_q8_0(quantPointer.assumingMemoryBound(to: Int8.self), 128, scalePointer, 4, blocksPerRow, target)
        }
        if target != destination { destination.update(from: target, count: columns) }
    }
}

extension WeightMatrix {
    /// Layout of this matrix's quants and scales; nil for float types.
    public var quantizedLayout: QuantizedLayout? {
        dtype.isQuantized ? QuantizedLayout(dtype: dtype, rows: rows, columns: columns) : nil
    }

    /// Quantizes this f32, f16 or bf16 matrix into a new `.q8_0` or `.q4_0`
    /// matrix, rounding each block as llama.cpp's reference quantizers
    /// (quantize_row_q8_0_ref, quantize_row_q4_0_ref) do: the same scales and
    /// quants for the same float input. Rows are split over `pool`.
    ///
    /// Q8_0: `d = max|x| / 127`, `q = round(x / d)` (half away from zero).
    /// Q4_0: `d = m / -8` where `m` is the value of largest magnitude,
    /// `q = min(15, trunc(x / d + 8.5))`. Both store `d` as binary16.
    public func quantized(to target: DType, pool: ComputePool = ComputePool(threadCount: 1)) -> WeightMatrix {
        precondition(target.isQuantized, "WeightMatrix.quantized: target \(target.rawValue) is not a quantized type")
        precondition(!dtype.isQuantized, "WeightMatrix.quantized: source is already \(dtype.rawValue)")
        let layout = QuantizedLayout(dtype: target, rows: rows, columns: columns)
        let buffer = OwnedBuffer(byteCount: layout.byteCount)
        buffer.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: layout.byteCount)
        let destination = SendablePointer(buffer.pointer.assumingMemoryBound(to: UInt8.self))
        let source = self

        // SAFETY: each chunk writes only the quants and scales of its own rows.
        pool.forEachChunk(count: rows, minimumChunk: 16) { range in
            let padded = layout.paddedColumns
            let row = UnsafeMutablePointer<Float>.allocate(capacity: max(padded, 1))
            defer { row.deallocate() }
            row.initialize(repeating: 0, count: max(padded, 1))
            let base = UnsafeRawPointer(destination.pointer)
            for r in range {
                source.copyRow(r, to: row)
                let quants = UnsafeMutableRawPointer(mutating: layout.quants(base, row: r))
                let scales = UnsafeMutablePointer(mutating: layout.scales(base, row: r))
                if target == .q4_0 {
                    ck_quantize_q4_0(row, layout.unitsPerRow, quants.assumingMemoryBound(to: UInt8.self), 128, scales, 4)
                } else {
                    ck_quantize_q8_0(row, layout.blocksPerRow, quants.assumingMemoryBound(to: Int8.self), 128, scales, 4)
                }
            }
        }
        return WeightMatrix(rows: rows, columns: columns, dtype: target, base: UnsafeRawPointer(buffer.pointer), owner: buffer)
    }
}
