// Micro-benchmark of the Tensor kernels: Kernels.linear at the projection
// shapes of SmolLM2-135M and Qwen2.5-0.5B for every weight format, attention
// at context 512, and the cost of starting a parallel loop.
//
// Usage: kernel-bench [--threads 1,2] [--formats f32,bf16,f16,q8_0,q4_0]
//                     [--rows 1,128] [--models smollm2,qwen2.5] [--seconds S]
//                     [--batches N] [--fastest] [--cpu-time]
// Each time is the median of N batches (default 7), or the fastest batch
// with --fastest; a batch repeats the call until it has run for S / N
// seconds (default S = 0.35). --cpu-time measures the calling thread's CPU time instead of
// wall time, which ignores time the thread spent descheduled on a busy
// machine but also ignores helper threads: use it with --threads 1 only.
// Prints Markdown tables.
import CKernels
import Dispatch
import Foundation
import Tensor

let options = Options(arguments: CommandLine.arguments)

struct Options {
    var threads = [1, 2]
    var formats: [DType] = [.f32, .bf16, .f16, .q8_0, .q4_0]
    var rows = [1, 128]
    var models = ["smollm2", "qwen2.5"]
    var seconds = 0.35
    var batches = 7
    var fastest = false
    var cpuTime = false

    init(arguments: [String]) {
        var index = 1
        func value() -> String {
            index += 1
            guard index < arguments.count else {
                FileHandle.standardError.write("kernel-bench: missing value after \(arguments[index - 1])\n".data(using: .utf8)!)
                exit(2)
            }
            return arguments[index]
        }
        while index < arguments.count {
            switch arguments[index] {
            case "--threads": threads = value().split(separator: ",").compactMap { Int($0) }
            case "--formats": formats = value().split(separator: ",").compactMap { DType(rawValue: $0.uppercased()) }
            case "--rows": rows = value().split(separator: ",").compactMap { Int($0) }
            case "--models": models = value().split(separator: ",").map(String.init)
            case "--seconds": seconds = Double(value()) ?? seconds
            case "--batches": batches = max(1, Int(value()) ?? batches)
            case "--fastest": fastest = true
            case "--cpu-time": cpuTime = true
            default:
                FileHandle.standardError.write("kernel-bench: unknown option \(arguments[index])\n".data(using: .utf8)!)
                exit(2)
            }
            index += 1
        }
    }
}

/// Nanoseconds of wall time, or of this thread's CPU time with --cpu-time.
func clockNanoseconds() -> UInt64 {
    guard options.cpuTime else { return DispatchTime.now().uptimeNanoseconds }
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Median (or, with --fastest, minimum) seconds per call of `body` over the batches.
func measure(seconds: Double, _ body: () -> Void) -> Double {
    body()
    let batchNanoseconds = UInt64(seconds / Double(options.batches) * 1e9)
    var samples: [Double] = []
    for _ in 0..<options.batches {
        let start = clockNanoseconds()
        var calls = 0
        var now = start
        repeat {
            body()
            calls += 1
            now = clockNanoseconds()
        } while now - start < batchNanoseconds
        samples.append(Double(now - start) / 1e9 / Double(calls))
    }
    return options.fastest ? samples.min()! : samples.sorted()[samples.count / 2]
}

func randomMatrix(rows: Int, columns: Int, seed: UInt64) -> [Float] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<rows * columns).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Float(Int64(bitPattern: state) % 1_000_000) / 20_000_000
    }
}

/// Stores the same values as `dtype`.
func convert(_ values: [Float], rows: Int, columns: Int, to dtype: DType) -> WeightMatrix {
    let f32 = WeightMatrix(copying: values, rows: rows, columns: columns)
    switch dtype {
    case .f32:
        return f32
    case .f16, .bf16:
        let buffer = OwnedBuffer(byteCount: values.count * 2)
        let halves = buffer.pointer.assumingMemoryBound(to: UInt16.self)
        if dtype == .f16 {
            values.withUnsafeBufferPointer { Kernels.convertToFloat16($0.baseAddress!, count: values.count, into: halves) }
        } else {
            for (i, value) in values.enumerated() { halves[i] = bfloat16FromFloat(value) }
        }
        return WeightMatrix(rows: rows, columns: columns, dtype: dtype, base: UnsafeRawPointer(buffer.pointer), owner: buffer)
    case .q8_0, .q4_0:
        return f32.quantized(to: dtype, pool: .allCores)
    }
}

