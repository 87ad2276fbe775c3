import Foundation
import LoRAMoE

/// `lora-moe router fit`: fits an input-based router to example prompts and
/// writes a router file.
enum RouterCommand {
    static let fitOptions: [Option] = [
        SharedOptions.model,
        Option(name: "experts", valueName: "LIST", help: "comma-separated PEFT LoRA adapter directories, each NAME=PATH or PATH; this order is the router's expert order"),
        Option(name: "examples", valueName: "LIST", help: "comma-separated NAME=FILE, one per expert: UTF-8 text, one example prompt per line; blank lines and lines starting with '#' are skipped"),
        Option(name: "out", valueName: "FILE", help: "router file to write (JSON); with --gate the gate weights go next to it, router.json -> router.gate.safetensors"),
        Option(name: "layer", valueName: "L", help: "hidden state to pool: 0 = embeddings, i = output of decoder layer i, num_hidden_layers = after the final norm (default: num_hidden_layers)"),
        Option(name: "temperature", valueName: "T", help: "softmax temperature over the scores (default \(formatWeight(RouterFitting.defaultEncoderTemperature)), with --gate \(formatWeight(RouterFitting.defaultGateTemperature)))"),
        Option(name: "top-k", valueName: "K", help: "keep only the K experts with the highest weights (default: all)"),
        Option(name: "min-weight", valueName: "W", help: "drop experts whose softmax weight is below W, before renormalization; 0 <= W < 1 (default 0)"),
        Option(name: "no-renormalize", valueName: nil, help: "keep the softmax weights of the kept experts instead of scaling them to sum to 1"),
        Option(name: "gate", valueName: nil, help: "fit a learned linear gate (logistic regression) instead of encoder prototypes"),
        Option(name: "l2", valueName: "LAMBDA", help: "with --gate: L2 penalty on the gate weights of standardized features (default \(formatWeight(GateTraining.defaultL2)))"),
        SharedOptions.threads,
        SharedOptions.json,
    ]

    static let help = helpText(
        usage: "lora-moe router fit --model DIR --experts NAME=PATH,... --examples NAME=FILE,... --out FILE [options]",
        summary: """
        Fit an input-based router and write it to a router file. Each example prompt is run through
        the base model and mean-pooled at --layer. The encoder router (default) stores one prototype
        per expert and weighs experts by the cosine between a request's pooled state and each
        prototype; --gate instead trains a linear gate on the pooled states. The router file records
        fingerprints of the model and of each adapter, so it only loads with the same model and the
        same experts in the same order. File format: docs/ROUTING.md.
        """,
        options: fitOptions)

    static func run(_ argv: [String]) throws {
        guard let subcommand = argv.first else {
            throw UsageError(message: "missing subcommand; the router command has one subcommand, 'fit'", command: "router")
        }
        guard subcommand == "fit" else {
            throw UsageError(message: "unknown router subcommand '\(subcommand)'; the router command has one subcommand, 'fit'", command: "router")
        }
        try fit(Array(argv.dropFirst()))
    }

    static func fit(_ argv: [String]) throws {
        let command = "router fit"
        let arguments = try ParsedArguments(argv, options: fitOptions, command: command)
        func usage(_ message: String) -> UsageError { UsageError(message: message, command: command) }

        let modelDirectory = URL(fileURLWithPath: try arguments.requiredString("model"))
        let specs = try (try arguments.requiredString("experts"))
            .split(separator: ",", omittingEmptySubsequences: true)
            .map { try ExpertSpec(parsing: String($0).trimmingCharacters(in: .whitespaces)) }
        let exampleFiles = try parseExampleList(try arguments.requiredString("examples"), command: command)
        let outURL = URL(fileURLWithPath: try arguments.requiredString("out"))
        var isDirectory: ObjCBool = false
        let outDirectory = outURL.deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: outDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw usage("--out: directory \(outDirectory) does not exist; create it first")
        }
        guard specs.count >= 2 else {
            throw usage("--experts names \(specs.count) expert(s); a router needs at least 2 to choose between")
        }
        let files: [String]
        do {
            files = try RouterExamples.match(experts: specs.map(\.name), files: exampleFiles)
        } catch let error as RouterFitError {
            throw usage("--examples: \(error)")
        }

        let options = try parseFitOptions(arguments, expertCount: specs.count, command: command)
        let threads = try arguments.int("threads")
        if let threads, threads < 1 {
            throw usage("--threads must be at least 1, got \(threads)")
        }
        let pool = threads.map { ComputePool(threadCount: $0) } ?? .allCores
        let prompts = try files.map { try RouterExamples.load(URL(fileURLWithPath: $0)) }

