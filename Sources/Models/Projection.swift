import Tensor

/// The seven linear projections of a decoder layer, named as in checkpoints.
public enum ProjectionKind: String, CaseIterable, Sendable, Hashable {
    case qProj = "q_proj"
    case kProj = "k_proj"
    case vProj = "v_proj"
    case oProj = "o_proj"
    case gateProj = "gate_proj"
    case upProj = "up_proj"
    case downProj = "down_proj"

    /// Position in `allCases`, for tables indexed by projection.
    public var index: Int {
        switch self {
        case .qProj: return 0
        case .kProj: return 1
        case .vProj: return 2
        case .oProj: return 3
        case .gateProj: return 4
        case .upProj: return 5
        case .downProj: return 6
        }
    }

    /// The submodule that holds the projection: `self_attn` or `mlp`.
    public var parentModule: String {
        switch self {
        case .qProj, .kProj, .vProj, .oProj: return "self_attn"
        case .gateProj, .upProj, .downProj: return "mlp"
        }
    }
}

/// One projection of one layer.
public struct ProjectionID: Hashable, Sendable, CustomStringConvertible {
    public var layer: Int
    public var kind: ProjectionKind

    public init(layer: Int, kind: ProjectionKind) {
        self.layer = layer
        self.kind = kind
    }

    /// Module path as in Hugging Face checkpoints and PEFT adapters,
    /// e.g. `model.layers.3.self_attn.q_proj`.
    public var moduleName: String { "model.layers.\(layer).\(kind.parentModule).\(kind.rawValue)" }

    public var description: String { moduleName }
}

/// A linear projection's weights: `W [out, in]` and an optional bias `[out]`.
public struct Projection: Sendable {
    public let id: ProjectionID
    public let weight: WeightMatrix
    public let bias: [Float]?

    public var inFeatures: Int { weight.columns }
    public var outFeatures: Int { weight.rows }
}

/// Output added to a projection on top of `W x + b`, such as a blend of LoRA
/// experts. The model calls it for every projection of every layer, so an
/// implementation must be cheap for projections it does not touch.
public protocol ProjectionDelta: Sendable {
    /// Adds this delta's contribution for `rows` input vectors to `output`.
    /// `input` is `[rows, inFeatures]` and `output` is `[rows, outFeatures]`.
    func accumulate(
        projection: ProjectionID,
        input: UnsafePointer<Float>,
        rows: Int,
        output: UnsafeMutablePointer<Float>,
        pool: ComputePool)

    /// A weight that replaces the base weight of `projection` (a blend merged
    /// into a private copy), or nil to use the base weight.
    func mergedWeight(for projection: ProjectionID) -> WeightMatrix?
}

extension ProjectionDelta {
    public func mergedWeight(for projection: ProjectionID) -> WeightMatrix? { nil }
}

extension Projection {
    /// `output [rows, out] = input [rows, in] · Wᵀ + b`, plus each segment's
    /// delta on that segment's rows. Every linear projection of the model goes
    /// through here.
    func apply(
        input: UnsafePointer<Float>,
        rows: Int,
        output: UnsafeMutablePointer<Float>,
        segments: [RowSegment],
        pool: ComputePool
    ) {
        if segments.contains(where: { $0.delta?.mergedWeight(for: id) != nil }) {
            // Some sequence runs a merged blend: each segment uses its own weight.
            for segment in segments {
                let first = segment.rows.lowerBound
                Kernels.linear(weight: segment.delta?.mergedWeight(for: id) ?? weight, input: input + first * inFeatures,
                               rows: segment.rows.count, output: output + first * outFeatures, pool: pool)
            }
        } else {
            Kernels.linear(weight: weight, input: input, rows: rows, output: output, pool: pool)
        }
        if let bias {
            bias.withUnsafeBufferPointer { b in
                for row in 0..<rows {
                    Kernels.add(output + row * outFeatures, b.baseAddress!, count: outFeatures)
                }
            }
        }
        for segment in segments {
            guard let delta = segment.delta else { continue }
            let first = segment.rows.lowerBound
            delta.accumulate(projection: id, input: input + first * inFeatures, rows: segment.rows.count,
                             output: output + first * outFeatures, pool: pool)
        }
    }
}
