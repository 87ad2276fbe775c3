import Models
import Tensor

/// Errors in the weights given to a blend of experts.
public enum BlendError: Error, CustomStringConvertible, Equatable {
    case countMismatch(experts: Int, weights: Int)
    case invalidWeight(expert: String, value: Double)
    case differentBaseModels(first: String, other: String)

    public var description: String {
        switch self {
        case let .countMismatch(experts, weights):
            let expertCount = experts == 1 ? "1 expert" : "\(experts) experts"
            let weightCount = weights == 1 ? "1 weight" : "\(weights) weights"
            return "\(expertCount) but \(weightCount); give one weight per expert"
        case let .invalidWeight(expert, value):
            return "weight \(value) for expert '\(expert)' is not a finite number in single precision"
        case let .differentBaseModels(first, other):
            return "experts '\(first)' and '\(other)' were loaded for different base models"
        }
    }
}

/// A weighted sum of LoRA experts applied to every projection:
/// `Δy = Σ_i w_i · s_i · B_i (A_i x)`, computed as `B_cat · (d ⊙ (A_cat · x))`
/// where `A_cat` stacks the active experts' A rows, `B_cat` their B columns,
/// and `d` repeats `w_i · s_i` over expert i's rank rows. Two small products
/// per projection, whatever the number of experts. This is a sum of products;
/// A's and B's are never averaged separately.
public final class ExpertBlend: ProjectionDelta {
    /// Experts whose |weight| is below this are skipped entirely.
    public static let skipThreshold = 0.001

    /// Stacked weights of one projection's active experts.
    struct Stack: Sendable {
        let a: WeightMatrix      // [totalRank, in]
        let b: WeightMatrix      // [out, totalRank]
        let scales: [Float]      // [totalRank], w_i · s_i per rank row
        var totalRank: Int { scales.count }
    }

    public let experts: [LoRAAdapter]
    public let weights: [Double]
    /// Indexed by `layer * 7 + kind index`; nil where no active expert adapts.
    let stacks: [Stack?]
    /// Element type of the stacks: the active experts' `stackType` when they
    /// all share one, else `.f32`. With `.q8_0`, a stack matrix that Q8_0's
    /// padding would make larger than f16 is kept in f16 (`stackMatrix`).
    public let stackType: DType

    /// Bytes of all stacked A and B matrices, which every decoding step reads.
    public var stackByteCount: Int {
        stacks.reduce(0) { total, stack in total + (stack.map { $0.a.byteCount + $0.b.byteCount } ?? 0) }
    }

    /// `stackType` overrides the type the experts ask for (`MergedBlend`
    /// folds float32 stacks into its copies).
    public init(experts: [LoRAAdapter], weights: [Double], stackType requested: DType? = nil) throws {
        guard experts.count == weights.count else {
            throw BlendError.countMismatch(experts: experts.count, weights: weights.count)
        }
        for (expert, weight) in zip(experts, weights) {
            // The product w · s is applied in Float, so it must be finite there.
            let largestScaling = expert.modules.values.map(\.scaling).max() ?? 1
            guard weight.isFinite, Float(weight).isFinite, Float(weight * largestScaling).isFinite else {
                throw BlendError.invalidWeight(expert: expert.name, value: weight)
            }
        }
        if let first = experts.first, let other = experts.first(where: { $0.modelConfig != first.modelConfig }) {
            throw BlendError.differentBaseModels(first: first.name, other: other.name)
        }
        self.experts = experts
        self.weights = weights

        let layers = experts.first?.modelConfig.numHiddenLayers ?? 0
        let kinds = ProjectionKind.allCases
        var stacks = [Stack?](repeating: nil, count: layers * kinds.count)
        let active = zip(experts, weights).filter { abs($0.1) >= Self.skipThreshold }
        // The stacks are reduced only when every active expert has the same
        // reduced type, so one f32 expert keeps the whole blend exact.
        let types = Set(active.map(\.0.stackType))
        let stackType = requested ?? (types.count == 1 ? types.first ?? .f32 : .f32)
        self.stackType = stackType
        for layer in 0..<layers {
            for kind in kinds {
                let id = ProjectionID(layer: layer, kind: kind)
                let modules = active.compactMap { expert, weight in expert.modules[id].map { ($0, weight) } }
                stacks[layer * kinds.count + kind.index] = Self.makeStack(modules, type: stackType)
            }
        }
        self.stacks = stacks
    }

    /// Weights of active experts keyed by name, for reports.
    public var activeWeights: [(name: String, weight: Double)] {
        zip(experts, weights).filter { abs($0.1) >= Self.skipThreshold }.map { ($0.0.name, $0.1) }
    }

    private static func makeStack(_ modules: [(LoRAModule, Double)], type: DType) -> Stack? {
        guard let first = modules.first?.0 else { return nil }
        let inCount = first.a.count / first.rank
        let outCount = first.b.count / first.rank
        let totalRank = modules.reduce(0) { $0 + $1.0.rank }

        var a = [Float](); a.reserveCapacity(totalRank * inCount)
        var b = [Float](repeating: 0, count: outCount * totalRank)
        var scales = [Float](); scales.reserveCapacity(totalRank)
        var column = 0
        for (module, weight) in modules {
            a += module.a
            for row in 0..<outCount {
                for j in 0..<module.rank {
                    b[row * totalRank + column + j] = module.b[row * module.rank + j]
                }
            }
            scales += [Float](repeating: Float(weight * module.scaling), count: module.rank)
            column += module.rank
        }
        return Stack(a: stackMatrix(a, rows: totalRank, columns: inCount, type: type),
                     b: stackMatrix(b, rows: outCount, columns: totalRank, type: type),
                     scales: scales)
    }

    /// Stores `values` as `type`. Q8_0 pads rows to whole 32-column blocks
    /// and the row count to a multiple of four. When that padding would make
    /// the matrix larger than f16 (a total rank below 32, say), f16 is used.
    public static func stackMatrix(_ values: [Float], rows: Int, columns: Int, type: DType) -> WeightMatrix {
        if type.isQuantized {
            if QuantizedLayout(dtype: type, rows: rows, columns: columns).byteCount < rows * columns * DType.f16.byteSize {
                return WeightMatrix(copying: values, rows: rows, columns: columns).quantized(to: type)
            }
            return WeightMatrix(copying: values, rows: rows, columns: columns, dtype: .f16)
        }
        return WeightMatrix(copying: values, rows: rows, columns: columns, dtype: type)
    }

    public func accumulate(
        projection: ProjectionID, input: UnsafePointer<Float>, rows: Int,
        output: UnsafeMutablePointer<Float>, pool: ComputePool
    ) {
        let index = projection.layer * ProjectionKind.allCases.count + projection.kind.index
        guard index < stacks.count, let stack = stacks[index] else { return }
        let rank = stack.totalRank
        let reduced = UnsafeMutablePointer<Float>.allocate(capacity: rows * rank)  // [rows, totalRank]
        defer { reduced.deallocate() }

        Kernels.linear(weight: stack.a, input: input, rows: rows, output: reduced, pool: pool)
        stack.scales.withUnsafeBufferPointer { scales in
            for row in 0..<rows {
                for j in 0..<rank { reduced[row * rank + j] *= scales[j] }
            }
        }
        Kernels.linear(weight: stack.b, input: reduced, rows: rows, output: output, accumulate: true, pool: pool)
    }
}
