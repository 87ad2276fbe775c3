import Foundation

/// Rotary position embedding in the "rotate half" layout of Hugging Face
/// checkpoints: element `i` of each head is paired with element `i + headDim/2`.
public struct RotaryEmbedding: Sendable {
    public let headDim: Int
    /// `1 / theta^(2i / headDim)` for `i` in `0..<headDim/2`, in Float as
    /// transformers computes it, so angles round the same way.
    public let inverseFrequencies: [Float]

    public init(headDim: Int, theta: Double) {
        precondition(headDim > 0 && headDim % 2 == 0, "RotaryEmbedding: head dimension \(headDim) must be even")
        self.headDim = headDim
        let base = Float(theta)
        inverseFrequencies = (0..<headDim / 2).map { i in
            1 / powf(base, Float(2 * i) / Float(headDim))
        }
    }

    /// Cosines and sines for `positions`, each `[positions.count, headDim/2]`.
    public func table(positions: Range<Int>) -> (cos: [Float], sin: [Float]) {
        table(positions: Array(positions))
    }

    /// Cosines and sines for any list of positions, row `i` for `positions[i]`.
    public func table(positions: [Int]) -> (cos: [Float], sin: [Float]) {
        let half = headDim / 2
        var cosines = [Float](repeating: 0, count: positions.count * half)
        var sines = [Float](repeating: 0, count: positions.count * half)
        for (row, position) in positions.enumerated() {
            for i in 0..<half {
                let angle = Float(position) * inverseFrequencies[i]
                cosines[row * half + i] = cos(angle)
                sines[row * half + i] = sin(angle)
            }
        }
        return (cosines, sines)
    }

    /// Rotates `rows × heads` head vectors in place; `x` is `[rows, heads, headDim]`
    /// and row `r` uses row `r` of `table`.
    public func apply(
        _ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int,
        table: (cos: [Float], sin: [Float])
    ) {
        let half = headDim / 2
        precondition(table.cos.count >= rows * half, "RotaryEmbedding.apply: table has fewer than \(rows) rows")
        table.cos.withUnsafeBufferPointer { cosines in
            table.sin.withUnsafeBufferPointer { sines in
                for row in 0..<rows {
                    let c = cosines.baseAddress! + row * half
                    let s = sines.baseAddress! + row * half
                    for head in 0..<heads {
                        let v = x + (row * heads + head) * headDim
                        for i in 0..<half {
                            let first = v[i]
                            let second = v[i + half]
                            v[i] = first * c[i] - second * s[i]
                            v[i + half] = second * c[i] + first * s[i]
                        }
                    }
                }
            }
        }
    }
}
