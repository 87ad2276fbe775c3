import CKernels

/// Namespace for the fast kernels. Each has a slow twin in `ReferenceKernels`
/// that the tests compare it with.
public enum Kernels {}

extension Kernels {
    /// `W [out, in]` applied to `rows` input vectors: `Y [rows, out] = X [rows, in] · Wᵀ`,
    /// or `Y += X · Wᵀ` when `accumulate` is true. `W` may be in any `DType`.
    ///
    /// One input row (decoding) streams the weights once through a
    /// matrix-vector kernel, split over the pool's threads by output rows.
    /// Several rows use a blocked matrix-matrix product that widens each
    /// panel of weights to floats once and reuses it for every input row.
    ///
    /// For quantized weights and at most `integerPathMaximumRows` input rows,
    /// with `quantizeActivations` true, each input row is first quantized to
    /// int8 blocks of 32 with a float scale each, as llama.cpp does. Every
    /// block product is then an exact integer dot product. Each row's
    /// results are the same whether it comes alone or with others, so
    /// batched decoding gives the same numbers as decoding each sequence
    /// alone (for float weights it does not: one row and several rows sum in
    /// different orders). The rounding moves each
    /// input value by at most `max|x_b| / 254`, half a step of its block `b`,
    /// so output `o` moves by at most the sum over blocks of
    /// `max|x_b| / 254 · Σ|W[o, b]|`. More rows, or `quantizeActivations`
    /// false, take the float path, which multiplies the dequantized weights
    /// with the float inputs.
    public static func linear(
        weight: WeightMatrix,
        input: UnsafePointer<Float>,
        rows: Int,
        output: UnsafeMutablePointer<Float>,
        accumulate: Bool = false,
        pool: ComputePool,
        quantizeActivations: Bool = true
    ) {
        let outCount = weight.rows
        guard rows > 0, outCount > 0 else { return }
        if weight.columns == 0 {
            if !accumulate { output.initialize(repeating: 0, count: rows * outCount) }
            return
        }
        if weight.dtype.isQuantized && quantizeActivations && rows <= integerPathMaximumRows {
            quantizedProduct(weight: weight, input: input, rows: rows, output: output, accumulate: accumulate, pool: pool)
            return
        }
        if rows == 1 && !weight.dtype.isQuantized {
            floatMatrixVector(weight: weight, input: input, output: output, accumulate: accumulate, pool: pool)
            return
        }
        matrixMatrix(weight: weight, input: input, rows: rows, output: output, accumulate: accumulate, pool: pool)
    }

    /// Maximum number of input rows for which quantized weights use the
    /// integer path. Up to here it beat widening the weights to floats: Q8_0
    /// 576→576 with 8 rows took 0.077 ms against 0.106 ms, and with 2 rows
    /// 0.023 ms against 0.051 ms (kernel-bench --cpu-time, one thread).
    public static let integerPathMaximumRows = 8

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

// MARK: - Matrix-vector products (one input row)

extension Kernels {
    /// Weight bytes per task below which splitting a matrix-vector product
    /// over threads costs more than it saves. Starting a loop on spinning
    /// helpers took 0.2-0.6 µs (kernel-bench), and 32 KB streams from memory
    /// in about 2 µs at 16 GB/s. NOTE: an estimate, not tuned; a sleeping
    /// helper takes far longer to wake.
    static let minimumBytesPerTask = 32 * 1024

    /// Ranges of output rows for a matrix-vector product over `rowBytes`-byte
    /// rows, each a multiple of four rows. Large matrices get three tasks per
    /// thread, so a thread that falls behind on a shared machine can be
    /// helped. Smaller ones get a multiple of the thread count, so no thread
    /// is left with an extra task.
    static func matrixVectorTasks(outCount: Int, rowBytes: Int, pool: ComputePool) -> (count: Int, rowsPerTask: Int) {
        let threads = pool.threadCount
        let affordable = max(1, outCount * rowBytes / minimumBytesPerTask)
        var tasks = min(threads * 3, affordable, (outCount + 3) / 4)
        if tasks > threads {
            tasks -= tasks % threads
        }
        let rowsPerTask = ((outCount + tasks - 1) / tasks + 3) & ~3
        return ((outCount + rowsPerTask - 1) / rowsPerTask, rowsPerTask)
    }

