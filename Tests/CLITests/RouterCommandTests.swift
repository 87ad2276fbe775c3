import Foundation
import LoRAMoE
import Testing

/// Paths and data of the toy routing task in examples/routing.
enum ToyRouting {
    static let directory = CLI.repositoryRoot.appendingPathComponent("examples/routing")
    static let expertNames = ["code", "french", "chat"]

    /// The stand-in SmolLM2 adapters a, b, c under the toy task's names.
    static var expertsArgument: String {
        zip(expertNames, ["a", "b", "c"]).map { "\($0)=\(CLI.realAdapter($1))" }.joined(separator: ",")
    }

    static var examplesArgument: String {
        expertNames.map { "\($0)=\(directory.appendingPathComponent("\($0).txt").path)" }.joined(separator: ",")
    }

    /// (expected expert, prompt) rows of heldout.tsv.
    static func heldOut() throws -> [(expert: String, prompt: String)] {
        let text = try String(contentsOf: directory.appendingPathComponent("heldout.tsv"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            if line.hasPrefix("#") || line.hasPrefix("expert\t") { return nil }
            let columns = line.split(separator: "\t", maxSplits: 1)
            return columns.count == 2 ? (String(columns[0]), String(columns[1])) : nil
        }
    }

    /// Runs `router fit` with `extra` arguments, writing into `directory`.
    /// Returns the router file URL and the parsed JSON report.
    static func fit(into directory: URL, extra: [String] = []) throws -> (url: URL, report: [String: Any]) {
        let url = directory.appendingPathComponent("router.json")
        let output = try CLI.run(["router", "fit", "--model", CLI.smolLM2, "--experts", expertsArgument,
                                  "--examples", examplesArgument, "--out", url.path, "--json"] + extra)
        #expect(output.status == 0, "\(output.stderr)")
        return (url, try #require(CLI.parseJSON(output.stdout), "report: \(output.stdout)"))
    }

    /// Share of held-out prompts whose highest weight goes to the right
    /// expert, with the misrouted prompts.
    static func accuracy(router url: URL) throws -> (accuracy: Double, misses: [String]) {
        let engine = try Engine(directory: URL(fileURLWithPath: CLI.smolLM2))
        let experts = try engine.loadExperts(zip(expertNames, ["a", "b", "c"]).map { ExpertSpec(name: $0, path: CLI.realAdapter($1)) })
        let router = try RouterFile.loadRouter(from: url, model: engine.model, experts: experts)
        let rows = try heldOut()
        #expect(rows.count == 60)
        var misses: [String] = []
        for (expert, prompt) in rows {
            let tokens = engine.tokenizer.encode(prompt, addSpecialTokens: false)
            let decision = try router.route(RoutingContext(model: engine.model, routingTokens: tokens))
            let weights = try #require(decision.weights)
            let chosen = weights.indices.max { weights[$0] < weights[$1] }.map { expertNames[$0] }
            if chosen != expert { misses.append("\(expert) -> \(chosen ?? "none"): \(prompt) \(weights)") }
        }
        return (Double(rows.count - misses.count) / Double(rows.count), misses)
    }
}

/// A scratch directory removed when the value is deallocated.
final class RouterCommandScratch {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("lora-moe-router-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func write(_ name: String, _ text: String) throws -> String {
        let file = url.appendingPathComponent(name)
        try Data(text.utf8).write(to: file)
        return file.path
    }
}

struct RouterCommandArgumentTests {
    @Test func helpDescribesFit() throws {
        for arguments in [["router", "--help"], ["router", "fit", "--help"], ["help", "router"]] {
            let output = try CLI.run(arguments)
            #expect(output.status == 0, "\(arguments)")
            #expect(output.stdout.contains("usage: lora-moe router fit --model DIR"), "\(arguments)")
            #expect(output.stdout.contains("--examples LIST"))
            #expect(output.stdout.contains("--gate"))
        }
    }

    /// Arguments that are wrong before the model is loaded, and the message each gives.
    static let usageErrors: [(arguments: [String], fragment: String)] = [
        (["router"], "missing subcommand"),
        (["router", "train"], "unknown router subcommand 'train'"),
        (["router", "fit", "--experts", "a=x,b=y", "--examples", "a=1,b=2", "--out", "r.json"], "missing required option '--model'"),
        (["router", "fit", "--model", "m", "--examples", "a=1,b=2", "--out", "r.json"], "missing required option '--experts'"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--out", "r.json"], "missing required option '--examples'"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,b=2"], "missing required option '--out'"),
        (["router", "fit", "--model", "m", "--experts", "a=x", "--examples", "a=1", "--out", "r.json"], "a router needs at least 2"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,c=2", "--out", "r.json"], "no expert is named 'c'"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1", "--out", "r.json"], "expert 'b' has no example file"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,b=2,a=3", "--out", "r.json"], "expert 'a' has more than one example file"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,b", "--out", "r.json"], "--examples: invalid item 'b'"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,=2", "--out", "r.json"], "--examples: invalid item '=2'"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,b=2", "--out", "r.json", "--layer", "-1"], "--layer must be 0 or more"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,b=2", "--out", "r.json", "--temperature", "0"], "--temperature must be above 0"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,b=2", "--out", "r.json", "--top-k", "3"], "--top-k must be between 1 and the number of experts (2)"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,b=2", "--out", "r.json", "--min-weight", "1"], "--min-weight must be in [0, 1)"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,b=2", "--out", "r.json", "--l2", "0.1"], "--l2 applies only to a gate router"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,b=2", "--out", "r.json", "--gate", "--l2", "-1"], "--l2 must be 0 or more"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,b=2", "--out", "r.json", "--threads", "0"], "--threads must be at least 1"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,b=2", "--out", "r.json", "--layer", "two"], "option '--layer' expects an integer"),
        (["router", "fit", "--model", "m", "--experts", "a=x,a=y", "--examples", "a=1", "--out", "r.json", "--weights", "1,2"], "unknown option '--weights'"),
        (["router", "fit", "--model", "m", "--experts", "a=x,b=y", "--examples", "a=1,b=2", "--out", "/nonexistent/dir/r.json"], "--out: directory /nonexistent/dir does not exist"),
    ]

    @Test func usageErrorsExitWithTwo() throws {
        for (arguments, fragment) in Self.usageErrors {
            let output = try CLI.run(arguments)
            #expect(output.status == 2, "\(arguments): \(output.stderr)")
            #expect(output.stderr.contains(fragment), "\(arguments): \(output.stderr)")
            #expect(output.stderr.split(separator: "\n").count == 1, "one-line error for \(arguments)")
        }
    }

    @Test func badExampleFilesExitWithOne() throws {
        let scratch = try RouterCommandScratch()
        let good = try scratch.write("good.txt", "How do I sort a list?\n")
        let commentsOnly = try scratch.write("comments.txt", "# nothing here\n\n")
        let missing = scratch.url.appendingPathComponent("missing.txt").path
        let out = scratch.url.appendingPathComponent("router.json").path
        let base = ["router", "fit", "--model", CLI.smolLM2, "--experts", "a=\(CLI.realAdapter("a")),b=\(CLI.realAdapter("b"))", "--out", out]

        let empty = try CLI.run(base + ["--examples", "a=\(good),b=\(commentsOnly)"])
        #expect(empty.status == 1)
        #expect(empty.stderr.contains("\(commentsOnly): no example prompts"), "\(empty.stderr)")

        let absent = try CLI.run(base + ["--examples", "a=\(good),b=\(missing)"])
        #expect(absent.status == 1)
        #expect(absent.stderr.contains(missing), "\(absent.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test func layerBeyondModelIsAUsageError() throws {
        let output = try CLI.run(["router", "fit", "--model", CLI.smolLM2, "--experts", ToyRouting.expertsArgument,
                                  "--examples", ToyRouting.examplesArgument, "--out", "/tmp/unused-router.json", "--layer", "31"])
        #expect(output.status == 2)
        #expect(output.stderr.contains("--layer 31 exceeds the model's num_hidden_layers (30)"), "\(output.stderr)")
    }
}

