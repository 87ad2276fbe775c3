import Foundation
import LoRAMoE

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum ChatCommand {
    static let options: [Option] = [
        SharedOptions.model, SharedOptions.experts, SharedOptions.weights,
        SharedOptions.system, SharedOptions.think, SharedOptions.noThink,
    ] + GenerateCommand.samplingOptions + SharedOptions.routing + [SharedOptions.merge] + SharedOptions.loading + [SharedOptions.context, SharedOptions.threads]

    /// The commands a session accepts, printed by `/help` and in `--help`.
    static let commandList = """
          /weights 0.2,0.8   set the blend weights (one per expert); takes effect at once
          /experts           list the experts and their current weights
          /reset             forget the conversation
          /quit              leave (also /exit; end of input does the same)
          /help              show this list
        """

    static let help = helpText(
        usage: "lora-moe chat --model DIR [--experts A,B --weights 0.7,0.3] [options]",
        summary: """
        Chat with the model in a multi-turn session. Each line you type is one user turn;
        the reply streams to stdout. Works from a terminal or a pipe. Commands:
        \(commandList)
        Command output and status lines go to stderr.
        """,
        options: options)

    static func run(_ argv: [String]) throws {
        let arguments = try ParsedArguments(argv, options: options, command: "chat")
        _ = try GenerateCommand.samplingParameters(arguments, defaults: SamplingParameters())
        let maxTokens = try arguments.int("max-tokens") ?? 512
        guard maxTokens >= 0 else {
            throw UsageError(message: "--max-tokens must be >= 0, got \(maxTokens)", command: "chat")
        }
        let loaded = try LoadedModel.load(arguments, weightsMode: .adjustable)
        let sampling = try GenerateCommand.samplingParameters(arguments, defaults: loaded.engine.samplingDefaults)
        let enableThinking = try loaded.thinkingSwitch(arguments)
        var session = ChatSession(loaded: loaded, system: arguments.string("system"), enableThinking: enableThinking,
                                  sampling: sampling, maxTokens: maxTokens, stopStrings: arguments.strings("stop"))
        let interactive = isatty(STDIN_FILENO) == 1

        // A router that reads the input has chosen nothing yet.
        let blend = loaded.router is WeightedRouter || loaded.experts.isEmpty
            ? summarize(try loaded.route(routingText: ""))
            : "experts \(loaded.experts.map(\.name).joined(separator: ", ")), weighed by the router for each message"
        printError("lora-moe chat: \(loaded.engine.directory.lastPathComponent), \(blend). Type /help for commands.")
        while true {
            if interactive {
                writeOutput("> ")
            }
            guard let line = readLine(strippingNewline: true) else { break }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            if text.hasPrefix("/") {
                if try !session.runCommand(text) { break }
                continue
            }
            do {
                try session.reply(to: line)
            } catch let error as GenerationError {
                // The conversation no longer fits; say so and keep the session.
                printError("lora-moe: error: \(error)")
            }
        }
    }
}

/// The state of one chat: history, KV cache and the tokens it holds.
struct ChatSession {
    let loaded: LoadedModel
    let system: String?
    let enableThinking: Bool?
    let sampling: SamplingParameters
    let maxTokens: Int
    let stopStrings: [String]
    var history: [ChatMessage] = []
    let state: ModelState
    /// Tokens whose keys and values `state` holds, so the next turn reuses the
    /// longest common prefix instead of recomputing the whole conversation.
    var cachedTokens: [Int] = []
    var turn = 0

    init(loaded: LoadedModel, system: String?, enableThinking: Bool?, sampling: SamplingParameters, maxTokens: Int, stopStrings: [String]) {
        self.loaded = loaded
        self.system = system
        self.enableThinking = enableThinking
        self.sampling = sampling
        self.maxTokens = maxTokens
        self.stopStrings = stopStrings
        state = loaded.engine.model.makeState(contextLength: loaded.contextLength)
    }

    /// Runs a `/command`; returns false when the session should end.
    mutating func runCommand(_ text: String) throws -> Bool {
        let parts = text.split(separator: " ", maxSplits: 1).map(String.init)
        let argument = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
        switch parts[0] {
        case "/quit", "/exit":
            return false
        case "/reset":
            history = []
            state.reset()
            cachedTokens = []
            printError("conversation cleared")
        case "/experts":
            listExperts()
        case "/weights":
            setWeights(argument)
        case "/help":
            printError(ChatCommand.commandList)
        default:
            printError("unknown command '\(parts[0])'; commands: /weights, /experts, /reset, /quit, /help")
        }
        return true
    }

    private func listExperts() {
        guard !loaded.experts.isEmpty else {
            printError("no experts loaded (base model)")
            return
        }
        let weights = (loaded.router as? WeightedRouter)?.weights
        let labels = loaded.experts.indices.map { index in weights.map { formatWeight($0[index]) } ?? "chosen by the router" }
        let nameWidth = loaded.experts.map(\.name.count).max() ?? 0
        let weightWidth = labels.map(\.count).max() ?? 0
        for (expert, label) in zip(loaded.experts, labels) {
            let name = expert.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            let weight = label.padding(toLength: weightWidth, withPad: " ", startingAt: 0)
            printError("  \(name)  weight \(weight)  \(expert.directory.path)")
        }
    }

    private func setWeights(_ argument: String) {
        guard let router = loaded.router as? WeightedRouter else {
            printError("/weights is not available: the weights are chosen by the router")
            return
        }
        let items = argument.split(separator: ",", omittingEmptySubsequences: false)
            .map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !argument.isEmpty, items.allSatisfy({ $0 != nil }) else {
            printError("usage: /weights W1,W2,... (one number per expert, \(loaded.experts.count) in all)")
            return
        }
        do {
            try router.setWeights(items.compactMap { $0 })
            printError("weights: \(summarize(try loaded.route(routingText: "")))")
        } catch {
            printError("lora-moe: error: \(error)")
        }
    }

    /// Adds a user turn, streams the assistant's reply to stdout and adds it
    /// to the history.
    mutating func reply(to userText: String) throws {
        var messages = history
        if history.isEmpty, let system {
            messages.append(ChatMessage(role: "system", content: system))
        }
        messages.append(ChatMessage(role: "user", content: userText))
        let prompt = try loaded.engine.chatTokens(messages, enableThinking: enableThinking)

        // Keep the cached prefix this prompt shares with the previous turns.
        let shared = zip(cachedTokens, prompt).prefix { $0 == $1 }.count
        let reusable = min(shared, prompt.count - 1)
        state.truncate(to: min(reusable, state.count))

        var turnSampling = sampling
        turnSampling.seed = sampling.seed &+ UInt64(turn)
        turn += 1
        let decision = try loaded.route(routingText: userText)
        let request = GenerationRequest(promptTokens: prompt, maxTokens: maxTokens, sampling: turnSampling,
                                        stopStrings: stopStrings, stopTokens: loaded.engine.stopTokens)
        let generator = Generator(model: loaded.engine.model, tokenizer: loaded.engine.tokenizer, pool: loaded.pool)
        let result = try generator.generate(request, state: state, source: decision.source) { writeOutput($0) }
        writeOutput("\n")

        cachedTokens = Array((prompt + result.tokens).prefix(state.count))
        history = messages + [ChatMessage(role: "assistant", content: result.text)]
        let stats = result.statistics
        printError(String(format: "[%@ | prompt %d tokens (%d cached), %.1f tok/s | generated %@]", summarize(decision),
                          stats.promptTokens, stats.cachedPromptTokens, stats.promptTokensPerSecond,
                          formatRate(stats.generatedTokens, stats.generationSeconds)))
    }
}
