import CKernels
import Foundation

extension Kernels {
    /// SwiGLU gate: `gate[i] = silu(gate[i]) · up[i]` for `count` elements,
    /// with `silu(x) = x / (1 + e^-x)`. The AVX2 build uses a polynomial
    /// `exp` whose relative error stayed below 3e-7 over [-87, 88.5] in a
    /// sweep against the C library's double `exp`.
    public static func siluMultiply(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        ck_silu_multiply(gate, up, count)
    }

    /// `a[i] += b[i]` for `count` elements.
    public static func add(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            store8(load8(a, i) + load8(b, i), a, i)
            i += 8
        }
        while i < count {
            a[i] += b[i]
            i += 1
        }
    }

    /// Natural-log softmax of `count` logits, computed with a Double sum.
    public static func logSoftmax(_ logits: UnsafePointer<Float>, count: Int, output: UnsafeMutablePointer<Float>) {
        var maximum = -Float.infinity
        for i in 0..<count { maximum = max(maximum, logits[i]) }
        var sum = 0.0
        for i in 0..<count { sum += Double(exp(logits[i] - maximum)) }
        let logSum = Float(log(sum))
        for i in 0..<count {
            output[i] = logits[i] - maximum - logSum
        }
    }
}
