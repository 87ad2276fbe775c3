import Testing
import Tensor

struct AttentionTests {
    /// (query heads, key/value heads, head dimension, rows, first position).
    /// Groups of 1, 2, 3 and 7 heads cover the 4-head blocks and their
    /// remainders, and head dimensions come with and without an 8-wide tail.
    /// Single rows over long contexts are split into position ranges.
    static let cases: [(queryHeads: Int, keyValueHeads: Int, headDim: Int, rows: Int, firstPosition: Int)] = [
        (6, 2, 8, 1, 0), (6, 2, 8, 1, 9), (6, 2, 8, 4, 0), (6, 2, 8, 3, 5),
        (4, 4, 12, 2, 3), (9, 3, 64, 1, 511), (14, 2, 64, 1, 300), (14, 2, 64, 5, 40),
        (8, 1, 20, 1, 200), (16, 8, 128, 2, 70),
    ]

    static func shape(_ c: (queryHeads: Int, keyValueHeads: Int, headDim: Int, rows: Int, firstPosition: Int)) -> AttentionShape {
        AttentionShape(queryHeads: c.queryHeads, keyValueHeads: c.keyValueHeads, headDim: c.headDim,
                       rows: c.rows, firstPosition: c.firstPosition, scale: 1 / Float(c.headDim).squareRoot())
    }

    @Test func floatCacheMatchesReference() {
        for (index, c) in Self.cases.enumerated() {
            let shape = Self.shape(c)
            let length = c.firstPosition + c.rows
            // Scaled so some score rows are peaked and others flat.
            let queries = randomValues(c.rows * c.queryHeads * c.headDim, seed: UInt64(10 + index)).map { $0 * 4 }
            let keys = randomValues(length * c.keyValueHeads * c.headDim, seed: UInt64(20 + index))
            let values = randomValues(length * c.keyValueHeads * c.headDim, seed: UInt64(30 + index))
            let expected = ReferenceKernels.attention(queries: queries, keys: keys, values: values, shape: shape)
            for threads in [1, 2, 3] {
                var output = [Float](repeating: .nan, count: expected.count)
                queries.withUnsafeBufferPointer { q in
                    keys.withUnsafeBufferPointer { k in
                        values.withUnsafeBufferPointer { v in
                            output.withUnsafeMutableBufferPointer { o in
                                Kernels.attention(queries: q.baseAddress!, keys: k.baseAddress!, values: v.baseAddress!,
                                                  output: o.baseAddress!, shape: shape, pool: ComputePool(threadCount: threads))
                            }
                        }
                    }
                }
                #expect(maxAbsoluteDifference(output, expected) < 2e-5, "case \(c) threads \(threads)")
            }
        }
    }

    @Test func halfCacheMatchesReference() {
        for (index, c) in Self.cases.enumerated() {
            let shape = Self.shape(c)
            let length = c.firstPosition + c.rows
            let queries = randomValues(c.rows * c.queryHeads * c.headDim, seed: UInt64(40 + index)).map { $0 * 4 }
            let keys = randomValues(length * c.keyValueHeads * c.headDim, seed: UInt64(50 + index)).map(float16FromFloat)
            let values = randomValues(length * c.keyValueHeads * c.headDim, seed: UInt64(60 + index)).map(float16FromFloat)
            let expected = ReferenceKernels.attention(queries: queries, float16Keys: keys, float16Values: values, shape: shape)
            for threads in [1, 2, 3] {
                var output = [Float](repeating: .nan, count: expected.count)
                queries.withUnsafeBufferPointer { q in
                    keys.withUnsafeBufferPointer { k in
                        values.withUnsafeBufferPointer { v in
                            output.withUnsafeMutableBufferPointer { o in
                                Kernels.attention(queries: q.baseAddress!, float16Keys: k.baseAddress!, float16Values: v.baseAddress!,
                                                  output: o.baseAddress!, shape: shape, pool: ComputePool(threadCount: threads))
                            }
                        }
                    }
                }
                #expect(maxAbsoluteDifference(output, expected) < 2e-5, "case \(c) threads \(threads)")
            }
        }
    }

    @Test func convertToFloat16MatchesScalarRounding() {
        let values = randomValues(1000, seed: 70).enumerated().map { $0.element * Float(1 << ($0.offset % 20)) } + [70000, -1e-8, .infinity]
        var halves = [UInt16](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { source in
            halves.withUnsafeMutableBufferPointer { Kernels.convertToFloat16(source.baseAddress!, count: values.count, into: $0.baseAddress!) }
        }
        #expect(halves == values.map(float16FromFloat))
    }
}
