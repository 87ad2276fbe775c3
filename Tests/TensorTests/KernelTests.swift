import Foundation
import Testing
import Tensor

struct LinearKernelTests {
    /// Shapes chosen to hit the 4-row blocks, a leftover row block, the
    /// 8-wide vector loop and its scalar tail, and odd input row counts.
    static let shapes: [(rows: Int, out: Int, in: Int)] = [
        (1, 1, 1), (1, 4, 8), (1, 7, 13), (2, 9, 16), (3, 33, 70), (5, 64, 576), (17, 130, 257),
    ]

    @Test(arguments: [DType.f32, .f16, .bf16])
    func linearMatchesReference(dtype: DType) {
        for (index, shape) in Self.shapes.enumerated() {
            let weight = makeMatrix(randomValues(shape.out * shape.in, seed: UInt64(index)), rows: shape.out, columns: shape.in, dtype: dtype)
            let input = randomValues(shape.rows * shape.in, seed: UInt64(100 + index))
            let expected = ReferenceKernels.linear(weight: weight, input: input, rows: shape.rows)
            for threads in [1, 2, 3] {
                var output = [Float](repeating: .nan, count: shape.rows * shape.out)
                input.withUnsafeBufferPointer { x in
                    output.withUnsafeMutableBufferPointer { y in
                        Kernels.linear(weight: weight, input: x.baseAddress!, rows: shape.rows, output: y.baseAddress!, pool: ComputePool(threadCount: threads))
                    }
                }
                let tolerance = 1e-5 * Float(shape.in).squareRoot() * 4
                #expect(maxAbsoluteDifference(output, expected) < tolerance, "shape \(shape) threads \(threads)")
            }
        }
    }

    @Test func linearAccumulateAddsToOutput() {
        let weight = makeMatrix(randomValues(12 * 20, seed: 1), rows: 12, columns: 20, dtype: .f32)
        let input = randomValues(3 * 20, seed: 2)
        let initial = randomValues(3 * 12, seed: 3)
        let expected = ReferenceKernels.linear(weight: weight, input: input, rows: 3, accumulate: initial)
        var output = initial
        input.withUnsafeBufferPointer { x in
            output.withUnsafeMutableBufferPointer { y in
                Kernels.linear(weight: weight, input: x.baseAddress!, rows: 3, output: y.baseAddress!, accumulate: true, pool: ComputePool(threadCount: 2))
            }
        }
        #expect(maxAbsoluteDifference(output, expected) < 1e-4)
    }
}

struct HalfConversionTests {
    @Test func bfloat16RoundTripsExactValues() {
        for value: Float in [0, -0, 1, -2.5, 3.140625, 0x1p-70, 65536, .infinity, -.infinity] {
            #expect(floatFromBFloat16(bfloat16FromFloat(value)) == value)
        }
        #expect(floatFromBFloat16(bfloat16FromFloat(.nan)).isNaN)
    }

    @Test func bfloat16RoundsToNearestEven() {
        // 1 + 2^-8 lies halfway between two bfloat16 values; ties go to the even one (1.0).
        #expect(floatFromBFloat16(bfloat16FromFloat(1 + 0x1p-8)) == 1)
        #expect(floatFromBFloat16(bfloat16FromFloat(1 + 0x1p-8 + 0x1p-16)) == 1 + 0x1p-7)
    }

    @Test func float16ConvertsEveryBitPatternBack() {
        for bits in UInt16.min...UInt16.max {
            let value = floatFromFloat16(bits)
            if value.isNaN {
                #expect(floatFromFloat16(float16FromFloat(value)).isNaN)
            } else {
                #expect(float16FromFloat(value) == bits || (value == 0 && float16FromFloat(value) & 0x7FFF == 0), "bits \(bits)")
            }
        }
    }

    @Test func float16KnownValues() {
        #expect(floatFromFloat16(0x3C00) == 1)
        #expect(floatFromFloat16(0xC000) == -2)
        #expect(floatFromFloat16(0x7BFF) == 65504)
        #expect(floatFromFloat16(0x0001) == 0x1p-24)
        #expect(float16FromFloat(65520) == 0x7C00)        // rounds up to infinity
        #expect(float16FromFloat(1 + 0x1p-11) == 0x3C00)  // tie to even
        #expect(float16FromFloat(0x1p-25) == 0)           // tie to even (zero)
        #expect(float16FromFloat(0x1p-25 + 0x1p-30) == 1)
    }
}

