import Foundation

/// Shape of one attention call: heads, sizes and the causal window.
public struct AttentionShape: Sendable {
    public var queryHeads: Int
    public var keyValueHeads: Int
    public var headDim: Int
    /// Query rows in this call; row `t` is at position `firstPosition + t`.
    public var rows: Int
    public var firstPosition: Int
    /// Multiplier of `q · k`, usually `1 / sqrt(headDim)`.
    public var scale: Float

    public init(queryHeads: Int, keyValueHeads: Int, headDim: Int, rows: Int, firstPosition: Int, scale: Float) {
        self.queryHeads = queryHeads
        self.keyValueHeads = keyValueHeads
        self.headDim = headDim
        self.rows = rows
        self.firstPosition = firstPosition
        self.scale = scale
    }
}

extension Kernels {
    /// Causal grouped-query attention over a key/value cache.
    ///
    /// - `queries`: `[rows, queryHeads, headDim]`.
    /// - `keys`, `values`: `[firstPosition + rows, keyValueHeads, headDim]`; query row
    ///   `t` sees cache rows `0...firstPosition + t`.
    /// - `output`: `[rows, queryHeads, headDim]`.
    ///
    /// Query head `h` reads key/value head `h / (queryHeads / keyValueHeads)`.
    /// Work is split over (row, head) pairs.
    public static func attention(
        queries: UnsafePointer<Float>,
        keys: UnsafePointer<Float>,
        values: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>,
        shape: AttentionShape,
        pool: ComputePool
    ) {
        precondition(shape.queryHeads % shape.keyValueHeads == 0,
                     "attention: \(shape.queryHeads) query heads not a multiple of \(shape.keyValueHeads) key/value heads")
        let q = SendablePointer(queries)
        let k = SendablePointer(keys)
        let v = SendablePointer(values)
        let out = SendablePointer(output)
        let group = shape.queryHeads / shape.keyValueHeads
        let headDim = shape.headDim
        let keyStride = shape.keyValueHeads * headDim
        let contextLength = shape.firstPosition + shape.rows

        // SAFETY: each (row, head) item writes only its own output head vector.
        pool.forEachChunk(count: shape.rows * shape.queryHeads) { items in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: contextLength)
            defer { scores.deallocate() }
            for item in items {
                let row = item / shape.queryHeads
                let head = item % shape.queryHeads
                let kvHead = head / group
                let query = UnsafePointer(q.pointer + (row * shape.queryHeads + head) * headDim)
                let visible = shape.firstPosition + row + 1

                var maximum = -Float.infinity
                for position in 0..<visible {
                    let key = UnsafePointer(k.pointer + position * keyStride + kvHead * headDim)
                    let score = dot(query, key, count: headDim) * shape.scale
                    scores[position] = score
                    maximum = max(maximum, score)
                }
                var sum: Float = 0
                for position in 0..<visible {
                    let e = exp(scores[position] - maximum)
                    scores[position] = e
                    sum += e
                }

                let result = out.pointer + (row * shape.queryHeads + head) * headDim
                result.initialize(repeating: 0, count: headDim)
                let inverseSum = 1 / sum
                for position in 0..<visible {
                    let weight = scores[position] * inverseSum
                    let value = v.pointer + position * keyStride + kvHead * headDim
                    for d in 0..<headDim {
                        result[d] += weight * value[d]
                    }
                }
            }
        }
    }
}
