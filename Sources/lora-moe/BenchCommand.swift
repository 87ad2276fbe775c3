import Foundation
import LoRAMoE

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum BenchCommand {
    static let options: [Option] = [
        SharedOptions.model, SharedOptions.experts, SharedOptions.weights,
        Option(name: "prompt-tokens", valueName: "N", help: "prompt length for the prefill measurement (default 512)"),
        Option(name: "gen-tokens", valueName: "N", help: "tokens decoded one at a time after the prompt (default 128)"),
        Option(name: "runs", valueName: "N", help: "measured runs; the median is reported (default 3)"),
        Option(name: "warmup", valueName: "N", help: "unmeasured runs first (default 1)"),
        SharedOptions.merge, SharedOptions.quantize, SharedOptions.kvCache, SharedOptions.threads, SharedOptions.json,
    ]

    static let help = helpText(
        usage: "lora-moe bench --model DIR [--experts A,B --weights 0.7,0.3] [--threads N] --prompt-tokens 512 --gen-tokens 128 [--json]",
        summary: """
        Measure speed: prefill tokens/s over a prompt of --prompt-tokens tokens, decode tokens/s over
        --gen-tokens single-token steps after it, time to first token, load time and peak resident
        memory. The prompt repeats a fixed English text; decoding always runs the most likely token and
        never stops early. Reports the median of --runs runs.
        """,
        options: options)

    struct RunResult {
        var prefillSeconds: Double
        var decodeSeconds: Double
        var firstTokenSeconds: Double
    }

    static func run(_ argv: [String]) throws {
        let arguments = try ParsedArguments(argv, options: options, command: "bench")
        let promptTokens = try arguments.int("prompt-tokens") ?? 512
        let genTokens = try arguments.int("gen-tokens") ?? 128
        let runs = try arguments.int("runs") ?? 3
        let warmup = try arguments.int("warmup") ?? 1
        for (name, value, minimum) in [("prompt-tokens", promptTokens, 1), ("gen-tokens", genTokens, 0), ("runs", runs, 1), ("warmup", warmup, 0)]
        where value < minimum {
            throw UsageError(message: "--\(name) must be at least \(minimum), got \(value)", command: "bench")
        }

        let loaded = try LoadedModel.load(arguments)
        let model = loaded.engine.model
        guard promptTokens + genTokens <= model.config.maxPositionEmbeddings else {
            throw UsageError(message: "--prompt-tokens plus --gen-tokens (\(promptTokens + genTokens)) exceeds the context of \(model.config.maxPositionEmbeddings)", command: "bench")
        }
        let prompt = benchmarkPrompt(tokenizer: loaded.engine.tokenizer, count: promptTokens)
        let decision = try loaded.route(routingText: "")
        let delta = decision.source.deltaForStep()

        var results: [RunResult] = []
        for index in 0..<(warmup + runs) {
            let state = model.makeState(contextLength: promptTokens + genTokens)
            let prefillStart = Date()
            var logits = try model.forward(prompt, state: state, delta: delta, logits: .last, pool: loaded.pool)
            let prefillSeconds = Date().timeIntervalSince(prefillStart)
            var token = Sampler.argmax(logits)
            let decodeStart = Date()
            var firstTokenSeconds = prefillSeconds
            for step in 0..<genTokens {
                logits = try model.forward([token], state: state, delta: delta, logits: .last, pool: loaded.pool)
                token = Sampler.argmax(logits)
                if step == 0 { firstTokenSeconds = prefillSeconds + Date().timeIntervalSince(decodeStart) }
            }
            let decodeSeconds = Date().timeIntervalSince(decodeStart)
            if index >= warmup {
                results.append(RunResult(prefillSeconds: prefillSeconds, decodeSeconds: decodeSeconds, firstTokenSeconds: firstTokenSeconds))
            }
        }

        let prefill = median(results.map { Double(promptTokens) / $0.prefillSeconds })
        let decode = genTokens > 0 ? median(results.map { Double(genTokens) / $0.decodeSeconds }) : 0
        let firstToken = median(results.map(\.firstTokenSeconds))
        let peakRSS = peakResidentBytes()
        let report: [String: Any] = [
            "model": loaded.engine.directory.lastPathComponent,
            "experts": loaded.experts.map(\.name),
            "threads": loaded.pool.threadCount,
            "prompt_tokens": promptTokens, "gen_tokens": genTokens, "runs": runs,
            "prefill_tps": prefill, "decode_tps": decode, "time_to_first_token_s": firstToken,
            "load_s": loaded.loadSeconds, "peak_rss_bytes": peakRSS,
            "weight_bytes": model.weightByteCount,
            "quantization": model.options.quantization?.rawValue ?? "none",
            "kv_cache": model.options.kvCacheType.rawValue,
            "merged": decision.source.deltaForStep() is MergedBlend,
        ]
        if arguments.flag("json") {
            try printJSON(report)
            return
        }
        writeOutput(String(format: """
            model %@ (%@, KV cache %@), %@, %d threads
            prefill  %8.1f tok/s  (%d tokens, median of %d)
            decode   %8.1f tok/s  (%d tokens)
            first token %.3f s, load %.2f s, peak RSS %.0f MB (weights %.0f MB, mapped: pages never read are not resident)

            """,
            loaded.engine.directory.lastPathComponent, model.options.quantization?.rawValue ?? "stored weights",
            model.options.kvCacheType.rawValue, summarize(decision), loaded.pool.threadCount,
            prefill, promptTokens, runs, decode, genTokens,
            firstToken, loaded.loadSeconds, Double(peakRSS) / 1e6, Double(model.weightByteCount) / 1e6))
    }

    /// A prompt of exactly `count` tokens from a fixed text, repeated.
    static func benchmarkPrompt(tokenizer: Tokenizer, count: Int) -> [Int] {
        let text = """
        The history of the river valley begins with the farmers who settled its banks, built terraces \
        on the hills and traded grain with the towns downstream. Over the centuries the bridges, mills \
        and markets they built shaped the roads that travellers still follow today.
        """
        let unit = tokenizer.encode(text, addSpecialTokens: false)
        var tokens: [Int] = []
        while tokens.count < count { tokens += unit }
        return Array(tokens.prefix(count))
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// Peak resident set size of this process in bytes (Linux reports
    /// ru_maxrss in kilobytes, macOS in bytes).
    static func peakResidentBytes() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)
        #endif
    }
}