    static func floatMatrixVector(
        weight: WeightMatrix, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        accumulate: Bool, pool: ComputePool
    ) {
        let outCount = weight.rows
        let columns = weight.columns
        let rowBytes = weight.rowByteCount
        let (taskCount, rowsPerTask) = matrixVectorTasks(outCount: outCount, rowBytes: rowBytes, pool: pool)
        let x = SendablePointer(input)
        let y = SendablePointer(output)
        let accumulateFlag: Int32 = accumulate ? 1 : 0

        // SAFETY: each task writes only the outputs of its own weight rows.
        pool.forEachTask(count: taskCount) { task in
            let first = task * rowsPerTask
            let count = min(rowsPerTask, outCount - first)
            let rowsBase = weight.base + first * rowBytes
            switch weight.dtype {
            case .f32:
                ck_gemv_f32(rowsBase.assumingMemoryBound(to: Float.self), rowBytes, count,
                            x.pointer, columns, y.pointer + first, accumulateFlag)
            case .f16:
                ck_gemv_f16(rowsBase.assumingMemoryBound(to: UInt16.self), rowBytes, count,
                            x.pointer, columns, y.pointer + first, accumulateFlag)
            case .bf16:
                ck_gemv_bf16(rowsBase.assumingMemoryBound(to: UInt16.self), rowBytes, count,
                             x.pointer, columns, y.pointer + first, accumulateFlag)
            case .q8_0, .q4_0:
                preconditionFailure("floatMatrixVector: \(weight.dtype.rawValue) is quantized")
            }
        }
    }

    /// Quantized weights times `rows` input rows, each quantized to int8 blocks.
    static func quantizedProduct(
        weight: WeightMatrix, input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>,
        accumulate: Bool, pool: ComputePool
    ) {
        let layout = QuantizedLayout(dtype: weight.dtype, rows: weight.rows, columns: weight.columns)
        let blocks = layout.blocksPerRow
        let inCount = weight.columns
        let outCount = weight.rows
        let (taskCount, rowsPerTask) = matrixVectorTasks(outCount: outCount, rowBytes: weight.rowByteCount * rows, pool: pool)
        let accumulateFlag: Int32 = accumulate ? 1 : 0

        // Activation blocks, row after row: 32 int8 quants, a float scale and the quants' sum each.
        let quants = UnsafeMutablePointer<Int8>.allocate(capacity: rows * blocks * 32)
        let scales = UnsafeMutablePointer<Float>.allocate(capacity: rows * blocks)
        let sums = UnsafeMutablePointer<Int32>.allocate(capacity: rows * blocks)
        defer {
            quants.deallocate()
            scales.deallocate()
            sums.deallocate()
        }
        for row in 0..<rows {
            ck_quantize_activation(input + row * inCount, inCount, blocks,
                                   quants + row * blocks * 32, scales + row * blocks, sums + row * blocks)
        }
        let xQuants = SendablePointer(quants)
        let xScales = SendablePointer(scales)
        let xSums = SendablePointer(sums)
        let y = SendablePointer(output)

        // SAFETY: each task writes only the outputs of its own weight rows.
        // Tasks start at multiples of four rows, the interleaved groups.
        pool.forEachTask(count: taskCount) { task in
            let first = task * rowsPerTask
            let count = min(rowsPerTask, outCount - first)
            let groupQuants = layout.quants(weight.base, row: first)
            let groupScales = layout.scales(weight.base, row: first)
            if weight.dtype == .q4_0 {
                ck_gemv_q4_0(groupQuants.assumingMemoryBound(to: UInt8.self), groupScales, blocks, count,
                             xQuants.pointer, xScales.pointer, xSums.pointer, rows,
                             y.pointer + first, outCount, accumulateFlag)
            } else {
                ck_gemv_q8_0(groupQuants.assumingMemoryBound(to: Int8.self), groupScales, blocks, count,
                             xQuants.pointer, xScales.pointer, rows,
                             y.pointer + first, outCount, accumulateFlag)
            }
        }
    }
}

// MARK: - Matrix-matrix products (several input rows)

extension Kernels {
    /// Bytes of input rows that one column block may span, so the block of
    /// inputs stays in a 512 KB L2 cache next to the weight panel.
    static let inputBlockBytes = 256 * 1024

