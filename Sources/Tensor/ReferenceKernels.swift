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

    /// `attention(queries:keys:values:shape:)` over a cache of IEEE binary16 bits.
    public static func attention(queries: [Float], float16Keys: [UInt16], float16Values: [UInt16], shape: AttentionShape) -> [Float] {
        attention(queries: queries, keys: float16Keys.map(floatFromFloat16), values: float16Values.map(floatFromFloat16), shape: shape)
    }

    /// Quants and binary16 scale bits of `values` (a multiple of 32 long) in
    /// llama.cpp's block order, computed as its quantize_row_q8_0_ref and
    /// quantize_row_q4_0_ref do. Q4_0 quants are 0...15 (value `d * (q - 8)`).
    public static func quantizeBlocks(_ values: [Float], to dtype: DType) -> (quants: [Int], scales: [UInt16]) {
        precondition(dtype.isQuantized && values.count % 32 == 0, "ReferenceKernels.quantizeBlocks: \(values.count) values as \(dtype.rawValue)")
        var quants: [Int] = []
        var scales: [UInt16] = []
        for start in stride(from: 0, to: values.count, by: 32) {
            let block = values[start..<start + 32]
            if dtype == .q8_0 {
                let amax = block.reduce(Float(0)) { max($0, abs($1)) }
                let d = amax / 127
                let id: Float = d != 0 ? 1 / d : 0
                scales.append(float16FromFloat(d))
                quants += block.map { Int(($0 * id).rounded(.toNearestOrAwayFromZero)) }
            } else {
                var amax: Float = 0
                var signedMax: Float = 0
                for value in block where amax < abs(value) {
                    amax = abs(value)
                    signedMax = value
                }
                let d = signedMax / -8
                let id: Float = d != 0 ? 1 / d : 0
                scales.append(float16FromFloat(d))
                quants += block.map { min(15, Int(($0 * id + 8.5).rounded(.towardZero))) }
            }
        }
        return (quants, scales)
    }

    /// Computes what `Kernels.linear` does for one input row and quantized
    /// weights: the input quantized to int8 blocks of 32 (scale
    /// `max|x| / 127`, quants rounded to nearest, ties to even), exact integer
    /// block dot products, scaled by both block scales, summed in Double.
    public static func linearWithQuantizedInput(weight: WeightMatrix, input: [Float]) -> [Float] {
        precondition(weight.dtype.isQuantized, "ReferenceKernels.linearWithQuantizedInput: \(weight.dtype.rawValue) is not quantized")
        precondition(input.count == weight.columns, "ReferenceKernels.linearWithQuantizedInput: input has \(input.count) values, expected \(weight.columns)")
        let blocks = (weight.columns + 31) / 32
        var xQuants = [Int](repeating: 0, count: blocks * 32)
        var xScales = [Float](repeating: 0, count: blocks)
        for b in 0..<blocks {
            let block = input[(32 * b)..<min(32 * b + 32, input.count)]
            let amax = block.reduce(Float(0)) { max($0, abs($1)) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            xScales[b] = d
            for (j, value) in block.enumerated() {
                xQuants[32 * b + j] = Int((value * id).rounded(.toNearestOrEven))
            }
        }
        let layout = weight.quantizedLayout!
        var output = [Float](repeating: 0, count: weight.rows)
        for row in 0..<weight.rows {
            var sum = 0.0
            for b in 0..<blocks {
                let weightScale = Double(floatFromFloat16(layout.scaleBits(weight.base, row: row, block: b)))
                var dot = 0
                for j in 0..<32 where 32 * b + j < weight.columns {
                    dot += layout.signedQuant(weight.base, row: row, column: 32 * b + j) * xQuants[32 * b + j]
                }
                sum += Double(dot) * weightScale * Double(xScales[b])
            }
            output[row] = Float(sum)
        }
        return output
    }

}