struct AttentionKernelTests {
    @Test func attentionMatchesReference() {
        for (rows, firstPosition) in [(1, 0), (1, 9), (4, 0), (3, 5)] {
            let shape = AttentionShape(queryHeads: 6, keyValueHeads: 2, headDim: 8, rows: rows, firstPosition: firstPosition, scale: 1 / Float(8).squareRoot())
            let length = firstPosition + rows
            let queries = randomValues(rows * 6 * 8, seed: 7)
            let keys = randomValues(length * 2 * 8, seed: 8)
            let values = randomValues(length * 2 * 8, seed: 9)
            let expected = ReferenceKernels.attention(queries: queries, keys: keys, values: values, shape: shape)
            var output = [Float](repeating: .nan, count: expected.count)
            queries.withUnsafeBufferPointer { q in
                keys.withUnsafeBufferPointer { k in
                    values.withUnsafeBufferPointer { v in
                        output.withUnsafeMutableBufferPointer { o in
                            Kernels.attention(queries: q.baseAddress!, keys: k.baseAddress!, values: v.baseAddress!,
                                              output: o.baseAddress!, shape: shape, pool: ComputePool(threadCount: 2))
                        }
                    }
                }
            }
            #expect(maxAbsoluteDifference(output, expected) < 1e-5, "rows \(rows) first position \(firstPosition)")
        }
    }
}

struct ElementwiseKernelTests {
    @Test func rmsNormMatchesFormula() {
        let x = randomValues(2 * 10, seed: 4)
        let weight = randomValues(10, seed: 5)
        var output = [Float](repeating: 0, count: 20)
        x.withUnsafeBufferPointer { xs in
            weight.withUnsafeBufferPointer { w in
                output.withUnsafeMutableBufferPointer { y in
                    Kernels.rmsNorm(xs.baseAddress!, weight: w.baseAddress!, epsilon: 1e-5, rows: 2, dimension: 10, output: y.baseAddress!)
                }
            }
        }
        for row in 0..<2 {
            let slice = x[(row * 10)..<(row * 10 + 10)]
            let meanSquare = slice.reduce(0.0) { $0 + Double($1) * Double($1) } / 10
            let scale = 1 / (meanSquare + 1e-5).squareRoot()
            for i in 0..<10 {
                let expected = Double(weight[i]) * Double(x[row * 10 + i]) * scale
                #expect(abs(Double(output[row * 10 + i]) - expected) < 1e-5)
            }
        }
    }

    @Test func rotaryEmbeddingRotatesPairsByAngle() {
        let rotary = RotaryEmbedding(headDim: 4, theta: 10000)
        #expect(rotary.inverseFrequencies == [1, 0.01])
        var x: [Float] = [1, 2, 3, 4]
        let table = rotary.table(positions: 3..<4)
        x.withUnsafeMutableBufferPointer { rotary.apply($0.baseAddress!, rows: 1, heads: 1, table: table) }
        // Pairs (x0, x2) and (x1, x3) rotate by 3 rad and 0.03 rad.
        #expect(abs(x[0] - (1 * cos(3) - 3 * sin(3))) < 1e-6)
        #expect(abs(x[2] - (3 * cos(3) + 1 * sin(3))) < 1e-6)
        #expect(abs(x[1] - (2 * cos(0.03) - 4 * sin(0.03))) < 1e-6)
        #expect(abs(x[3] - (4 * cos(0.03) + 2 * sin(0.03))) < 1e-6)
    }

    @Test func logSoftmaxSumsToOne() {
        let logits = randomValues(1000, seed: 6).map { $0 * 30 }
        var output = [Float](repeating: 0, count: 1000)
        logits.withUnsafeBufferPointer { l in
            output.withUnsafeMutableBufferPointer { Kernels.logSoftmax(l.baseAddress!, count: 1000, output: $0.baseAddress!) }
        }
        let total = output.reduce(0.0) { $0 + exp(Double($1)) }
        #expect(abs(total - 1) < 1e-5)
    }

    @Test func chunksCoverRangeOnce() {
        for count in [0, 1, 5, 16, 17, 100] {
            for threads in [1, 2, 4] {
                let seen = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
                seen.initialize(repeating: 0, count: max(count, 1))
                defer { seen.deallocate() }
                let pointer = SendablePointer(seen)
                ComputePool(threadCount: threads).forEachChunk(count: count, alignment: 4) { range in
                    for i in range { pointer.pointer[i] += 1 }
                }
                #expect((0..<count).allSatisfy { seen[$0] == 1 }, "count \(count) threads \(threads)")
            }
        }
    }
}

struct ActivationTests {
    @Test func siluMultiplyMatchesFormula() {
        let gate = randomValues(1003, seed: 12).enumerated().map { $0.element * Float(1 + $0.offset % 90) }
        let up = randomValues(1003, seed: 13)
        var output = gate
        output.withUnsafeMutableBufferPointer { g in
            up.withUnsafeBufferPointer { Kernels.siluMultiply(gate: g.baseAddress!, up: $0.baseAddress!, count: 1003) }
        }
        for i in 0..<1003 {
            let x = Double(gate[i])
            let expected = x / (1 + exp(-x)) * Double(up[i])
            #expect(abs(Double(output[i]) - expected) <= 2e-6 * max(1, abs(expected)), "index \(i) gate \(gate[i])")
        }
    }
}
