import Adapters
import Foundation
import Models
import Tensor

/// The projection delta of an `ArrowRouter`: per token, a softmax over the
/// top-k experts by `|x · prototype|`, applied as
/// `B_cat · (d ⊙ (A_cat · x))` with per-row scales `d`. Immutable, and every
/// call allocates its own scratch, so concurrent calls are safe.
final class ArrowDelta: ProjectionDelta {
    /// One projection's stacked expert weights.
    struct Stack: Sendable {
        /// `[R + E, in]`: the A rows of every expert in order, then one
        /// prototype row per expert, so one product gives `A_cat x` and the scores.
        let routing: WeightMatrix
        /// `[out, R]`: the B columns of every expert in order.
        let b: WeightMatrix
        /// Expert e owns rank rows `rankOffsets[e] ..< rankOffsets[e + 1]`.
        let rankOffsets: [Int]
        /// PEFT's scaling `s_e` of each expert for this projection.
        let scalings: [Float]

        var totalRank: Int { rankOffsets[rankOffsets.count - 1] }
        var expertCount: Int { scalings.count }
    }

    let topK: Int
    let temperature: Double
    /// Indexed by `layer * 7 + kind index`, nil where the experts do not adapt.
    let stacks: [Stack?]

    /// Builds every projection's stack. The experts must share the base model
    /// and the set of adapted projections (checked by `ArrowRouter`).
    init(experts: [LoRAAdapter], topK: Int, temperature: Double, pool: ComputePool) {
        self.topK = topK
        self.temperature = temperature
        let layers = experts.first?.modelConfig.numHiddenLayers ?? 0
        let kinds = ProjectionKind.allCases
        var stacks = [Stack?](repeating: nil, count: layers * kinds.count)
        stacks.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            let slots = SendablePointer(base)
            // SAFETY: each index writes only its own slot.
            pool.forEach(count: layers * kinds.count) { index in
                let id = ProjectionID(layer: index / kinds.count, kind: kinds[index % kinds.count])
                let modules = experts.compactMap { $0.modules[id] }
                slots.pointer[index] = Self.makeStack(modules)
            }
        }
        self.stacks = stacks
    }

    private static func makeStack(_ modules: [LoRAModule]) -> Stack? {
        guard let first = modules.first else { return nil }
        let inCount = first.a.count / first.rank
        let outCount = first.b.count / first.rank
        let totalRank = modules.reduce(0) { $0 + $1.rank }

        var routing = [Float]()
        routing.reserveCapacity((totalRank + modules.count) * inCount)
        var b = [Float](repeating: 0, count: outCount * totalRank)
        var rankOffsets = [0]
        for module in modules {
            routing += module.a
            let column = rankOffsets[rankOffsets.count - 1]
            for row in 0..<outCount {
                for j in 0..<module.rank {
                    b[row * totalRank + column + j] = module.b[row * module.rank + j]
                }
            }
            rankOffsets.append(column + module.rank)
        }
        for module in modules {
            routing += ArrowPrototype.topRightSingularVector(a: module.a, b: module.b, rank: module.rank)
        }
        return Stack(
            routing: WeightMatrix(copying: routing, rows: totalRank + modules.count, columns: inCount),
            b: WeightMatrix(copying: b, rows: outCount, columns: totalRank),
            rankOffsets: rankOffsets,
            scalings: modules.map { Float($0.scaling) })
    }

    private func stack(for projection: ProjectionID) -> Stack? {
        let index = projection.layer * ProjectionKind.allCases.count + projection.kind.index
        guard projection.layer >= 0, index < stacks.count else { return nil }
        return stacks[index]
    }

    func prototype(expert: Int, projection: ProjectionID) -> [Float]? {
        guard let stack = stack(for: projection), expert >= 0, expert < stack.expertCount else { return nil }
        var vector = [Float](repeating: 0, count: stack.routing.columns)
        vector.withUnsafeMutableBufferPointer { buffer in
            if let base = buffer.baseAddress { stack.routing.copyRow(stack.totalRank + expert, to: base) }
        }
        return vector
    }

    func accumulate(
        projection: ProjectionID, input: UnsafePointer<Float>, rows: Int,
        output: UnsafeMutablePointer<Float>, pool: ComputePool
    ) {
        guard rows > 0, let stack = stack(for: projection) else { return }
        let rank = stack.totalRank
        let expertCount = stack.expertCount
        let width = rank + expertCount

        let projected = UnsafeMutablePointer<Float>.allocate(capacity: rows * width)  // [rows, R + E]
        defer { projected.deallocate() }
        let reduced = UnsafeMutablePointer<Float>.allocate(capacity: rows * rank)  // [rows, R]
        defer { reduced.deallocate() }
        let scales = UnsafeMutablePointer<Float>.allocate(capacity: expertCount)
        defer { scales.deallocate() }
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: 2 * expertCount)
        defer { scratch.deallocate() }

        Kernels.linear(weight: stack.routing, input: input, rows: rows, output: projected, pool: pool)
        stack.rankOffsets.withUnsafeBufferPointer { offsets in
            stack.scalings.withUnsafeBufferPointer { scalings in
                for row in 0..<rows {
                    let source = projected + row * width
                    routeRow(scores: source + rank, count: expertCount, scalings: scalings, scales: scales, scratch: scratch)
                    let destination = reduced + row * rank
                    for expert in 0..<expertCount {
                        let scale = scales[expert]
                        for j in offsets[expert]..<offsets[expert + 1] { destination[j] = source[j] * scale }
                    }
                }
            }
        }
        Kernels.linear(weight: stack.b, input: reduced, rows: rows, output: output, accumulate: true, pool: pool)
    }

    /// Sets `scales[e] = coeff_e · s_e` for one token from its raw scores
    /// `x · p_e`: the top-k experts by `|x · p_e|` get `softmax(|x · p_e| / T)`
    /// over the selected experts, and the others 0. `scratch` must have room
    /// for `2 · count` elements.
    private func routeRow(
        scores: UnsafePointer<Float>, count: Int, scalings: UnsafeBufferPointer<Float>,
        scales: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Double>
    ) {
        let remaining = scratch  // |score|, or -1 once selected
        let weights = scratch + count  // exp((|score| - max) / T) of the selected experts, else 0
        for expert in 0..<count {
            remaining[expert] = Double(abs(scores[expert]))
            weights[expert] = 0
        }

        // Selection by repeated maximum, because E is small. Ties go to the
        // lower index. The first pick has the largest score, which the
        // softmax subtracts before exponentiating.
        var largest = 0.0
        var sum = 0.0
        for pick in 0..<topK {
            var best = -1
            for expert in 0..<count where remaining[expert] >= 0 {
                if best < 0 || remaining[expert] > remaining[best] { best = expert }
            }
            guard best >= 0 else { break }
            if pick == 0 { largest = remaining[best] }
            weights[best] = exp((remaining[best] - largest) / temperature)
            sum += weights[best]
            remaining[best] = -1
        }

        for expert in 0..<count {
            scales[expert] = sum > 0 ? Float(weights[expert] / sum) * scalings[expert] : 0
        }
    }
}