/// The toy task: fit on examples/routing/{code,french,chat}.txt with the real
/// SmolLM2 as encoder, then route the 60 held-out prompts of heldout.tsv.
struct RouterCommandToyTaskTests {
    @Test func encoderRouterRoutesHeldOutPrompts() throws {
        let scratch = try RouterCommandScratch()
        let (url, report) = try ToyRouting.fit(into: scratch.url)
        #expect(report["kind"] as? String == "encoder")
        #expect(report["layer"] as? Int == 30)
        #expect(report["temperature"] as? Double == 0.1)
        #expect(report["gate_file"] == nil)
        let experts = try #require(report["experts"] as? [[String: Any]])
        #expect(experts.map { $0["name"] as? String } == ToyRouting.expertNames)
        #expect(experts.map { $0["examples"] as? Int } == [10, 10, 10])

        let file = try RouterFile.load(url)
        #expect(file.kind == .encoder)
        #expect(file.model.name == "smollm2-135m-instruct")
        #expect(file.model.hiddenSize == 576)

        let (accuracy, misses) = try ToyRouting.accuracy(router: url)
        #expect(accuracy >= 0.9, "encoder accuracy \(accuracy); misrouted: \(misses)")
    }

    @Test func gateRouterRoutesHeldOutPrompts() throws {
        let scratch = try RouterCommandScratch()
        let (url, report) = try ToyRouting.fit(into: scratch.url, extra: ["--gate", "--threads", "1"])
        #expect(report["kind"] as? String == "gate")
        #expect(report["temperature"] as? Double == 1)
        let gatePath = try #require(report["gate_file"] as? String)
        #expect(gatePath == scratch.url.appendingPathComponent("router.gate.safetensors").path)
        #expect(FileManager.default.fileExists(atPath: gatePath))
        #expect((report["training_loss"] as? Double ?? 1) < 0.1)

        let (accuracy, misses) = try ToyRouting.accuracy(router: url)
        #expect(accuracy >= 0.9, "gate accuracy \(accuracy); misrouted: \(misses)")
    }

