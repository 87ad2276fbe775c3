import Foundation
import LoRAMoE

/// Entry point: `lora-moe COMMAND [options]`. Exit status 0 on success,
/// 1 when the work fails (bad file, model error), 2 on a usage error.
let commands: [(name: String, summary: String, help: String, run: ([String]) throws -> Void)] = [
    ("generate", "generate text with a blend of LoRA experts", GenerateCommand.help, GenerateCommand.run),
    ("chat", "multi-turn chat with adjustable expert weights", ChatCommand.help, ChatCommand.run),
    ("score", "log-probabilities of a continuation (parity and evaluation)", ScoreCommand.help, ScoreCommand.run),
]

let topLevelHelp = """
usage: lora-moe COMMAND [options]

Run one base language model with many LoRA experts blended at runtime.

commands:
\(commands.map { "  \($0.name.padding(toLength: 10, withPad: " ", startingAt: 0))\($0.summary)" }.joined(separator: "\n"))

Run 'lora-moe COMMAND --help' for the options of a command.
"""

let argv = Array(CommandLine.arguments.dropFirst())
guard let commandName = argv.first, !["--help", "-h", "help"].contains(commandName) else {
    if argv.count >= 2, argv[0] == "help", let command = commands.first(where: { $0.name == argv[1] }) {
        print(command.help)
    } else {
        print(topLevelHelp)
    }
    exit(argv.isEmpty ? 2 : 0)
}
guard let command = commands.first(where: { $0.name == commandName }) else {
    printError("lora-moe: error: unknown command '\(commandName)' (see 'lora-moe --help')")
    exit(2)
}
let rest = Array(argv.dropFirst())
if rest.contains("--help") || rest.contains("-h") {
    print(command.help)
    exit(0)
}
do {
    try command.run(rest)
} catch let error as UsageError {
    printError("lora-moe: error: \(error)")
    exit(2)
} catch {
    printError("lora-moe: error: \(error)")
    exit(1)
}