/// The prototype computation of Arrow routing, in Double.
///
/// The right-singular vectors of `ΔW = B A` with non-zero singular values lie
/// in A's row space, so each is `p = Aᵀ y` for some `y` of length r. Then
/// `ΔWᵀ ΔW p = λ p` holds when `K y = λ y` for the r×r matrix
/// `K = (Bᵀ B)(A Aᵀ)`, whose eigenvalues are the squared singular values of ΔW.
/// K is squared (and divided by its trace) until it stops changing. Every
/// non-zero column is then K's dominant eigenvector, and power steps with K
/// refine that column until it stops changing.
enum ArrowPrototype {
    /// Maximum number of squarings of K. The resulting 2^30 power steps
    /// separate eigenvalues that differ by a factor of 1 + 1e-8.
    static let maximumSquarings = 30
    static let maximumPowerSteps = 100
    /// Relative change below which K's powers and the vector count as converged.
    static let tolerance = 1e-14

    /// Returns the unit top right-singular vector of `ΔW = B A` (`a [rank, in]`,
    /// `b [out, rank]`) with its largest-magnitude component positive, or a
    /// zero vector when `ΔW = 0` (PEFT's power iteration also gives 0 then).
    ///
    /// NOTE: when the top singular value is repeated, or nearly so, the
    /// result is one vector of the top singular subspace, and PEFT's power
    /// iteration returns a different one that depends on its random start.
    static func topRightSingularVector(a: [Float], b: [Float], rank: Int) -> [Float] {
        let inCount = a.count / rank
        let outCount = b.count / rank
        let zero = [Float](repeating: 0, count: inCount)

        var aTransposed = [Double](repeating: 0, count: inCount * rank)  // Aᵀ [in, rank]
        for i in 0..<rank {
            for k in 0..<inCount { aTransposed[k * rank + i] = Double(a[i * inCount + k]) }
        }
        let gramA = gram(aTransposed, rows: inCount, columns: rank)  // A Aᵀ
        let gramB = gram(b.map { Double($0) }, rows: outCount, columns: rank)  // Bᵀ B
        let k = multiply(gramB, gramA, size: rank)

        guard var y = dominantEigenvector(k, size: rank) else { return zero }
        for _ in 0..<maximumPowerSteps {
            guard let next = normalized(multiply(k, vector: y, size: rank)) else { return zero }
            let change = zip(next, y).map { abs($0 - $1) }.max() ?? 0
            y = next
            if change <= tolerance { break }
        }

        var p = [Double](repeating: 0, count: inCount)  // Aᵀ y
        for i in 0..<rank {
            for column in 0..<inCount { p[column] += y[i] * Double(a[i * inCount + column]) }
        }
        guard let unit = normalized(p) else { return zero }
        let largestIndex = unit.indices.max(by: { abs(unit[$0]) < abs(unit[$1]) }) ?? 0
        let sign = unit[largestIndex] < 0 ? -1.0 : 1.0
        return unit.map { Float(sign * $0) }
    }

