import Foundation

/// Slow, obviously correct versions of the kernels, for tests. They accumulate
/// in Double and use no SIMD or threads.
public enum ReferenceKernels {
    /// `Y [rows, out] = X [rows, in] · Wᵀ` (plus `Y` when `accumulate`).
    public static func linear(weight: WeightMatrix, input: [Float], rows: Int, accumulate: [Float]? = nil) -> [Float] {
        let inCount = weight.columns
        let outCount = weight.rows
        precondition(input.count == rows * inCount, "ReferenceKernels.linear: input has \(input.count) values, expected \(rows * inCount)")
        let w = weight.toFloatArray()
        var y = accumulate ?? [Float](repeating: 0, count: rows * outCount)
        for t in 0..<rows {
            for o in 0..<outCount {
                var sum = 0.0
                for i in 0..<inCount {
                    sum += Double(w[o * inCount + i]) * Double(input[t * inCount + i])
                }
                y[t * outCount + o] += Float(sum)
            }
        }
        return y
    }

    /// Causal grouped-query attention with the layout of `Kernels.attention`.
    public static func attention(queries: [Float], keys: [Float], values: [Float], shape: AttentionShape) -> [Float] {
        let headDim = shape.headDim
        let group = shape.queryHeads / shape.keyValueHeads
        let keyStride = shape.keyValueHeads * headDim
        var output = [Float](repeating: 0, count: shape.rows * shape.queryHeads * headDim)
        for row in 0..<shape.rows {
            for head in 0..<shape.queryHeads {
                let kvHead = head / group
                let visible = shape.firstPosition + row + 1
                var scores = [Double](repeating: 0, count: visible)
                for position in 0..<visible {
                    var dotProduct = 0.0
                    for d in 0..<headDim {
                        dotProduct += Double(queries[(row * shape.queryHeads + head) * headDim + d])
                            * Double(keys[position * keyStride + kvHead * headDim + d])
                    }
                    scores[position] = dotProduct * Double(shape.scale)
                }
                let maximum = scores.max() ?? 0
                let exponentials = scores.map { Foundation.exp($0 - maximum) }
                let sum = exponentials.reduce(0, +)
                for d in 0..<headDim {
                    var value = 0.0
                    for position in 0..<visible {
                        value += exponentials[position] / sum * Double(values[position * keyStride + kvHead * headDim + d])
                    }
                    output[(row * shape.queryHeads + head) * headDim + d] = Float(value)
                }
            }
        }
        return output
    }
}
