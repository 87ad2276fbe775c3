import Testing
import Tensor

struct QuantizationTests {
    /// Values of a few magnitudes, with exact ties for the rounding rules.
    static func sampleValues(_ count: Int, seed: UInt64) -> [Float] {
        randomValues(count, seed: seed).enumerated().map { index, value in
            switch index % 7 {
            case 0: return value * 1e-3
            case 1: return value * 40
            case 2: return Float(Int(value * 20)) / 4  // multiples of 0.25
            default: return value
            }
        }
    }

    @Test(arguments: [DType.q8_0, .q4_0])
    func quantsMatchLlamaReference(dtype: DType) {
        for (rows, columns) in [(1, 32), (3, 64), (5, 96), (4, 576), (2, 128)] {
            let values = Self.sampleValues(rows * columns, seed: UInt64(columns))
            let weight = WeightMatrix(copying: values, rows: rows, columns: columns).quantized(to: dtype)
            let (quants, scales) = ReferenceKernels.quantizeBlocks(values, to: dtype)
            let offset = dtype == .q4_0 ? 8 : 0
            var mismatches = 0
            for row in 0..<rows {
                for column in 0..<columns {
                    let index = row * columns + column
                    let expected = floatFromFloat16(scales[index / 32]) * Float(quants[index] - offset)
                    if weight.element(row: row, column: column) != expected { mismatches += 1 }
                }
            }
            #expect(mismatches == 0, "\(dtype) [\(rows), \(columns)]")
        }
    }

    @Test func q8KnownBlock() {
        // max |x| = 127 gives scale 1, so integers are stored exactly.
        let values = (0..<32).map { Float($0 * 8 - 121) }
        let weight = WeightMatrix(copying: values, rows: 1, columns: 32).quantized(to: .q8_0)
        #expect(weight.toFloatArray() == values.map { min($0, 127) })
        // One row is padded to a group of four: 4 × 32 quant bytes, then 4 scales.
        #expect(weight.byteCount == 4 * 32 + 4 * 2)
    }

    @Test func q4KnownBlock() {
        // The largest magnitude is -8, so the scale is 1 and -8...7 are exact.
        let values = (0..<32).map { Float($0 % 16 - 8) }
        let weight = WeightMatrix(copying: values, rows: 1, columns: 32).quantized(to: .q4_0)
        #expect(weight.toFloatArray() == values)
        // A positive maximum gives a negative scale; +8 maps to quant 0.
        let positive = (0..<32).map { Float(8 - $0 % 16) }
        #expect(WeightMatrix(copying: positive, rows: 1, columns: 32).quantized(to: .q4_0).toFloatArray() == positive)
    }

    /// Q8_0 error is at most half a step `d = max|x| / 127`, plus the
    /// binary16 rounding of `d` (relative 2^-11) times the largest quant 127.
    @Test func q8ErrorWithinHalfStep() {
        let (rows, columns) = (6, 200)
        let values = Self.sampleValues(rows * columns, seed: 3)
        let restored = WeightMatrix(copying: values, rows: rows, columns: columns).quantized(to: .q8_0).toFloatArray()
        for row in 0..<rows {
            for block in stride(from: 0, to: columns, by: 32) {
                let range = (row * columns + block)..<(row * columns + min(block + 32, columns))
                let step = values[range].map(abs).max()! / 127
                let bound = step * (0.5 + 127 * 0x1p-11 + 1e-5) + 1e-9
                let error = range.map { abs(values[$0] - restored[$0]) }.max()!
                #expect(error <= bound, "row \(row) block \(block / 32)")
            }
        }
    }