        let start = Date()
        let engine = try Engine(directory: modelDirectory)
        if let layer = options.layer, layer > engine.model.config.numHiddenLayers {
            throw usage("--layer \(layer) exceeds the model's num_hidden_layers (\(engine.model.config.numHiddenLayers))")
        }
        let experts = try engine.loadExperts(specs)
        let examples = prompts.map { texts in texts.map { engine.tokenizer.encode($0, addSpecialTokens: false) } }
        let result = try RouterFitting.fit(model: engine.model, experts: experts, examples: examples, options: options, pool: pool)
        try result.file.write(to: outURL)
        let gateURL = options.kind == .gate
            ? outURL.deletingLastPathComponent().appendingPathComponent(RouterFile.gateFileName(for: outURL))
            : nil
        try report(result, outURL: outURL, gateURL: gateURL, seconds: Date().timeIntervalSince(start), json: arguments.flag("json"))
    }

    /// Parses `NAME=FILE,NAME=FILE`. Every item needs a name and a file.
    static func parseExampleList(_ text: String, command: String) throws -> [(name: String, path: String)] {
        try text.split(separator: ",", omittingEmptySubsequences: true).map { item in
            let trimmed = item.trimmingCharacters(in: .whitespaces)
            guard let equals = trimmed.firstIndex(of: "="),
                  !trimmed[..<equals].isEmpty, !trimmed[trimmed.index(after: equals)...].isEmpty
            else {
                throw UsageError(message: "--examples: invalid item '\(trimmed)'; expected NAME=FILE with an expert name", command: command)
            }
            return (String(trimmed[..<equals]), String(trimmed[trimmed.index(after: equals)...]))
        }
    }

    static func parseFitOptions(_ arguments: ParsedArguments, expertCount: Int, command: String) throws -> RouterFitOptions {
        func usage(_ message: String) -> UsageError { UsageError(message: message, command: command) }
        var options = RouterFitOptions(kind: arguments.flag("gate") ? .gate : .encoder)
        if let layer = try arguments.int("layer") {
            guard layer >= 0 else { throw usage("--layer must be 0 or more, got \(layer)") }
            options.layer = layer
        }
        if let temperature = try arguments.double("temperature") {
            guard temperature > 0 else { throw usage("--temperature must be above 0, got \(formatWeight(temperature))") }
            options.temperature = temperature
        }
        if let topK = try arguments.int("top-k") {
            guard topK >= 1, topK <= expertCount else {
                throw usage("--top-k must be between 1 and the number of experts (\(expertCount)), got \(topK)")
            }
            options.selection.topK = topK
        }
        if let minWeight = try arguments.double("min-weight") {
            guard minWeight >= 0, minWeight < 1 else { throw usage("--min-weight must be in [0, 1), got \(formatWeight(minWeight))") }
            options.selection.minWeight = minWeight
        }
        options.selection.renormalize = !arguments.flag("no-renormalize")
        if let l2 = try arguments.double("l2") {
            guard options.kind == .gate else { throw usage("--l2 applies only to a gate router; add --gate") }
            guard l2 >= 0 else { throw usage("--l2 must be 0 or more, got \(formatWeight(l2))") }
            options.gateTraining.l2 = l2
        }
        return options
    }

    static func report(_ result: RouterFitResult, outURL: URL, gateURL: URL?, seconds: Double, json: Bool) throws {
        let file = result.file
        let correct = result.correctExamples.reduce(0, +)
        let total = file.experts.reduce(0) { $0 + $1.exampleCount }
        if json {
            var object: [String: Any] = [
                "router_file": outURL.path,
                "kind": file.kind.rawValue,
                "layer": file.layer,
                "temperature": file.temperature,
                "experts": zip(file.experts, result.correctExamples).map { expert, correct in
                    ["name": expert.name, "examples": expert.exampleCount, "correct": correct] as [String: Any]
                },
                "seconds": seconds,
            ]
            if let gateURL { object["gate_file"] = gateURL.path }
            if let loss = result.trainingLoss { object["training_loss"] = loss }
            try printJSON(object)
            return
        }
        writeOutput("wrote \(outURL.path): \(file.kind.rawValue) router over \(file.experts.count) experts, layer \(file.layer), temperature \(formatWeight(file.temperature))\n")
        if let gateURL {
            writeOutput("wrote gate weights to \(gateURL.path)\n")
        }
        let width = file.experts.map(\.name.count).max() ?? 0
        for (expert, correct) in zip(file.experts, result.correctExamples) {
            let name = expert.name.padding(toLength: width, withPad: " ", startingAt: 0)
            writeOutput("  \(name)  \(expert.exampleCount) examples, \(correct) score highest for this expert\n")
        }
        var summary = "examples routed to their own expert: \(correct) of \(total)"
        if let loss = result.trainingLoss { summary += String(format: ", gate training loss %.4f", loss) }
        writeOutput(summary + String(format: " (%.1f s)\n", seconds))
    }
}
