/// Element type of a stored tensor. Activations are always `Float`; weights
/// may stay in their file's type and are widened inside the kernels.
///
/// `q8_0` and `q4_0` are block-quantized weight formats made by
/// `WeightMatrix.quantized(to:pool:)`; their memory layout is described in
/// Quantization.swift. No safetensors file uses them.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    /// Blocks of 32 weights: one binary16 scale `d` and 32 int8 quants `q`,
    /// value `d * q` (llama.cpp's Q8_0).
    case q8_0 = "Q8_0"
    /// Blocks of 32 weights: one binary16 scale `d` and 32 4-bit quants `q`,
    /// value `d * (q - 8)` (llama.cpp's Q4_0).
    case q4_0 = "Q4_0"

    /// Whether elements are stored in blocks with a shared scale.
    public var isQuantized: Bool {
        switch self {
        case .f32, .f16, .bf16: return false
        case .q8_0, .q4_0: return true
        }
    }

    /// Bytes of one element. Traps for the block-quantized types, whose
    /// elements have no byte size of their own; use
    /// `WeightMatrix.byteCount` for their storage.
    public var byteSize: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q8_0, .q4_0:
            preconditionFailure("DType.byteSize: \(rawValue) is block-quantized and has no per-element size")
        }
    }
}
