import Tokenizers

/// The per-sequence side of decoding: sampling, end-of-sequence tokens, the
/// streaming detokenizer and stop strings. It never runs the model; the
/// caller feeds it logits and runs the tokens it returns, alone or batched
/// with other sequences.
public struct SequenceDecoder {
    public let request: GenerationRequest
    /// Generated tokens, without a final end-of-sequence token.
    public private(set) var generated: [Int] = []
    /// Text emitted so far.
    public private(set) var text = ""
    /// Set once the sequence is over.
    public private(set) var finishReason: FinishReason?

    private var sampler: Sampler
    private var detokenizer: StreamingDetokenizer
    private var stops: StopStringMatcher
    private var history: [Int]

    public init(request: GenerationRequest, tokenizer: Tokenizer) {
        self.request = request
        sampler = Sampler(parameters: request.sampling)
        detokenizer = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: false)
        stops = StopStringMatcher(stopStrings: request.stopStrings)
        history = request.promptTokens
    }

    /// Samples the next token from `logits` (the model's output for the last
    /// token fed). Returns the text that became final and the token to feed
    /// next, or nil when the sequence is over (`finishReason` is then set).
    public mutating func step(logits: [Float]) -> (text: String, nextToken: Int?) {
        guard finishReason == nil else { return ("", nil) }
        guard logits.allSatisfy({ $0.isFinite }) else { return (finish(.error), nil) }
        guard generated.count < request.maxTokens else { return (finish(.length), nil) }

        let token = sampler.sample(logits: logits, history: history)
        if request.stopTokens.contains(token) {
            return (finish(.stop), nil)
        }
        generated.append(token)
        history.append(token)
        let (emit, stopped) = stops.append(detokenizer.append(token))
        text += emit
        if stopped {
            finishReason = .stop
            return (emit, nil)
        }
        if generated.count >= request.maxTokens {
            return (emit + finish(.length), nil)
        }
        return (emit, token)
    }

    /// Ends the sequence (for example when the context is full) and returns
    /// the text still held back by the detokenizer or the stop matcher. A
    /// stop string completed by that text still ends the output there.
    public mutating func finish(_ reason: FinishReason) -> String {
        guard finishReason == nil else { return "" }
        let (emit, stopped) = stops.append(detokenizer.finish())
        let rest = stopped ? emit : emit + stops.finish()
        finishReason = stopped ? .stop : reason
        text += rest
        return rest
    }
}
