import Foundation
import HTTP
import LoRAMoE
import Server

/// Entry point: `lora-moe COMMAND [options]`. Exit status 0 on success,
/// 1 when the work fails (bad file, model error), 2 when the arguments are
/// wrong (options, prompt too long for the context, expert names).
let commands: [(name: String, summary: String, help: String, options: [Option]?, run: ([String]) throws -> Void)] = [
    ("generate", "generate text with a blend of LoRA experts", GenerateCommand.help, GenerateCommand.options, GenerateCommand.run),
    ("chat", "multi-turn chat with adjustable expert weights", ChatCommand.help, ChatCommand.options, ChatCommand.run),
    ("score", "log-probabilities of a continuation (parity and evaluation)", ScoreCommand.help, ScoreCommand.options, ScoreCommand.run),
    ("router", "fit a router that weighs experts by the prompt ('router fit')", RouterCommand.help, RouterCommand.fitOptions, RouterCommand.run),
    ("serve", "OpenAI-compatible HTTP server with per-request blends", ServeCommand.help, ServeCommand.options, ServeCommand.run),
    ("bench", "measure prefill and decode speed, first-token time and memory", BenchCommand.help, BenchCommand.options, BenchCommand.run),
]

let topLevelHelp = """
usage: lora-moe COMMAND [options]

Run one base language model with many LoRA experts blended at runtime.

commands:
\(commands.map { "  \($0.name.padding(toLength: 10, withPad: " ", startingAt: 0))\($0.summary)" }.joined(separator: "\n"))

Run 'lora-moe COMMAND --help' for the options of a command.
"""

// A closed pipe surfaces as EPIPE from write(), handled in writeOutput.
signal(SIGPIPE, SIG_IGN)

let argv = Array(CommandLine.arguments.dropFirst())
guard let commandName = argv.first, !["--help", "-h", "help"].contains(commandName) else {
    if argv.count >= 2, argv[0] == "help", let command = commands.first(where: { $0.name == argv[1] }) {
        writeOutput(command.help + "\n")
    } else {
        writeOutput(topLevelHelp + "\n")
    }
    exit(argv.isEmpty ? 2 : 0)
}
guard let command = commands.first(where: { $0.name == commandName }) else {
    printError("lora-moe: error: unknown command '\(commandName)' (see 'lora-moe --help')")
    exit(2)
}
let rest = Array(argv.dropFirst())
if command.options.map({ helpRequested(rest, options: $0) }) ?? (rest.contains("--help") || rest.contains("-h")) {
    writeOutput(command.help + "\n")
    exit(0)
}
do {
    try command.run(rest)
} catch let error as UsageError {
    printError("lora-moe: error: \(error)")
    exit(2)
} catch let error as GenerationError where error.isRequestError {
    printError("lora-moe: error: \(error)")
    exit(2)
} catch let error as ArrowRouterError where error.isRequestError {
    printError("lora-moe: error: \(error)")
    exit(2)
} catch let error as APIError where error.status == 400 {
    printError("lora-moe: error: \(error)")
    exit(2)
} catch let error as HTTPServerError where error.isRequestError {
    printError("lora-moe: error: \(error)")
    exit(2)
} catch let error as BlendError {
    printError("lora-moe: error: \(error)")
    exit(2)
} catch let error as EngineError where error.isRequestError {
    printError("lora-moe: error: \(error)")
    exit(2)
} catch {
    printError("lora-moe: error: \(error)")
    exit(1)
}

extension GenerationError {
    /// Errors caused by the command line rather than by files or the model.
    var isRequestError: Bool {
        switch self {
        case .invalidParameter, .promptTooLong, .emptyPrompt, .sequenceTooLong: return true
        case .nonFiniteLogits: return false
        }
    }
}

extension EngineError {
    /// Errors caused by the command line rather than by files or the model.
    var isRequestError: Bool {
        switch self {
        case .invalidExpertSpec, .duplicateExpertName, .noThinkingSwitch: return true
        case .missingChatTemplate, .modelDirectoryNotFound, .vocabularyMismatch: return false
        }
    }
}

extension HTTPServerError {
    /// Errors caused by the command line (--host, --port) rather than by
    /// the machine.
    var isRequestError: Bool {
        switch self {
        case .invalidHost, .invalidPort: return true
        case .invalidLimits, .startFailed: return false
        }
    }
}

extension ArrowRouterError {
    /// Errors caused by the command line rather than by the adapters.
    var isRequestError: Bool {
        switch self {
        case .invalidTopK, .invalidTemperature: return true
        default: return false
        }
    }
}
