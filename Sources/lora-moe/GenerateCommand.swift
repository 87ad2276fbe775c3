import Foundation
import LoRAMoE

enum GenerateCommand {
    /// Decoding options shared with chat.
    static let samplingOptions: [Option] = [
        Option(name: "max-tokens", valueName: "N", help: "maximum tokens to generate (default 256; chat: 512 per reply)"),
        Option(name: "temperature", valueName: "T", help: "sampling temperature; 0 = greedy (default: generation_config.json, else 0.8)"),
        Option(name: "top-k", valueName: "K", help: "sample from the K most likely tokens; 0 = off (default: generation_config.json, else 40)"),
        Option(name: "top-p", valueName: "P", help: "nucleus sampling probability mass; 1 = off (default: generation_config.json, else 0.95)"),
        Option(name: "min-p", valueName: "P", help: "drop tokens below P times the top probability; 0 = off (default: generation_config.json, else 0.05)"),
        Option(name: "repeat-penalty", valueName: "X", help: "penalty for recently seen tokens; 1 = off (default: generation_config.json, else 1.0)"),
        Option(name: "repeat-last-n", valueName: "N", help: "tokens the repeat penalty looks back over; -1 = all (default 64)"),
        Option(name: "seed", valueName: "N", help: "random seed; the same seed and settings give the same output (default: random)"),
        Option(name: "stop", valueName: "TEXT", help: "stop when the output contains TEXT (repeatable); TEXT is not printed", repeatable: true),
    ]

    static let options: [Option] = [
        SharedOptions.model, SharedOptions.experts, SharedOptions.weights,
        SharedOptions.prompt, SharedOptions.promptFile, SharedOptions.system, SharedOptions.raw, SharedOptions.think, SharedOptions.noThink,
    ] + samplingOptions + SharedOptions.routing + [SharedOptions.merge] + SharedOptions.loading + [SharedOptions.context, SharedOptions.threads, SharedOptions.json]

    static let help = helpText(
        usage: "lora-moe generate --model DIR [--experts A,B --weights 0.7,0.3] --prompt TEXT [options]",
        summary: "Generate text from a prompt with a blend of LoRA experts. Text streams to stdout; a\nsummary line (load time, prompt and generation speed) goes to stderr.",
        options: options)

    static func run(_ argv: [String]) throws {
        let arguments = try ParsedArguments(argv, options: options, command: "generate")
        let prompt = try textOption(arguments, "prompt")
        // Check the options before the model loads, so mistakes show at once.
        _ = try samplingParameters(arguments, defaults: SamplingParameters())
        let maxTokens = try arguments.int("max-tokens") ?? 256
        guard maxTokens >= 0 else {
            throw UsageError(message: "--max-tokens must be >= 0, got \(maxTokens)", command: "generate")
        }

        let loaded = try LoadedModel.load(arguments)
        let sampling = try samplingParameters(arguments, defaults: loaded.engine.samplingDefaults)
        let promptTokens = try loaded.promptTokens(arguments, prompt: prompt, addSpecialTokens: true)
        guard !promptTokens.isEmpty else {
            throw GenerationError.emptyPrompt(hint: "give at least one token of prompt")
        }
        let decision = try loaded.route(routingText: prompt)
        let json = arguments.flag("json")
        if !json {
            printError("blend: \(summarize(decision))")
        }

        let generator = Generator(model: loaded.engine.model, tokenizer: loaded.engine.tokenizer, pool: loaded.pool)
        let request = GenerationRequest(
            promptTokens: promptTokens, maxTokens: maxTokens, sampling: sampling,
            stopStrings: arguments.strings("stop"), stopTokens: loaded.engine.stopTokens)
        let state = loaded.engine.model.makeState(contextLength: loaded.contextLength)
        let result = try generator.generate(request, state: state, source: decision.source) { text in
            if !json { writeOutput(text) }
        }

        let stats = result.statistics
        if json {
            try printJSON(describe(decision, experts: loaded.experts).merging([
                "text": result.text,
                "token_ids": result.tokens,
                "prompt_tokens": stats.promptTokens,
                "generated_tokens": stats.generatedTokens,
                "prompt_tps": stats.promptTokensPerSecond,
                "generation_tps": stats.generationTokensPerSecond,
                "finish_reason": result.finishReason.rawValue,
                "load_seconds": loaded.loadSeconds,
                "seed": sampling.seed,
            ]) { $1 })
        } else {
            writeOutput("\n")
            printError(String(
                format: "load %.2f s | prompt %@ | generated %@ | finish: %@ | seed %llu",
                loaded.loadSeconds,
                formatRate(stats.promptTokens, stats.promptSeconds),
                formatRate(stats.generatedTokens, stats.generationSeconds),
                result.finishReason.rawValue, sampling.seed))
        }
    }

    /// Sampling settings: the model's generation_config.json defaults (when
    /// it has any), overridden by the command-line options.
    static func samplingParameters(_ arguments: ParsedArguments, defaults: SamplingParameters) throws -> SamplingParameters {
        var sampling = defaults
        if arguments.strings("stop").contains("") {
            throw UsageError(message: "--stop needs a non-empty text", command: arguments.command)
        }
        if let value = try arguments.double("temperature") { sampling.temperature = Float(value) }
        if let value = try arguments.int("top-k") { sampling.topK = value }
        if let value = try arguments.double("top-p") { sampling.topP = Float(value) }
        if let value = try arguments.double("min-p") { sampling.minP = Float(value) }
        if let value = try arguments.double("repeat-penalty") { sampling.repeatPenalty = Float(value) }
        if let value = try arguments.int("repeat-last-n") { sampling.repeatLastN = value }
        if let text = arguments.string("seed") {
            guard let seed = UInt64(text) else {
                throw UsageError(message: "--seed expects a non-negative integer, got '\(text)'", command: arguments.command)
            }
            sampling.seed = seed
        } else {
            sampling.seed = UInt64.random(in: 0..<(1 << 53))
        }
        do {
            try sampling.validate()
        } catch let error as GenerationError {
            throw UsageError(message: error.description, command: arguments.command)
        }
        return sampling
    }
}
