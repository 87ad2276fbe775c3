import Foundation
import LoRAMoE

/// Options that several subcommands share.
enum SharedOptions {
    static let model = Option(name: "model", valueName: "DIR", help: "Hugging Face model directory (config.json, safetensors, tokenizer.json)")
    static let experts = Option(name: "experts", valueName: "LIST", help: "comma-separated PEFT LoRA adapter directories, each PATH or NAME=PATH")
    static let weights = Option(name: "weights", valueName: "LIST", help: "comma-separated blend weights, one per expert (default 1/n each); any real number, |w| < 0.001 skips the expert")
    static let prompt = Option(name: "prompt", valueName: "TEXT", help: "the prompt; sent as one user turn through the chat template unless --raw")
    static let promptFile = Option(name: "prompt-file", valueName: "PATH", help: "read the prompt from a UTF-8 file instead (- for standard input)")
    static let system = Option(name: "system", valueName: "TEXT", help: "system message (default: the one the chat template inserts, if any)")
    static let raw = Option(name: "raw", valueName: nil, help: "use the prompt text as is, without the chat template")
    static let think = Option(name: "think", valueName: nil, help: "Qwen3 templates: let the model think first (enable_thinking=true)")
    static let noThink = Option(name: "no-think", valueName: nil, help: "Qwen3 templates: skip thinking (enable_thinking=false)")
    static let context = Option(name: "context", valueName: "N", help: "context length in tokens (default and maximum: the model's max_position_embeddings)")
    static let threads = Option(name: "threads", valueName: "N", help: "compute threads (default: all cores)")
    static let json = Option(name: "json", valueName: nil, help: "print one JSON object instead of text")
    static let router = Option(name: "router", valueName: "FILE|arrow", help: "choose the weights from the input: a router.json made by 'lora-moe router fit', or 'arrow' for per-token routing")
    static let routerTopK = Option(name: "router-top-k", valueName: "K", help: "keep the K experts the router scores highest (arrow default: min(3, experts))")
    static let routerTemperature = Option(name: "router-temperature", valueName: "T", help: "softmax temperature of the router's scores (default: the router file's, arrow 1.0)")
    static let routerMinWeight = Option(name: "router-min-weight", valueName: "W", help: "drop experts whose routed weight is below W, then renormalize (router files only)")

    static let quantize = Option(name: "quantize", valueName: "q8|q4", help: "quantize the weights at load: q8 (Q8_0, 8.5 bits per weight) or q4 (Q4_0, 4.5 bits); default: keep the stored type")
    static let kvCache = Option(name: "kv-cache", valueName: "f32|f16", help: "element type of the KV cache; f16 halves its memory (default f32)")
    /// Options that decide how the model is loaded.
    static let loading = [quantize, kvCache]
    static let merge = Option(name: "merge", valueName: "auto|on|off", help: "fold the --weights blend into a private copy of the adapted weights, so decoding costs what the base model costs; auto merges fixed blends when the copy fits in half of the available memory, except on a --quantize q4 model, whose Q8_0 copies decode slower (default auto)")

    /// The options that choose a router.
    static let routing = [router, routerTopK, routerTemperature, routerMinWeight]
}

/// How `--weights` become a router when no other router is chosen.
enum WeightsMode {
    /// Fixed for the whole run (generate, score).
    case fixed
    /// Changeable while running (chat's /weights command).
    case adjustable
}

/// A model with its experts and router, ready to run.
struct LoadedModel {
    let engine: Engine
    let experts: [LoRAAdapter]
    let router: any Router
    let pool: ComputePool
    let contextLength: Int?
    let loadSeconds: Double

