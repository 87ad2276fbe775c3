import Models
import Tensor

/// A static blend folded into private float32 copies of the adapted
/// weights: `W' = W + Σ_i w_i · s_i · B_i A_i`, computed once, so decoding
/// costs exactly what the base model costs. Unadapted projections keep the
/// shared base weights.
///
/// Memory: one copy of every projection an active expert adapts
/// (`mergedByteCount`), in float32, or in Q8_0 when the base is quantized
/// (Q8_0 or Q4_0). A change of weights needs a new merge.
public final class MergedBlend: ProjectionDelta {
    public let experts: [LoRAAdapter]
    public let weights: [Double]
    /// Indexed by `layer * 7 + kind index`; nil where no active expert adapts.
    let merged: [WeightMatrix?]

    public init(model: LanguageModel, experts: [LoRAAdapter], weights: [Double], pool: ComputePool = .allCores) throws {
        // The fused blend validates the weights and stacks the active
        // experts, in float32 whatever the experts' stack type.
        let fused = try ExpertBlend(experts: experts, weights: weights, stackType: .f32)
        self.experts = experts
        self.weights = weights
        let kinds = ProjectionKind.allCases.count
        var merged = [WeightMatrix?](repeating: nil, count: model.config.numHiddenLayers * kinds)
        for projection in model.projections {
            let index = projection.id.layer * kinds + projection.id.kind.index
            guard index < fused.stacks.count, let stack = fused.stacks[index] else { continue }
            merged[index] = Self.merge(projection.weight, stack, pool: pool)
        }
        self.merged = merged
    }

    /// `W + B_cat · diag(d) · A_cat` as a new float32 matrix.
    static func merge(_ base: WeightMatrix, _ stack: ExpertBlend.Stack, pool: ComputePool) -> WeightMatrix {
        let outCount = base.rows
        let inCount = base.columns
        let rank = stack.totalRank
        // (d ⊙ A_cat)ᵀ [in, rank], so one linear call gives ΔW [out, in] = B_cat · (d ⊙ A_cat).
        let a = stack.a.toFloatArray()
        var scaledTransposed = [Float](repeating: 0, count: inCount * rank)
        for r in 0..<rank {
            for i in 0..<inCount {
                scaledTransposed[i * rank + r] = stack.scales[r] * a[r * inCount + i]
            }
        }
        let factor = WeightMatrix(copying: scaledTransposed, rows: inCount, columns: rank)
        let b = stack.b.toFloatArray()
        var result = [Float](repeating: 0, count: outCount * inCount)
        b.withUnsafeBufferPointer { bPointer in
            result.withUnsafeMutableBufferPointer { output in
                Kernels.linear(weight: factor, input: bPointer.baseAddress!, rows: outCount, output: output.baseAddress!, pool: pool)
                var row = [Float](repeating: 0, count: inCount)
                for index in 0..<outCount {
                    base.copyRow(index, to: &row)
                    for i in 0..<inCount { output[index * inCount + i] += row[i] }
                }
            }
        }
        let merged = WeightMatrix(copying: result, rows: outCount, columns: inCount)
        // A quantized base gets Q8_0 copies, whatever its own format. Q4_0's
        // step is 1/8 of a block's largest weight, coarser than a typical
        // LoRA change, so rounding the merged weights to Q4_0 would erase
        // most of the experts' effect.
        return base.dtype.isQuantized ? merged.quantized(to: .q8_0, pool: pool) : merged
    }

    /// Bytes of the merged copies.
    public var mergedByteCount: Int { merged.reduce(0) { $0 + ($1?.byteCount ?? 0) } }

    /// Bytes a merge of these experts would take at most, without merging:
    /// float32 copies of the projections any active expert adapts.
    public static func estimatedByteCount(model: LanguageModel, experts: [LoRAAdapter], weights: [Double]) -> Int {
        var adapted = Set<ProjectionID>()
        for (expert, weight) in zip(experts, weights) where abs(weight) >= ExpertBlend.skipThreshold {
            adapted.formUnion(expert.modules.keys)
        }
        return model.projections.filter { adapted.contains($0.id) }.reduce(0) { $0 + $1.weight.rows * $1.weight.columns * 4 }
    }

    public func mergedWeight(for projection: ProjectionID) -> WeightMatrix? {
        let index = projection.layer * ProjectionKind.allCases.count + projection.kind.index
        return index < merged.count ? merged[index] : nil
    }

    public func accumulate(projection: ProjectionID, input: UnsafePointer<Float>, rows: Int,
                           output: UnsafeMutablePointer<Float>, pool: ComputePool) {}
}
