/// A generation or scoring request that cannot run as given.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case invalidParameter(name: String, value: String, expected: String)
    case promptTooLong(tokens: Int, contextLength: Int)
    case emptyPrompt(hint: String)

    public var description: String {
        switch self {
        case let .invalidParameter(name, value, expected):
            return "invalid \(name) \(value): expected \(expected)"
        case let .promptTooLong(tokens, contextLength):
            return "the prompt has \(tokens) tokens but the context holds \(contextLength); shorten the prompt or raise --context"
        case let .emptyPrompt(hint):
            return "the prompt is empty: \(hint)"
        }
    }
}