    /// Loads `--model`, `--experts` and `--weights`.
    static func load(_ arguments: ParsedArguments, weightsMode: WeightsMode = .fixed) throws -> LoadedModel {
        let start = Date()
        let directory = URL(fileURLWithPath: try arguments.requiredString("model"))
        var specs: [ExpertSpec] = []
        if let list = arguments.string("experts") {
            // Paths may not contain commas: the comma separates experts.
            let items = list.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard !items.contains(where: \.isEmpty) else {
                throw UsageError(message: "--experts '\(list)' has an empty entry; give PATH or NAME=PATH separated by commas", command: arguments.command)
            }
            specs = try items.map { try ExpertSpec(parsing: $0) }
        }

        if arguments.string("router") != nil {
            if let merge = arguments.string("merge"), merge != "off", merge != "auto" {
                throw UsageError(message: "--merge \(merge) applies to --weights blends, not to --router", command: arguments.command)
            }
            if specs.isEmpty {
                throw UsageError(message: "--router needs --experts", command: arguments.command)
            }
            if arguments.string("weights") != nil {
                throw UsageError(message: "--weights and --router exclude each other: the router chooses the weights", command: arguments.command)
            }
        }
        var weights = try arguments.doubles("weights") ?? []
        if specs.isEmpty, !weights.isEmpty {
            throw UsageError(message: "--weights given without --experts", command: arguments.command)
        }
        if weights.isEmpty, !specs.isEmpty {
            weights = [Double](repeating: 1 / Double(specs.count), count: specs.count)
        }
        guard weights.count == specs.count else {
            throw UsageError(message: "\(plural(specs.count, "expert")) but \(plural(weights.count, "weight")); give one weight per expert", command: arguments.command)
        }

        let threads = try arguments.int("threads")
        if let threads, threads < 1 {
            throw UsageError(message: "--threads must be at least 1, got \(threads)", command: arguments.command)
        }
        let contextLength = try arguments.int("context")
        if let contextLength, contextLength < 1 {
            throw UsageError(message: "--context must be at least 1, got \(contextLength)", command: arguments.command)
        }

        let pool = threads.map { ComputePool(threadCount: $0) } ?? .allCores
        var loadOptions = try modelLoadOptions(arguments)
        loadOptions.pool = pool
        let engine = try Engine(directory: directory, options: loadOptions)
        if let contextLength, contextLength > engine.model.config.maxPositionEmbeddings {
            throw UsageError(message: "--context \(contextLength) exceeds the model's max_position_embeddings (\(engine.model.config.maxPositionEmbeddings))", command: arguments.command)
        }
        let experts = try engine.loadExperts(specs)
        let router: any Router
        if let name = arguments.string("router") {
            router = try makeInputRouter(name, arguments: arguments, model: engine.model, experts: experts)
        } else {
            for option in ["router-top-k", "router-temperature", "router-min-weight"] where arguments.string(option) != nil {
                throw UsageError(message: "--\(option) needs --router", command: arguments.command)
            }
            let build = try blendBuilder(arguments, model: engine.model, experts: experts, weights: weights, mode: weightsMode, pool: pool)
            switch weightsMode {
            case .fixed: router = try StaticRouter(experts: experts, weights: weights, build: build)
            case .adjustable: router = try WeightedRouter(experts: experts, weights: weights, build: build)
            }
        }
        return LoadedModel(
            engine: engine, experts: experts, router: router,
            pool: pool,
            contextLength: contextLength,
            loadSeconds: Date().timeIntervalSince(start))
    }

    /// Asks the router for this request's blend; `routingText` is the user's
    /// own text (without the chat template).
    func route(routingText: String) throws -> RoutingDecision {
        let tokens = engine.tokenizer.encode(routingText, addSpecialTokens: false)
        return try router.route(RoutingContext(model: engine.model, routingTokens: tokens, pool: pool))
    }