    /// Q4_0 error is at most half a step `|d| = max|x| / 8`, plus the binary16
    /// rounding of `d` times 8. The top quant is clipped to 15, so values on
    /// the side opposite the largest magnitude can lose a whole step.
    @Test func q4ErrorWithinOneStep() {
        let (rows, columns) = (6, 200)
        let values = Self.sampleValues(rows * columns, seed: 4)
        let restored = WeightMatrix(copying: values, rows: rows, columns: columns).quantized(to: .q4_0).toFloatArray()
        for row in 0..<rows {
            for block in stride(from: 0, to: columns, by: 32) {
                let range = (row * columns + block)..<(row * columns + min(block + 32, columns))
                let step = values[range].map(abs).max()! / 8
                let bound = step * (1 + 8 * 0x1p-11 + 1e-5) + 1e-9
                let error = range.map { abs(values[$0] - restored[$0]) }.max()!
                #expect(error <= bound, "row \(row) block \(block / 32)")
            }
        }
    }

    @Test(arguments: [DType.q8_0, .q4_0])
    func paddedColumnsRoundTrip(dtype: DType) {
        // 70 columns: Q8_0 pads to 96, Q4_0 to 128; the padding must not leak into rows.
        let values = Self.sampleValues(3 * 70, seed: 5)
        let weight = WeightMatrix(copying: values, rows: 3, columns: 70).quantized(to: dtype)
        let layout = weight.quantizedLayout!
        #expect(layout.paddedColumns == (dtype == .q8_0 ? 96 : 128))
        let restored = weight.toFloatArray()
        #expect(restored.count == values.count)
        var paddedValues: [Float] = []
        for row in 0..<3 {
            paddedValues += values[(row * 70)..<(row * 70 + 70)]
            paddedValues += [Float](repeating: 0, count: layout.paddedColumns - 70)
        }
        let (quants, scales) = ReferenceKernels.quantizeBlocks(paddedValues, to: dtype)
        let offset = dtype == .q4_0 ? 8 : 0
        for row in 0..<3 {
            var row32 = [Float](repeating: .nan, count: 70)
            row32.withUnsafeMutableBufferPointer { weight.copyRow(row, to: $0.baseAddress!) }
            for column in 0..<70 {
                let index = row * layout.paddedColumns + column
                let expected = floatFromFloat16(scales[index / 32]) * Float(quants[index] - offset)
                #expect(row32[column] == expected, "row \(row) column \(column)")
                #expect(restored[row * 70 + column] == expected)
            }
        }
    }

    @Test(arguments: [DType.f16, .bf16])
    func quantizesHalfSources(source: DType) {
        let values = Self.sampleValues(4 * 64, seed: 6)
        let half = makeMatrix(values, rows: 4, columns: 64, dtype: source)
        let widened = half.toFloatArray()
        let direct = WeightMatrix(copying: widened, rows: 4, columns: 64).quantized(to: .q8_0)
        #expect(half.quantized(to: .q8_0).toFloatArray() == direct.toFloatArray())
    }

    @Test func quantizingInParallelMatchesSerial() {
        let values = Self.sampleValues(100 * 96, seed: 9)
        let matrix = WeightMatrix(copying: values, rows: 100, columns: 96)
        for dtype in [DType.q8_0, .q4_0] {
            let serial = matrix.quantized(to: dtype).toFloatArray()
            let parallel = matrix.quantized(to: dtype, pool: ComputePool(threadCount: 3)).toFloatArray()
            #expect(serial == parallel, "\(dtype)")
        }
    }

    @Test func quantizedSizes() {
        let q8 = QuantizedLayout(dtype: .q8_0, rows: 576, columns: 576)
        #expect(q8.blocksPerRow == 18)
        #expect(q8.byteCount == 576 * 576 + 576 * 18 * 2)
        let q4 = QuantizedLayout(dtype: .q4_0, rows: 576, columns: 576)
        #expect(q4.blocksPerRow == 18)
        #expect(q4.byteCount == 576 * 288 + 576 * 18 * 2)
        #expect(DType.q8_0.isQuantized)
        #expect(DType.q4_0.isQuantized)
        #expect(!DType.bf16.isQuantized)
    }
}
