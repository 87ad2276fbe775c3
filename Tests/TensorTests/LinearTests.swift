import Testing
import Tensor

struct LinearFormatTests {
    /// (rows, out, in): 1...5 input rows cover every register-tile remainder.
    /// Out counts sit around the 3-row panels and 4-row matrix-vector groups,
    /// and in counts around 8-wide vectors, 32-column blocks and 64-column
    /// block pairs. Two shapes need several column blocks (1100 columns with
    /// few rows, 576 columns with 300 rows). The last two have weight rows of
    /// at most 64 values and more input rows than the integer path takes, as
    /// an expert stack's B product has at prefill.
    static let shapes: [(rows: Int, out: Int, in: Int)] = [
        (1, 1, 1), (1, 4, 8), (1, 7, 13), (1, 9, 31), (1, 13, 64), (1, 33, 100), (1, 70, 576),
        (2, 9, 16), (3, 33, 70), (4, 5, 32), (5, 64, 576), (6, 2, 33), (7, 3, 65),
        (17, 130, 257), (5, 10, 1100), (300, 7, 576), (20, 40, 64), (9, 17, 40),
    ]

    static func inputTolerance(_ columns: Int) -> Float {
        1e-5 * Float(columns).squareRoot() * 4
    }

    @Test(arguments: DType.allCases)
    func floatPathMatchesReference(dtype: DType) {
        for (index, shape) in Self.shapes.enumerated() {
            let weight = makeMatrix(randomValues(shape.out * shape.in, seed: UInt64(index)), rows: shape.out, columns: shape.in, dtype: dtype)
            let input = randomValues(shape.rows * shape.in, seed: UInt64(100 + index))
            let expected = ReferenceKernels.linear(weight: weight, input: input, rows: shape.rows)
            for threads in [1, 2, 3] {
                // With quantized weights, one row takes the integer path unless quantizeActivations is false.
                let output = runLinear(weight, input, rows: shape.rows, threads: threads, quantizeActivations: false)
                #expect(maxAbsoluteDifference(output, expected) < Self.inputTolerance(shape.in),
                        "\(dtype) shape \(shape) threads \(threads)")
            }
        }
    }

    @Test(arguments: DType.allCases)
    func accumulateAddsToOutput(dtype: DType) {
        for (index, shape) in Self.shapes.enumerated() {
            let weight = makeMatrix(randomValues(shape.out * shape.in, seed: UInt64(index)), rows: shape.out, columns: shape.in, dtype: dtype)
            let input = randomValues(shape.rows * shape.in, seed: UInt64(200 + index))
            let initial = randomValues(shape.rows * shape.out, seed: UInt64(300 + index))
            let expected = ReferenceKernels.linear(weight: weight, input: input, rows: shape.rows, accumulate: initial)
            let output = runLinear(weight, input, rows: shape.rows, threads: 2, initial: initial, quantizeActivations: false)
            #expect(maxAbsoluteDifference(output, expected) < Self.inputTolerance(shape.in) + 1e-6,
                    "\(dtype) shape \(shape)")
        }
    }

    @Test(arguments: [DType.q8_0, .q4_0])
    func integerPathMatchesQuantizedInputReference(dtype: DType) {
        for (index, shape) in Self.shapes.enumerated() {
            let weight = makeMatrix(randomValues(shape.out * shape.in, seed: UInt64(index)), rows: shape.out, columns: shape.in, dtype: dtype)
            let input = randomValues(shape.in, seed: UInt64(400 + index))
            let expected = ReferenceKernels.linearWithQuantizedInput(weight: weight, input: input)
            for threads in [1, 2, 3] {
                let output = runLinear(weight, input, rows: 1, threads: threads)
                #expect(maxAbsoluteDifference(output, expected) < Self.inputTolerance(shape.in),
                        "\(dtype) shape \(shape) threads \(threads)")
            }
            let initial = randomValues(shape.out, seed: UInt64(500 + index))
            let accumulated = runLinear(weight, input, rows: 1, threads: 2, initial: initial)
            let expectedSum = zip(expected, initial).map { $0 + $1 }
            #expect(maxAbsoluteDifference(accumulated, expectedSum) < Self.inputTolerance(shape.in) + 1e-6,
                    "accumulate \(dtype) shape \(shape)")
        }
    }

    /// Up to `integerPathMaximumRows` rows take the integer path together;
    /// each row's outputs must equal those of the row run alone, bit for bit.
    @Test(arguments: [DType.q8_0, .q4_0])
    func integerPathRowsMatchSingleRows(dtype: DType) {
        #expect(Kernels.integerPathMaximumRows == 8)
        for (index, shape) in [(out: 13, in: 100), (out: 70, in: 576), (out: 33, in: 1100)].enumerated() {
            let weight = makeMatrix(randomValues(shape.out * shape.in, seed: UInt64(index)), rows: shape.out, columns: shape.in, dtype: dtype)
            for rows in [2, 3, 5, 8] {
                let input = randomValues(rows * shape.in, seed: UInt64(600 + rows))
                for threads in [1, 2, 3] {
                    let output = runLinear(weight, input, rows: rows, threads: threads)
                    for row in 0..<rows {
                        let single = runLinear(weight, Array(input[(row * shape.in)..<((row + 1) * shape.in)]), rows: 1, threads: threads)
                        let batched = Array(output[(row * shape.out)..<((row + 1) * shape.out)])
                        #expect(batched == single, "\(dtype) shape \(shape) rows \(rows) row \(row) threads \(threads)")
                    }
                }
                let expected = (0..<rows).flatMap { row in
                    ReferenceKernels.linearWithQuantizedInput(weight: weight, input: Array(input[(row * shape.in)..<((row + 1) * shape.in)]))
                }
                let output = runLinear(weight, input, rows: rows, threads: 2)
                #expect(maxAbsoluteDifference(output, expected) < Self.inputTolerance(shape.in), "\(dtype) shape \(shape) rows \(rows)")
            }
        }
    }

    /// The integer path differs from float inputs by at most the input
    /// rounding: each input moves by at most half its block's step
    /// `max|x| / 127`, so output row r moves by at most
    /// `sum over blocks (max|x_b| / 254) * sum |w_r,b|`.
    @Test(arguments: [DType.q8_0, .q4_0])
    func integerPathStaysWithinInputRoundingBound(dtype: DType) {
        let (out, columns) = (40, 576)
        let weight = makeMatrix(randomValues(out * columns, seed: 7), rows: out, columns: columns, dtype: dtype)
        let input = randomValues(columns, seed: 8).map { $0 * 3 }
        let exact = ReferenceKernels.linear(weight: weight, input: input, rows: 1)
        let output = runLinear(weight, input, rows: 1, threads: 2)
        let dequantized = weight.toFloatArray()
        for row in 0..<out {
            var bound: Float = 1e-4
            for block in stride(from: 0, to: columns, by: 32) {
                let step = input[block..<block + 32].map(abs).max()! / 254
                let weightSum = dequantized[(row * columns + block)..<(row * columns + block + 32)].map(abs).reduce(0, +)
                bound += step * weightSum
            }
            #expect(abs(output[row] - exact[row]) <= bound, "row \(row)")
        }
    }

    @Test func zeroColumnsGiveZeros() {
        let weight = WeightMatrix(copying: [], rows: 3, columns: 0)
        let output = runLinear(weight, [], rows: 2, threads: 2)
        #expect(output == [Float](repeating: 0, count: 6))
    }

    /// LoRA shapes: a rank-16 down projection and the matching up projection.
    @Test func loraShapesMatchReference() {
        for (rows, out, columns) in [(1, 16, 576), (128, 16, 576), (1, 576, 16), (128, 576, 16), (37, 1536, 4)] {
            let weight = makeMatrix(randomValues(out * columns, seed: 11), rows: out, columns: columns, dtype: .f32)
            let input = randomValues(rows * columns, seed: 12)
            let expected = ReferenceKernels.linear(weight: weight, input: input, rows: rows)
            let output = runLinear(weight, input, rows: rows, threads: 2)
            #expect(maxAbsoluteDifference(output, expected) < Self.inputTolerance(columns), "rows \(rows) out \(out) in \(columns)")
        }
    }
}