struct Shape {
    let name: String
    let out: Int
    let columns: Int
    /// How many times one token runs this shape (layers × uses per layer).
    let perToken: Int
}

let models: [String: (label: String, layers: Int, shapes: [Shape])] = [
    "smollm2": ("SmolLM2-135M", 30, [
        Shape(name: "q/o 576→576", out: 576, columns: 576, perToken: 60),
        Shape(name: "k/v 576→192", out: 192, columns: 576, perToken: 60),
        Shape(name: "gate/up 576→1536", out: 1536, columns: 576, perToken: 60),
        Shape(name: "down 1536→576", out: 576, columns: 1536, perToken: 30),
        Shape(name: "lm_head 576→49152", out: 49152, columns: 576, perToken: 1),
    ]),
    "qwen2.5": ("Qwen2.5-0.5B", 24, [
        Shape(name: "q/o 896→896", out: 896, columns: 896, perToken: 48),
        Shape(name: "k/v 896→128", out: 128, columns: 896, perToken: 48),
        Shape(name: "gate/up 896→4864", out: 4864, columns: 896, perToken: 48),
        Shape(name: "down 4864→896", out: 896, columns: 4864, perToken: 24),
        Shape(name: "lm_head 896→151936", out: 151936, columns: 896, perToken: 1),
    ]),
]

print("kernel-bench: AVX2 paths \(ck_uses_avx2() != 0 ? "on" : "off"), \(ProcessInfo.processInfo.activeProcessorCount) processors\n")

// MARK: Parallel-loop start cost

do {
    print("### Starting a parallel loop (2 tasks that do nothing)\n")
    print("| mechanism | µs per loop |")
    print("|---|---|")
    let pool = ComputePool(threadCount: 2)
    let persistent = measure(seconds: options.seconds) { pool.forEachTask(count: 2) { _ in } }
    let dispatch = measure(seconds: options.seconds) { DispatchQueue.concurrentPerform(iterations: 2) { _ in } }
    print("| ComputePool (persistent helpers) | \(String(format: "%.2f", persistent * 1e6)) |")
    print("| DispatchQueue.concurrentPerform | \(String(format: "%.2f", dispatch * 1e6)) |")
    print()

    // The same small matrix-vector products split in two, by the pool and by
    // Dispatch with each half on one thread. The weights stay in cache, so
    // the start cost is a visible share.
    print("### Small matrix-vector products on 2 threads: ComputePool vs concurrentPerform (weights in cache)\n")
    print("| product | 1 thread µs | ComputePool µs | concurrentPerform µs |")
    print("|---|---|---|---|")
    for (format, out, columns) in [(DType.f32, 192, 576), (DType.f32, 576, 576), (DType.q8_0, 576, 576), (DType.q8_0, 1536, 576)] {
        let weight = convert(randomMatrix(rows: out, columns: columns, seed: 3), rows: out, columns: columns, to: format)
        let halves = (0..<2).map { half -> WeightMatrix in
            let rows = out / 2
            let values = weight.toFloatArray()[(half * rows * columns)..<((half + 1) * rows * columns)]
            return convert(Array(values), rows: rows, columns: columns, to: format)
        }
        let input = randomMatrix(rows: 1, columns: columns, seed: 4)
        let output = UnsafeMutablePointer<Float>.allocate(capacity: out)
        defer { output.deallocate() }
        let y = SendablePointer(output)
        let single = ComputePool(threadCount: 1)
        let seconds = input.withUnsafeBufferPointer { xBuffer -> (Double, Double, Double) in
            let x = SendablePointer(xBuffer.baseAddress!)
            let one = measure(seconds: options.seconds) {
                Kernels.linear(weight: weight, input: x.pointer, rows: 1, output: y.pointer, pool: single)
            }
            let persistent = measure(seconds: options.seconds) {
                Kernels.linear(weight: weight, input: x.pointer, rows: 1, output: y.pointer, pool: pool)
            }
            let dispatch = measure(seconds: options.seconds) {
                DispatchQueue.concurrentPerform(iterations: 2) { half in
                    Kernels.linear(weight: halves[half], input: x.pointer, rows: 1,
                                   output: y.pointer + half * (out / 2), pool: single)
                }
            }
            return (one, persistent, dispatch)
        }
        print("| \(format.rawValue) \(columns)→\(out) | \(String(format: "%.2f", seconds.0 * 1e6)) | \(String(format: "%.2f", seconds.1 * 1e6)) | \(String(format: "%.2f", seconds.2 * 1e6)) |")
    }
    print()
}