    static func matrixMatrix(
        weight: WeightMatrix, input: UnsafePointer<Float>, rows: Int,
        output: UnsafeMutablePointer<Float>, accumulate: Bool, pool: ComputePool
    ) {
        let inCount = weight.columns
        let outCount = weight.rows
        let panelRows = Int(CK_PANEL_ROWS)
        let tileRows = Int(CK_TILE_ROWS)
        let panelCount = (outCount + panelRows - 1) / panelRows
        if inCount <= Int(CK_SHORT_ROW_MAX) {
            shortRowsMatrixMatrix(weight: weight, input: input, rows: rows, output: output, accumulate: accumulate, pool: pool)
            return
        }

        // Column blocks: multiples of 64 (whole quantization block pairs) of
        // about equal size, 128...1024 columns. Up to 8 rows the inputs fit in
        // cache whole, so one block spans the row and each weight row is read
        // in one sequential pass.
        let maximumBlock = rows <= 8 ? (inCount + 63) & ~63 : min(1024, max(128, (inputBlockBytes / (rows * 4)) & ~63))
        let blockCount = (inCount + maximumBlock - 1) / maximumBlock
        let blockColumns = ((inCount + blockCount - 1) / blockCount + 63) & ~63

        // Tasks: groups of panels times groups of whole row tiles.
        let tileCount = (rows + tileRows - 1) / tileRows
        let targetTasks = pool.threadCount == 1 ? 1 : pool.threadCount * 4
        let panelGroups = min(panelCount, targetTasks)
        let rowGroups = min(tileCount, max(1, targetTasks / panelGroups))
        let x = SendablePointer(input)
        let y = SendablePointer(output)

        // SAFETY: each task writes only its own (row group, panel group) block of outputs.
        pool.forEachTask(count: panelGroups * rowGroups) { task in
            let panelGroup = task % panelGroups
            let rowGroup = task / panelGroups
            let firstPanel = panelCount * panelGroup / panelGroups
            let endPanel = panelCount * (panelGroup + 1) / panelGroups
            let firstRow = tileCount * rowGroup / rowGroups * tileRows
            let endRow = min(rows, tileCount * (rowGroup + 1) / rowGroups * tileRows)

            withUnsafeTemporaryAllocation(of: Float.self, capacity: panelRows * blockColumns) { panel in
                var description = packingDescription(weight)
                for block in 0..<blockCount {
                    let k0 = block * blockColumns
                    let validColumns = min(blockColumns, inCount - k0)
                    let accumulateFlag: Int32 = accumulate || block > 0 ? 1 : 0
                    for panelIndex in firstPanel..<endPanel {
                        let firstOut = panelIndex * panelRows
                        let outInPanel = min(panelRows, outCount - firstOut)
                        ck_pack_panel(&description, firstOut, outInPanel, k0, validColumns, inCount,
                                      panel.baseAddress!, blockColumns)
                        ck_gemm_panel(panel.baseAddress!, blockColumns, outInPanel,
                                      x.pointer + firstRow * inCount + k0, inCount, endRow - firstRow, validColumns,
                                      y.pointer + firstRow * outCount + firstOut, outCount, accumulateFlag)
                    }
                }
            }
        }
    }

    /// `matrixMatrix` for weight rows of at most `CK_SHORT_ROW_MAX` values,
    /// such as a LoRA up projection `B [out, rank]`, split over output columns
    /// in multiples of 16 and over input rows.
    static func shortRowsMatrixMatrix(
        weight: WeightMatrix, input: UnsafePointer<Float>, rows: Int,
        output: UnsafeMutablePointer<Float>, accumulate: Bool, pool: ComputePool
    ) {
        let outCount = weight.rows
        let columns = weight.columns
        let blockCount = (outCount + 15) / 16
        let targetTasks = pool.threadCount == 1 ? 1 : pool.threadCount * 4
        let outGroups = min(blockCount, targetTasks)
        let rowGroups = min(rows, max(1, targetTasks / outGroups))
        let x = SendablePointer(input)
        let y = SendablePointer(output)
        let accumulateFlag: Int32 = accumulate ? 1 : 0

        // SAFETY: each task writes only its own (row group, output group) block of outputs.
        pool.forEachTask(count: outGroups * rowGroups) { task in
            let outGroup = task % outGroups
            let rowGroup = task / outGroups
            let firstOut = blockCount * outGroup / outGroups * 16
            let endOut = min(outCount, blockCount * (outGroup + 1) / outGroups * 16)
            let firstRow = rows * rowGroup / rowGroups
            let endRow = rows * (rowGroup + 1) / rowGroups
            guard firstOut < endOut, firstRow < endRow else { return }
            var description = packingDescription(weight)
            ck_gemm_short_rows(&description, firstOut, endOut - firstOut, columns,
                               x.pointer + firstRow * columns, endRow - firstRow,
                               y.pointer + firstRow * outCount + firstOut, outCount, accumulateFlag)
        }
    }

    /// Builds the C description of `weight` for `ck_pack_panel`.
    static func packingDescription(_ weight: WeightMatrix) -> ck_weights {
        switch weight.dtype {
        case .f32:
            return ck_weights(format: CK_FORMAT_F32, data: weight.base, rowStride: weight.rowByteCount, scales: nil, blocksPerRow: 0)
        case .f16:
            return ck_weights(format: CK_FORMAT_F16, data: weight.base, rowStride: weight.rowByteCount, scales: nil, blocksPerRow: 0)
        case .bf16:
            return ck_weights(format: CK_FORMAT_BF16, data: weight.base, rowStride: weight.rowByteCount, scales: nil, blocksPerRow: 0)
        case .q8_0, .q4_0:
            let layout = QuantizedLayout(dtype: weight.dtype, rows: weight.rows, columns: weight.columns)
            return ck_weights(format: weight.dtype == .q8_0 ? CK_FORMAT_Q8_0 : CK_FORMAT_Q4_0,
                              data: weight.base, rowStride: 0,
                              scales: layout.scales(weight.base, row: 0), blocksPerRow: layout.blocksPerRow)
        }
    }
}