    /// Tokenizes the prompt: through the chat template (with `--system`,
    /// `--think` / `--no-think`), or as is with `--raw`.
    func promptTokens(_ arguments: ParsedArguments, prompt: String, addSpecialTokens: Bool) throws -> [Int] {
        if arguments.flag("raw") {
            if arguments.string("system") != nil {
                throw UsageError(message: "--system has no effect with --raw; put the system text into the prompt", command: arguments.command)
            }
            if arguments.flag("think") || arguments.flag("no-think") {
                throw UsageError(message: "--think and --no-think have no effect with --raw; format the prompt yourself", command: arguments.command)
            }
            return engine.tokenizer.encode(prompt, addSpecialTokens: addSpecialTokens)
        }
        var messages: [ChatMessage] = []
        if let system = arguments.string("system") {
            messages.append(ChatMessage(role: "system", content: system))
        }
        messages.append(ChatMessage(role: "user", content: prompt))
        return try engine.chatTokens(messages, enableThinking: try thinkingSwitch(arguments))
    }

    /// `enable_thinking` from `--think` / `--no-think`, or nil for the template default.
    func thinkingSwitch(_ arguments: ParsedArguments) throws -> Bool? {
        let think = arguments.flag("think")
        let noThink = arguments.flag("no-think")
        if think && noThink {
            throw UsageError(message: "--think and --no-think exclude each other", command: arguments.command)
        }
        guard think || noThink else { return nil }
        if let template = engine.chatTemplate, !template.supportsThinking {
            throw EngineError.noThinkingSwitch(template: template.name)
        }
        return think
    }

}

/// The router's choice as a JSON value: router kind and one entry per expert.
func describe(_ decision: RoutingDecision, experts: [LoRAAdapter]) -> [String: Any] {
    var entries: [[String: Any]] = []
    for (index, expert) in experts.enumerated() {
        var entry: [String: Any] = ["name": expert.name, "path": expert.directory.path]
        if let weights = decision.weights {
            entry["weight"] = weights[index]
            entry["active"] = abs(weights[index]) >= ExpertBlend.skipThreshold
        }
        if let scores = decision.scores { entry["score"] = scores[index] }
        entries.append(entry)
    }
    return ["router": decision.router, "experts": entries, "merged": isMerged(decision)]
}

/// True when the decision runs a merge that changed some weight; a blend
/// whose experts were all skipped merges nothing.
func isMerged(_ decision: RoutingDecision) -> Bool {
    guard let merged = decision.source.deltaForStep() as? MergedBlend else { return false }
    return merged.mergedByteCount > 0
}

/// One line naming each expert and its weight, for stderr.
func summarize(_ decision: RoutingDecision) -> String {
    guard !decision.experts.isEmpty else { return "base model (no experts)" }
    guard let weights = decision.weights else {
        return "\(decision.router) router over \(decision.experts.joined(separator: ", ")) (per token)"
    }
    let terms = zip(decision.experts, weights).map { "\($0)=\(formatWeight($1))" }.joined(separator: " + ")
    let merged = isMerged(decision) ? " (merged)" : ""
    return (decision.router == "static" ? terms : "\(decision.router) router: \(terms)") + merged
}

/// A weight for people: at most three decimals, trailing zeros dropped
/// (0.7, 0.333, 0); no exponents.
func formatWeight(_ weight: Double) -> String {
    var text = String(format: "%.3f", weight)
    while text.hasSuffix("0") { text.removeLast() }
    if text.hasSuffix(".") { text.removeLast() }
    return text == "-0" ? "0" : text
}

/// The text of `--NAME` or `--NAME-file` (exactly one of them; `-` reads
/// standard input).
func textOption(_ arguments: ParsedArguments, _ name: String) throws -> String {
    let inline = arguments.string(name)
    let path = arguments.string("\(name)-file")
    switch (inline, path) {
    case let (text?, nil):
        return text
    case let (nil, path?):
        let data: Data?
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            // FileHandle reads pipes (/dev/stdin, <(...)) too, which
            // FileManager.contents(atPath:) rejects on Linux.
            data = try? FileHandle(forReadingFrom: URL(fileURLWithPath: path)).readToEnd() ?? Data()
        }
        guard let data else {
            throw InputFileError(option: "\(name)-file", path: path, problem: "file not found or unreadable")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw InputFileError(option: "\(name)-file", path: path, problem: "not valid UTF-8")
        }
        return text
    case (nil, nil):
        throw UsageError(message: "missing required option '--\(name)' (or '--\(name)-file')", command: arguments.command)
    case (.some, .some):
        throw UsageError(message: "give either --\(name) or --\(name)-file, not both", command: arguments.command)
    }
}

