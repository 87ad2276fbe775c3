import Foundation
import LoRAMoE

enum ScoreCommand {
    static let options: [Option] = [
        SharedOptions.model, SharedOptions.experts, SharedOptions.weights,
        SharedOptions.prompt, SharedOptions.promptFile,
        Option(name: "continuation", valueName: "TEXT", help: "the text to score after the prompt"),
        Option(name: "continuation-file", valueName: "PATH", help: "read the continuation from a UTF-8 file instead (- for standard input)"),
        SharedOptions.system, SharedOptions.raw, SharedOptions.think, SharedOptions.noThink,
        SharedOptions.context, SharedOptions.threads, SharedOptions.json,
    ] + SharedOptions.routing + [SharedOptions.merge] + SharedOptions.loading

    static let help = helpText(
        usage: "lora-moe score --model DIR [--experts A,B --weights 0.7,0.3] --prompt TEXT --continuation TEXT [--raw] [--json]",
        summary: """
        Print the natural-log probability of each continuation token given every token before it,
        and their sum. Prompt and continuation are tokenized separately without special tokens
        and concatenated (prompt ids, then continuation ids). Without --raw the prompt is first
        rendered as one user turn with the chat template.
        """,
        options: options)

    static func run(_ argv: [String]) throws {
        let arguments = try ParsedArguments(argv, options: options, command: "score")
        let prompt = try textOption(arguments, "prompt")
        let continuationText = try textOption(arguments, "continuation")
        let loaded = try LoadedModel.load(arguments)

        let tokenizer = loaded.engine.tokenizer
        let promptTokens = try loaded.promptTokens(arguments, prompt: prompt, addSpecialTokens: false)
        let continuation = tokenizer.encode(continuationText, addSpecialTokens: false)
        let decision = try loaded.route(routingText: prompt)
        let result = try loaded.engine.model.score(
            prompt: promptTokens, continuation: continuation, delta: decision.source.deltaForStep(),
            contextLength: loaded.contextLength, pool: loaded.pool)

        if arguments.flag("json") {
            try printJSON(describe(decision, experts: loaded.experts).merging([
                "prompt_token_ids": promptTokens,
                "token_ids": continuation,
                "tokens": continuation.map { tokenizer.decode([$0]) },
                "logprobs": result.logprobs.map(jsonNumber),
                "total_logprob": result.totalLogprob,
            ]) { $1 })
            return
        }
        printError("blend: \(summarize(decision))")
        for (token, logprob) in zip(continuation, result.logprobs) {
            let piece = tokenizer.decode([token]).debugDescription
            writeOutput(String(format: "%8d  %10.5f  %@\n", token, logprob, piece))
        }
        writeOutput(String(format: "total %.5f over %@\n", result.totalLogprob, plural(continuation.count, "token")))
    }
}