    @Test func textReportAndOptionsReachTheFile() throws {
        let scratch = try RouterCommandScratch()
        let url = scratch.url.appendingPathComponent("custom.json")
        let output = try CLI.run(["router", "fit", "--model", CLI.smolLM2, "--experts", ToyRouting.expertsArgument,
                                  "--examples", ToyRouting.examplesArgument, "--out", url.path, "--layer", "12",
                                  "--temperature", "0.05", "--top-k", "2", "--min-weight", "0.1", "--no-renormalize"])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("wrote \(url.path): encoder router over 3 experts, layer 12, temperature 0.05"))
        #expect(output.stdout.contains("examples routed to their own expert:"))
        let file = try RouterFile.load(url)
        #expect(file.layer == 12)
        #expect(file.temperature == 0.05)
        #expect(file.selection == ExpertSelection(topK: 2, minWeight: 0.1, renormalize: false))
    }

    /// The file written by the CLI only loads with the same experts in the same order.
    @Test func fittedFileChecksExperts() throws {
        let scratch = try RouterCommandScratch()
        let (url, _) = try ToyRouting.fit(into: scratch.url)
        let engine = try Engine(directory: URL(fileURLWithPath: CLI.smolLM2))
        let reordered = try engine.loadExperts([
            ExpertSpec(name: "french", path: CLI.realAdapter("b")),
            ExpertSpec(name: "code", path: CLI.realAdapter("a")),
            ExpertSpec(name: "chat", path: CLI.realAdapter("c")),
        ])
        #expect(throws: RouterFileError.self) { try RouterFile.loadRouter(from: url, model: engine.model, experts: reordered) }
        let swappedFiles = try engine.loadExperts([
            ExpertSpec(name: "code", path: CLI.realAdapter("b")),
            ExpertSpec(name: "french", path: CLI.realAdapter("a")),
            ExpertSpec(name: "chat", path: CLI.realAdapter("c")),
        ])
        let error = #expect(throws: RouterFileError.self) { try RouterFile.loadRouter(from: url, model: engine.model, experts: swappedFiles) }
        #expect(error.map { "\($0)" }?.contains("experts[0].fingerprint") == true)
    }
}