// MARK: Linear

for modelKey in options.models {
    guard let model = models[modelKey] else { continue }
    print("### Kernels.linear, \(model.label) shapes\n")
    print("GB/s counts weight bytes read once per call; GFLOP/s is 2·rows·out·in per second.\n")
    print("| shape | format | rows | threads | ms | GB/s | GFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    // Per-token decode time (rows = 1) of all projections and lm_head, by format and threads.
    var tokenTimes: [String: Double] = [:]
    for shape in model.shapes {
        let values = randomMatrix(rows: shape.out, columns: shape.columns, seed: UInt64(shape.out * 7 + shape.columns))
        for format in options.formats {
            // Enough copies to exceed a 32 MB last-level cache, so every call
            // reads its weights from memory, as a whole model's decoding does.
            let first = convert(values, rows: shape.out, columns: shape.columns, to: format)
            let copyCount = max(1, (96 << 20) / first.byteCount)
            let copies = [first] + (1..<copyCount).map { _ in convert(values, rows: shape.out, columns: shape.columns, to: format) }
            // lm_head runs on the last prompt row only when generating, so skip its prefill case.
            for rows in options.rows where rows == 1 || !shape.name.hasPrefix("lm_head") {
                let input = randomMatrix(rows: rows, columns: shape.columns, seed: 5)
                var output = [Float](repeating: 0, count: rows * shape.out)
                for threads in options.threads {
                    let pool = ComputePool(threadCount: threads)
                    var next = 0
                    let seconds = input.withUnsafeBufferPointer { x in
                        output.withUnsafeMutableBufferPointer { y in
                            measure(seconds: options.seconds) {
                                Kernels.linear(weight: copies[next], input: x.baseAddress!, rows: rows, output: y.baseAddress!, pool: pool)
                                next = (next + 1) % copies.count
                            }
                        }
                    }
                    let gigabytes = Double(first.byteCount) / 1e9
                    let gigaflops = 2 * Double(rows * shape.out * shape.columns) / 1e9
                    print("| \(shape.name) | \(format.rawValue) | \(rows) | \(threads) | \(String(format: "%.3f", seconds * 1e3)) | \(String(format: "%.1f", gigabytes / seconds)) | \(String(format: "%.1f", gigaflops / seconds)) |")
                    if rows == 1 {
                        tokenTimes["\(format.rawValue) \(threads)", default: 0] += seconds * Double(shape.perToken)
                    }
                }
            }
        }
    }
    print()
    if options.rows.contains(1) {
        print("Decode estimate, \(model.label): all \(model.layers) layers' projections plus lm_head at rows = 1 (attention, norms and LoRA excluded)\n")
        print("| format | threads | ms per token |")
        print("|---|---|---|")
        for format in options.formats {
            for threads in options.threads {
                if let time = tokenTimes["\(format.rawValue) \(threads)"] {
                    print("| \(format.rawValue) | \(threads) | \(String(format: "%.2f", time * 1e3)) |")
                }
            }
        }
        print()
    }
}

// MARK: LoRA products

do {
    // Four experts of rank 16 stacked: what a blend of four reads per projection.
    print("### Kernels.linear, expert stack shapes (rank sum 64)\n")
    print("| shape | format | rows | threads | ms | GB/s | GFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    let stackShapes = [("A 576→64", 64, 576), ("B 64→576", 576, 64), ("B 64→1536", 1536, 64),
                       ("A 896→64", 64, 896), ("B 64→4864", 4864, 64)]
    for (name, out, columns) in stackShapes {
        for format in options.formats where format != .bf16 && format != .q4_0 {
            let values = randomMatrix(rows: out, columns: columns, seed: 9)
            let weight = format.isQuantized
                ? WeightMatrix(copying: values, rows: out, columns: columns).quantized(to: format)
                : WeightMatrix(copying: values, rows: out, columns: columns, dtype: format)
            for rows in options.rows {
                let input = randomMatrix(rows: rows, columns: columns, seed: 10)
                var output = [Float](repeating: 0, count: rows * out)
                for threads in options.threads {
                    let pool = ComputePool(threadCount: threads)
                    let seconds = input.withUnsafeBufferPointer { x in
                        output.withUnsafeMutableBufferPointer { y in
                            measure(seconds: options.seconds) {
                                Kernels.linear(weight: weight, input: x.baseAddress!, rows: rows, output: y.baseAddress!, accumulate: true, pool: pool)
                            }
                        }
                    }
                    let gigabytes = Double(weight.byteCount) / 1e9
                    let gigaflops = 2 * Double(rows * out * columns) / 1e9
                    print("| \(name) | \(format.rawValue) | \(rows) | \(threads) | \(String(format: "%.4f", seconds * 1e3)) | \(String(format: "%.1f", gigabytes / seconds)) | \(String(format: "%.1f", gigaflops / seconds)) |")
                }
            }
        }
    }
    print()
}

// MARK: Attention

do {
    print("### Kernels.attention at context 512\n")
    print("Decode: 1 query row at position 511. Prefill: 128 rows at positions 384...511. GB/s counts the cache bytes of one pass.\n")
    print("| heads (q/kv × dim) | cache | rows | threads | ms | GB/s |")
    print("|---|---|---|---|---|---|")
    for (queryHeads, keyValueHeads, headDim) in [(9, 3, 64), (14, 2, 64)] {
        let context = 512
        let cacheCount = context * keyValueHeads * headDim
        let keys = randomMatrix(rows: context, columns: keyValueHeads * headDim, seed: 21).map { $0 * 20 }
        let values = randomMatrix(rows: context, columns: keyValueHeads * headDim, seed: 22).map { $0 * 20 }
        var halfKeys = [UInt16](repeating: 0, count: cacheCount)
        var halfValues = [UInt16](repeating: 0, count: cacheCount)
        keys.withUnsafeBufferPointer { k in halfKeys.withUnsafeMutableBufferPointer { Kernels.convertToFloat16(k.baseAddress!, count: cacheCount, into: $0.baseAddress!) } }
        values.withUnsafeBufferPointer { v in halfValues.withUnsafeMutableBufferPointer { Kernels.convertToFloat16(v.baseAddress!, count: cacheCount, into: $0.baseAddress!) } }
        for rows in [1, 128] {
            let shape = AttentionShape(queryHeads: queryHeads, keyValueHeads: keyValueHeads, headDim: headDim,
                                       rows: rows, firstPosition: context - rows, scale: 1 / Float(headDim).squareRoot())
            let queries = randomMatrix(rows: rows, columns: queryHeads * headDim, seed: 23).map { $0 * 20 }
            var output = [Float](repeating: 0, count: rows * queryHeads * headDim)
            for half in [false, true] {
                for threads in options.threads {
                    let pool = ComputePool(threadCount: threads)
                    let seconds = queries.withUnsafeBufferPointer { q in
                        output.withUnsafeMutableBufferPointer { o in
                            if half {
                                return halfKeys.withUnsafeBufferPointer { k in
                                    halfValues.withUnsafeBufferPointer { v in
                                        measure(seconds: options.seconds) {
                                            Kernels.attention(queries: q.baseAddress!, float16Keys: k.baseAddress!, float16Values: v.baseAddress!,
                                                              output: o.baseAddress!, shape: shape, pool: pool)
                                        }
                                    }
                                }
                            }
                            return keys.withUnsafeBufferPointer { k in
                                values.withUnsafeBufferPointer { v in
                                    measure(seconds: options.seconds) {
                                        Kernels.attention(queries: q.baseAddress!, keys: k.baseAddress!, values: v.baseAddress!,
                                                          output: o.baseAddress!, shape: shape, pool: pool)
                                    }
                                }
                            }
                        }
                    }
                    let gigabytes = Double(2 * cacheCount * (half ? 2 : 4)) / 1e9
                    print("| \(queryHeads)/\(keyValueHeads) × \(headDim) | \(half ? "f16" : "f32") | \(rows) | \(threads) | \(String(format: "%.3f", seconds * 1e3)) | \(String(format: "%.1f", gigabytes / seconds)) |")
                }
            }
        }
    }
    print()
}