    /// Returns a unit-length non-zero column of K^(2^n) once the
    /// trace-normalized powers stop changing, or nil when K is zero.
    private static func dominantEigenvector(_ k: [Double], size n: Int) -> [Double]? {
        guard var power = dividedByTrace(k, size: n) else { return nil }
        for _ in 0..<maximumSquarings {
            guard let next = dividedByTrace(multiply(power, power, size: n), size: n) else { break }
            let scale = next.map { abs($0) }.max() ?? 0
            let change = zip(next, power).map { abs($0 - $1) }.max() ?? 0
            power = next
            if change <= tolerance * scale { break }
        }
        var best: [Double]? = nil
        var bestNorm = 0.0
        for column in 0..<n {
            let vector = (0..<n).map { power[$0 * n + column] }
            let norm = vector.reduce(0) { $0 + $1 * $1 }
            if norm > bestNorm {
                best = vector
                bestNorm = norm
            }
        }
        return best.flatMap(normalized)
    }

    /// Computes `Xᵀ X` for `x [rows, columns]` as a sum of outer products of the rows.
    private static func gram(_ x: [Double], rows: Int, columns n: Int) -> [Double] {
        var result = [Double](repeating: 0, count: n * n)
        x.withUnsafeBufferPointer { xs in
            result.withUnsafeMutableBufferPointer { g in
                for row in 0..<rows {
                    let base = row * n
                    for i in 0..<n {
                        let xi = xs[base + i]
                        if xi == 0 { continue }
                        for j in i..<n { g[i * n + j] += xi * xs[base + j] }
                    }
                }
                for i in 0..<n {
                    for j in 0..<i { g[i * n + j] = g[j * n + i] }
                }
            }
        }
        return result
    }

    /// Multiplies square row-major matrices.
    private static func multiply(_ x: [Double], _ y: [Double], size n: Int) -> [Double] {
        var result = [Double](repeating: 0, count: n * n)
        x.withUnsafeBufferPointer { xs in
            y.withUnsafeBufferPointer { ys in
                result.withUnsafeMutableBufferPointer { output in
                    for i in 0..<n {
                        for k in 0..<n {
                            let xik = xs[i * n + k]
                            if xik == 0 { continue }
                            for j in 0..<n { output[i * n + j] += xik * ys[k * n + j] }
                        }
                    }
                }
            }
        }
        return result
    }

    private static func multiply(_ x: [Double], vector: [Double], size n: Int) -> [Double] {
        (0..<n).map { i in (0..<n).reduce(0) { $0 + x[i * n + $1] * vector[$1] } }
    }

    /// Returns the matrix divided by its trace, or nil when the trace is not
    /// positive and finite. K and its powers have non-negative eigenvalues,
    /// so the trace is their sum, which is 0 only when K = 0 (ΔW = 0).
    private static func dividedByTrace(_ x: [Double], size n: Int) -> [Double]? {
        let trace = (0..<n).reduce(0) { $0 + x[$1 * n + $1] }
        guard trace > 0, trace.isFinite else { return nil }
        return x.map { $0 / trace }
    }

    private static func normalized(_ vector: [Double]) -> [Double]? {
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0, norm.isFinite else { return nil }
        return vector.map { $0 / norm }
    }
}
