import Foundation
import Tensor

/// Deterministic pseudo-random values in [-1, 1).
func randomValues(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
    }
}

/// Builds a matrix stored in `dtype` from f32 values rounded or quantized to that type.
func makeMatrix(_ values: [Float], rows: Int, columns: Int, dtype: DType) -> WeightMatrix {
    switch dtype {
    case .f32:
        return WeightMatrix(copying: values, rows: rows, columns: columns)
    case .bf16, .f16:
        let buffer = OwnedBuffer(byteCount: values.count * 2)
        let halves = buffer.pointer.bindMemory(to: UInt16.self, capacity: values.count)
        for (i, value) in values.enumerated() {
            halves[i] = dtype == .bf16 ? bfloat16FromFloat(value) : float16FromFloat(value)
        }
        return WeightMatrix(rows: rows, columns: columns, dtype: dtype, base: UnsafeRawPointer(buffer.pointer), owner: buffer)
    case .q8_0, .q4_0:
        return WeightMatrix(copying: values, rows: rows, columns: columns).quantized(to: dtype)
    }
}

func maxAbsoluteDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Runs `Kernels.linear` on arrays; `initial` is the output's starting value.
func runLinear(
    _ weight: WeightMatrix, _ input: [Float], rows: Int, threads: Int,
    initial: [Float]? = nil, quantizeActivations: Bool = true
) -> [Float] {
    var output = initial ?? [Float](repeating: .nan, count: rows * weight.rows)
    input.withUnsafeBufferPointer { x in
        output.withUnsafeMutableBufferPointer { y in
            Kernels.linear(weight: weight, input: x.baseAddress!, rows: rows, output: y.baseAddress!,
                           accumulate: initial != nil, pool: ComputePool(threadCount: threads),
                           quantizeActivations: quantizeActivations)
        }
    }
    return output
}
