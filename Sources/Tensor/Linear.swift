/// Namespace for the fast kernels. Each has a slow twin in `ReferenceKernels`
/// that the tests compare it with.
public enum Kernels {}

extension Kernels {
    /// `W [out, in]` applied to `rows` input vectors: `Y [rows, out] = X [rows, in] · Wᵀ`,
    /// or `Y += X · Wᵀ` when `accumulate` is true.
    ///
    /// Output rows are split across the pool's threads. Weights in bf16 or f16
    /// are widened four rows at a time into a per-thread buffer and reused for
    /// every input row, so the conversion cost is paid once per call.
    public static func linear(
        weight: WeightMatrix,
        input: UnsafePointer<Float>,
        rows: Int,
        output: UnsafeMutablePointer<Float>,
        accumulate: Bool = false,
        pool: ComputePool
    ) {
        let inCount = weight.columns
        let outCount = weight.rows
        guard rows > 0, outCount > 0 else { return }
        let x = SendablePointer(input)
        let y = SendablePointer(output)

        // SAFETY: each chunk writes only the output columns of its own weight rows.
        pool.forEachChunk(count: outCount, alignment: 4, minimumChunk: 16) { range in
            let needsWidening = weight.dtype != .f32
            let scratch = needsWidening ? UnsafeMutablePointer<Float>.allocate(capacity: 4 * inCount) : nil
            defer { scratch?.deallocate() }

            var row = range.lowerBound
            while row < range.upperBound {
                let blockRows = min(4, range.upperBound - row)
                let block: UnsafePointer<Float>
                if let scratch {
                    convertToFloat(weight.base + row * weight.rowByteCount, dtype: weight.dtype,
                                   count: blockRows * inCount, into: scratch)
                    block = UnsafePointer(scratch)
                } else {
                    block = (weight.base + row * weight.rowByteCount).assumingMemoryBound(to: Float.self)
                }

                if blockRows == 4 {
                    applyFourRows(block, inCount: inCount, outCount: outCount, firstRow: row,
                                  input: x.pointer, rows: rows, output: y.pointer, accumulate: accumulate)
                } else {
                    for r in 0..<blockRows {
                        let w = block + r * inCount
                        for t in 0..<rows {
                            let value = dot(w, x.pointer + t * inCount, count: inCount)
                            let index = t * outCount + row + r
                            y.pointer[index] = accumulate ? y.pointer[index] + value : value
                        }
                    }
                }
                row += blockRows
            }
        }
    }

    /// Four consecutive weight rows times every input row, two input rows at a time.
    @inline(__always)
    private static func applyFourRows(
        _ w: UnsafePointer<Float>, inCount: Int, outCount: Int, firstRow: Int,
        input: UnsafeMutablePointer<Float>, rows: Int,
        output: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        let w0 = w, w1 = w + inCount, w2 = w + 2 * inCount, w3 = w + 3 * inCount
        let vectorEnd = inCount & ~7
        var t = 0
        while t + 2 <= rows {
            let xa = UnsafePointer(input + t * inCount)
            let xb = xa + inCount
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
            var i = 0
            while i < vectorEnd {
                let va = load8(xa, i), vb = load8(xb, i)
                let v0 = load8(w0, i), v1 = load8(w1, i), v2 = load8(w2, i), v3 = load8(w3, i)
                a0.addProduct(v0, va); a1.addProduct(v1, va); a2.addProduct(v2, va); a3.addProduct(v3, va)
                b0.addProduct(v0, vb); b1.addProduct(v1, vb); b2.addProduct(v2, vb); b3.addProduct(v3, vb)
                i += 8
            }
            var sa = SIMD4<Float>(horizontalSum(a0), horizontalSum(a1), horizontalSum(a2), horizontalSum(a3))
            var sb = SIMD4<Float>(horizontalSum(b0), horizontalSum(b1), horizontalSum(b2), horizontalSum(b3))
            while i < inCount {
                let wv = SIMD4<Float>(w0[i], w1[i], w2[i], w3[i])
                sa += wv * xa[i]
                sb += wv * xb[i]
                i += 1
            }
            store4(sa, output + t * outCount + firstRow, accumulate: accumulate)
            store4(sb, output + (t + 1) * outCount + firstRow, accumulate: accumulate)
            t += 2
        }
        if t < rows {
            let xa = UnsafePointer(input + t * inCount)
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var i = 0
            while i < vectorEnd {
                let va = load8(xa, i)
                a0.addProduct(load8(w0, i), va); a1.addProduct(load8(w1, i), va)
                a2.addProduct(load8(w2, i), va); a3.addProduct(load8(w3, i), va)
                i += 8
            }
            var sa = SIMD4<Float>(horizontalSum(a0), horizontalSum(a1), horizontalSum(a2), horizontalSum(a3))
            while i < inCount {
                sa += SIMD4<Float>(w0[i], w1[i], w2[i], w3[i]) * xa[i]
                i += 1
            }
            store4(sa, output + t * outCount + firstRow, accumulate: accumulate)
        }
    }

    @inline(__always)
    private static func store4(_ value: SIMD4<Float>, _ pointer: UnsafeMutablePointer<Float>, accumulate: Bool) {
        for lane in 0..<4 {
            pointer[lane] = accumulate ? pointer[lane] + value[lane] : value[lane]
        }
    }

    /// Dot product of two f32 vectors of `count` elements.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= count {
            acc0.addProduct(load8(a, i), load8(b, i))
            acc1.addProduct(load8(a, i + 8), load8(b, i + 8))
            i += 16
        }
        if i + 8 <= count {
            acc0.addProduct(load8(a, i), load8(b, i))
            i += 8
        }
        var sum = horizontalSum(acc0 + acc1)
        while i < count {
            sum += a[i] * b[i]
            i += 1
        }
        return sum
    }
}
