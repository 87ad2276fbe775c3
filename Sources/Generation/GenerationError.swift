/// A generation or scoring request that cannot run as given.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case invalidParameter(name: String, value: String, expected: String)
    case promptTooLong(tokens: Int, contextLength: Int)
    case emptyPrompt(hint: String)
    case sequenceTooLong(promptTokens: Int, continuationTokens: Int, contextLength: Int)
    /// The model produced NaN or infinite logits: broken weights or a blend
    /// whose values overflow.
    case nonFiniteLogits(position: Int)

    public var description: String {
        switch self {
        case let .invalidParameter(name, value, expected):
            return "invalid \(name) \(value): expected \(expected)"
        case let .promptTooLong(tokens, contextLength):
            return "the prompt has \(tokens) tokens but the context holds \(contextLength); shorten the prompt or raise --context"
        case let .emptyPrompt(hint):
            return "the prompt is empty: \(hint)"
        case let .sequenceTooLong(prompt, continuation, contextLength):
            return "the prompt (\(prompt) token\(prompt == 1 ? "" : "s")) and continuation (\(continuation) token\(continuation == 1 ? "" : "s")) need \(prompt + continuation) tokens but the context holds \(contextLength); shorten them or raise --context"
        case let .nonFiniteLogits(position):
            return "the model produced NaN or infinite logits at position \(position); its weights or the expert weights are invalid"
        }
    }
}