/// The router named by `--router`: `arrow`, or a router file.
func makeInputRouter(_ name: String, arguments: ParsedArguments, model: LanguageModel, experts: [LoRAAdapter]) throws -> any Router {
    let topK = try arguments.int("router-top-k")
    let temperature = try arguments.double("router-temperature")
    let minWeight = try arguments.double("router-min-weight")
    if name == "arrow" {
        if minWeight != nil {
            throw UsageError(message: "--router-min-weight applies to router files, not to arrow", command: arguments.command)
        }
        return try ArrowRouter(experts: experts, topK: topK ?? min(3, experts.count), temperature: temperature ?? 1)
    }
    var overrides = RouterOverrides()
    overrides.temperature = temperature
    if let topK { overrides.topK = .some(topK) }
    overrides.minWeight = minWeight
    return try RouterFile.loadRouter(from: URL(fileURLWithPath: name), model: model, experts: experts, overrides: overrides)
}

/// Fused or merged blends, from `--merge auto|on|off`. `auto` merges a fixed
/// blend when the float32 copies of the adapted weights need less than half
/// of the memory the system reports as available; weights that change while
/// running (chat) stay fused, because each change would need a new merge.
/// A Q4_0 model stays fused too: its merged copies are Q8_0, which read
/// about twice the bytes and decoded slower than the fused experts.
func blendBuilder(
    _ arguments: ParsedArguments, model: LanguageModel, experts: [LoRAAdapter], weights: [Double],
    mode: WeightsMode, pool: ComputePool
) throws -> BlendBuilder {
    let choice = arguments.string("merge") ?? "auto"
    let merged: BlendBuilder = { experts, weights in
        experts.isEmpty ? nil : try MergedBlend(model: model, experts: experts, weights: weights, pool: pool)
    }
    switch choice {
    case "on":
        return merged
    case "off":
        return fusedBlend
    case "auto":
        guard mode == .fixed, !experts.isEmpty, model.options.quantization != .q4_0 else { return fusedBlend }
        let bytes = MergedBlend.estimatedByteCount(model: model, experts: experts, weights: weights)
        guard let available = availableMemoryBytes(), bytes < available / 2 else { return fusedBlend }
        return merged
    default:
        throw UsageError(message: "--merge expects auto, on or off, got '\(choice)'", command: arguments.command)
    }
}

/// Memory available to new allocations (Linux: MemAvailable in
/// /proc/meminfo); nil where it cannot be read.
func availableMemoryBytes() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
          let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
    else { return nil }
    return kilobytes * 1024
}

/// `--quantize` and `--kv-cache` as load options.
func modelLoadOptions(_ arguments: ParsedArguments) throws -> ModelLoadOptions {
    var options = ModelLoadOptions()
    switch arguments.string("quantize") {
    case nil: break
    case "q8", "q8_0", "Q8_0": options.quantization = .q8_0
    case "q4", "q4_0", "Q4_0": options.quantization = .q4_0
    case let other?:
        throw UsageError(message: "--quantize expects q8 or q4, got '\(other)'", command: arguments.command)
    }
    if let cache = arguments.string("kv-cache") {
        guard let type = KVCacheType(rawValue: cache) else {
            throw UsageError(message: "--kv-cache expects f32 or f16, got '\(cache)'", command: arguments.command)
        }
        options.kvCacheType = type
    }
    return options
}
