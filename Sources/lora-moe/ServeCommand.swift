import Foundation
import HTTP
import LoRAMoE
import Server

enum ServeCommand {
    static let options: [Option] = [
        SharedOptions.model,
        Option(name: "experts", valueName: "LIST", help: "experts to load at start, comma-separated NAME=PATH (or PATH, named by its last component)"),
        Option(name: "weights", valueName: "LIST", help: "default weights of the 'default' model, one per expert (default: 0 each, the base model)"),
        Option(name: "router", valueName: "FILE", help: "a router.json from 'lora-moe router fit', used when a request sets \"router\": \"encoder\""),
        Option(name: "adapter-dir", valueName: "DIR", help: "allow POST /v1/experts/load to load adapters from inside DIR (off by default)"),
        Option(name: "blend", valueName: "NAME=SPEC", help: "a named blend listed by /v1/models, e.g. tutor=pirate:0.7+brief:0.3 (repeatable)", repeatable: true),
        Option(name: "host", valueName: "HOST", help: "address to listen on (default 127.0.0.1)"),
        Option(name: "port", valueName: "PORT", help: "port to listen on (default 8080; 0 picks a free port)"),
        Option(name: "model-id", valueName: "ID", help: "model id of the default blend in the API (default: the model directory's name)"),
        Option(name: "max-batch", valueName: "N", help: "requests decoded together in one batch (default 8)"),
        Option(name: "queue", valueName: "N", help: "requests that may wait for a batch slot; more get 429 (default 32)"),
        Option(name: "max-tokens-limit", valueName: "N", help: "largest max_tokens a request may ask for (default 2048)"),
        Option(name: "max-body-bytes", valueName: "N", help: "largest request body in bytes (default 4194304)"),
        SharedOptions.quantize, SharedOptions.kvCache, SharedOptions.context, SharedOptions.threads,
    ]

    static let help = helpText(
        usage: "lora-moe serve --model DIR [--experts NAME=PATH,...] [--router FILE] [--adapter-dir DIR] [--host 127.0.0.1] [--port 8080]",
        summary: """
        Serve an OpenAI-compatible HTTP API: POST /v1/chat/completions and /v1/completions
        (streaming with "stream": true), GET /v1/models, GET /health, and expert management
        (GET/POST /v1/experts, POST /v1/experts/load and /v1/experts/unload). A request picks its
        blend with "model" ("base", an expert name, or pirate:0.7+json:0.3), the "experts"
        extension field ({"pirate": 0.7}), or "router": "encoder". Requests with different blends
        are decoded together. One log line per request goes to stderr; SIGINT or SIGTERM stops
        the server cleanly.
        """,
        options: options)

    static func run(_ argv: [String]) throws {
        let arguments = try ParsedArguments(argv, options: options, command: "serve")
        let start = Date()
        let directory = URL(fileURLWithPath: try arguments.requiredString("model"))
        var specs: [ExpertSpec] = []
        if let list = arguments.string("experts") {
            let items = list.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard !items.contains(where: \.isEmpty) else {
                throw UsageError(message: "--experts '\(list)' has an empty entry", command: "serve")
            }
            specs = try items.map { try ExpertSpec(parsing: $0) }
        }
        let weights = try arguments.doubles("weights") ?? [Double](repeating: 0, count: specs.count)
        guard weights.count == specs.count else {
            throw UsageError(message: "\(plural(specs.count, "expert")) but \(plural(weights.count, "weight")); give one weight per expert", command: "serve")
        }
        let port = try arguments.int("port") ?? 8080
        let maxBatch = try arguments.int("max-batch") ?? 8
        let queue = try arguments.int("queue") ?? 32
        let threads = try arguments.int("threads")
        for (name, value, minimum) in [("port", port, 0), ("max-batch", maxBatch, 1), ("queue", queue, 0), ("threads", threads ?? 1, 1)] where value < minimum {
            throw UsageError(message: "--\(name) must be at least \(minimum), got \(value)", command: "serve")
        }
        guard port <= 65535 else {
            throw UsageError(message: "--port must be at most 65535, got \(port)", command: "serve")
        }

        var loadOptions = try modelLoadOptions(arguments)
        if let threads { loadOptions.pool = ComputePool(threadCount: threads) }
        let engine = try Engine(directory: directory, options: loadOptions)
        let experts = try engine.loadExperts(specs)
        let adapterDirectory = arguments.string("adapter-dir").map { URL(fileURLWithPath: $0) }
        if let adapterDirectory {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: adapterDirectory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw InputFileError(option: "adapter-dir", path: adapterDirectory.path, problem: "directory not found")
            }
        }
        let registry = try ExpertRegistry(modelConfig: engine.model.config, experts: experts, defaultWeights: weights,
                                          adapterDirectory: adapterDirectory, stackType: engine.expertStackType)
        let inputRouter = try arguments.string("router").map { path -> any Router in
            guard !experts.isEmpty else { throw UsageError(message: "--router needs --experts", command: "serve") }
            return try RouterFile.loadRouter(from: URL(fileURLWithPath: path), model: engine.model, experts: experts)
        }

        var serverOptions = ServerOptions(modelID: arguments.string("model-id") ?? directory.standardizedFileURL.lastPathComponent)
        serverOptions.maxTokensLimit = try arguments.int("max-tokens-limit") ?? serverOptions.maxTokensLimit
        serverOptions.contextLength = try arguments.int("context")
        serverOptions.namedBlends = try arguments.strings("blend").map { text in
            guard let equals = text.firstIndex(of: "=") else {
                throw UsageError(message: "--blend '\(text)' must be NAME=SPEC, e.g. tutor=pirate:0.7+brief:0.3", command: "serve")
            }
            let name = String(text[..<equals])
            let spec = try BlendSpec(parsing: String(text[text.index(after: equals)...]), param: "blend")
            for term in spec.terms where !experts.contains(where: { $0.name == term.name }) {
                throw UsageError(message: "--blend \(name) uses '\(term.name)', which is not among --experts", command: "serve")
            }
            return (name, spec)
        }

        let pool = threads.map { ComputePool(threadCount: $0) } ?? .allCores
        let scheduler = BatchScheduler(model: engine.model, tokenizer: engine.tokenizer, maxBatchSize: maxBatch,
                                       queueCapacity: queue, pool: pool)
        let handler = OpenAIHandler(engine: engine, scheduler: scheduler, registry: registry, inputRouter: inputRouter, options: serverOptions)
        var limits = HTTPLimits()
        if let maxBody = try arguments.int("max-body-bytes") { limits.maxBodyBytes = maxBody }
        let server: HTTPServer
        do {
            server = try HTTPServer(host: arguments.string("host") ?? "127.0.0.1", port: port, limits: limits, handler: handler) { line in
                printError(line)
            }
        } catch {
            scheduler.shutdown()
            throw error
        }
        server.stopOnSignals()
        printError(String(format: "lora-moe serve: %@ on http://%@:%d (experts: %@; loaded in %.2f s)",
                          serverOptions.modelID, server.host, server.port,
                          experts.isEmpty ? "none" : experts.map(\.name).joined(separator: ", "), Date().timeIntervalSince(start)))
        server.waitUntilStopped()
        scheduler.shutdown()
        printError("lora-moe serve: stopped")
    }
}
