import CKernels
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
    /// Causal grouped-query attention over a float key/value cache.
    ///
    /// - `queries`: `[rows, queryHeads, headDim]`.
    /// - `keys`, `values`: `[firstPosition + rows, keyValueHeads, headDim]`; query row
    ///   `t` sees cache rows `0...firstPosition + t`.
    /// - `output`: `[rows, queryHeads, headDim]`.
    ///
    /// Query head `h` reads key/value head `h / (queryHeads / keyValueHeads)`.
    /// The heads that share a key/value head are computed together, so each
    /// cached vector is read once per group. Work is split over (row,
    /// key/value head) pairs and, when those are fewer than the threads
    /// can use, over ranges of cache positions whose partial softmax
    /// results are merged afterwards.
    public static func attention(
        queries: UnsafePointer<Float>,
        keys: UnsafePointer<Float>,
        values: UnsafePointer<Float>,
        output: UnsafeMutablePointer<Float>,
        shape: AttentionShape,
        pool: ComputePool
    ) {
        groupedAttention(queries: queries, keys: UnsafeRawPointer(keys), values: UnsafeRawPointer(values),
                         halfCache: false, output: output, shape: shape, pool: pool)
    }

    /// `attention(queries:keys:values:output:shape:pool:)` with the cache
    /// stored as IEEE binary16 bits (`float16FromFloat`, or
    /// `convertToFloat16` for whole rows), which halves the bytes read per
    /// step. Scores, softmax and sums stay in float.
    public static func attention(
        queries: UnsafePointer<Float>,
        float16Keys: UnsafePointer<UInt16>,
        float16Values: UnsafePointer<UInt16>,
        output: UnsafeMutablePointer<Float>,
        shape: AttentionShape,
        pool: ComputePool
    ) {
        groupedAttention(queries: queries, keys: UnsafeRawPointer(float16Keys), values: UnsafeRawPointer(float16Values),
                         halfCache: true, output: output, shape: shape, pool: pool)
    }

    /// Rounds `count` floats to IEEE binary16 bits (nearest, ties to even),
    /// for writing keys and values into a half-precision cache.
    public static func convertToFloat16(_ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutablePointer<UInt16>) {
        ck_f32_to_f16(source, destination, count)
    }

    /// Minimum cache positions in one range when a row's positions are split over tasks.
    static let minimumPositionsPerSegment = 64

    private static func groupedAttention(
        queries: UnsafePointer<Float>, keys: UnsafeRawPointer, values: UnsafeRawPointer, halfCache: Bool,
        output: UnsafeMutablePointer<Float>, shape: AttentionShape, pool: ComputePool
    ) {
        precondition(shape.queryHeads % shape.keyValueHeads == 0,
                     "attention: \(shape.queryHeads) query heads not a multiple of \(shape.keyValueHeads) key/value heads")
        guard shape.rows > 0, shape.queryHeads > 0 else { return }
        let group = shape.queryHeads / shape.keyValueHeads
        let headDim = shape.headDim
        let cacheStride = shape.keyValueHeads * headDim
        let items = shape.rows * shape.keyValueHeads
        let longest = shape.firstPosition + shape.rows

        // Split positions only when (row, head) pairs cannot keep the threads busy.
        let targetTasks = pool.threadCount == 1 ? 1 : pool.threadCount * 4
        let segments = items >= targetTasks ? 1
            : max(1, min((targetTasks + items - 1) / items, longest / minimumPositionsPerSegment))

        let q = SendablePointer(queries)
        let k = SendablePointer(keys.assumingMemoryBound(to: UInt8.self))
        let v = SendablePointer(values.assumingMemoryBound(to: UInt8.self))
        let out = SendablePointer(output)
        let elementBytes = halfCache ? 2 : 4
        let half: Int32 = halfCache ? 1 : 0

        if segments == 1 {
            // SAFETY: each task writes only the output vectors of its own row and head group.
            pool.forEachTask(count: items) { item in
                let row = item / shape.keyValueHeads
                let kvHead = item % shape.keyValueHeads
                let visible = shape.firstPosition + row + 1
                let headOffset = (row * shape.queryHeads + kvHead * group) * headDim
                withUnsafeTemporaryAllocation(of: Float.self, capacity: group * visible) { scores in
                    ck_attention_group(q.pointer + headOffset, headDim, group,
                                       k.pointer + kvHead * headDim * elementBytes,
                                       v.pointer + kvHead * headDim * elementBytes,
                                       half, cacheStride, headDim, visible, shape.scale, scores.baseAddress!,
                                       out.pointer + headOffset, headDim, nil, nil)
                }
            }
            return
        }

        // Partial results per (item, segment): `group` unnormalized output
        // vectors, then `group` maxima and `group` sums.
        let partialSize = group * (headDim + 2)
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: items * segments * partialSize)
        defer { partials.deallocate() }
        let partial = SendablePointer(partials)

        // SAFETY: each task writes only its own partial-result slot.
        pool.forEachTask(count: items * segments) { task in
            let item = task / segments
            let segment = task % segments
            let row = item / shape.keyValueHeads
            let kvHead = item % shape.keyValueHeads
            let visible = shape.firstPosition + row + 1
            let start = visible * segment / segments
            let end = visible * (segment + 1) / segments
            let slot = partial.pointer + task * partialSize
            let maxima = slot + group * headDim
            let sums = maxima + group
            guard start < end else {
                // An empty range contributes nothing to the merge.
                for g in 0..<group {
                    maxima[g] = -.infinity
                    sums[g] = 0
                }
                return
            }
            let headOffset = (row * shape.queryHeads + kvHead * group) * headDim
            let cacheOffset = (start * cacheStride + kvHead * headDim) * elementBytes
            withUnsafeTemporaryAllocation(of: Float.self, capacity: group * (end - start)) { scores in
                ck_attention_group(q.pointer + headOffset, headDim, group,
                                   k.pointer + cacheOffset, v.pointer + cacheOffset,
                                   half, cacheStride, headDim, end - start, shape.scale, scores.baseAddress!,
                                   slot, headDim, maxima, sums)
            }
        }

        // Merge: out = sum_s e^(m_s - m) o_s / sum_s e^(m_s - m) l_s.
        for item in 0..<items {
            let row = item / shape.keyValueHeads
            let kvHead = item % shape.keyValueHeads
            for g in 0..<group {
                var maximum = -Float.infinity
                for segment in 0..<segments {
                    let slot = partials + (item * segments + segment) * partialSize
                    maximum = max(maximum, slot[group * headDim + g])
                }
                let result = output + (row * shape.queryHeads + kvHead * group + g) * headDim
                result.initialize(repeating: 0, count: headDim)
                var total: Float = 0
                for segment in 0..<segments {
                    let slot = partials + (item * segments + segment) * partialSize
                    let segmentMaximum = slot[group * headDim + g]
                    guard segmentMaximum > -.infinity else { continue }
                    let weight = exp(segmentMaximum - maximum)
                    total += weight * slot[group * headDim + group + g]
                    let vector = slot + g * headDim
                    for d in 0..<headDim { result[d] += weight * vector[d] }
                }
                let inverse = 1 / total
                for d in 0..<headDim { result[d] *= inverse }
            }
        }
    }
}
