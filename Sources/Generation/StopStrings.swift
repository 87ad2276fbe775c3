/// Finds stop strings in streamed text and holds back text that might be the
/// start of one, so a stop string never reaches the output, not even in part.
public struct StopStringMatcher: Sendable {
    public let stopStrings: [String]
    private var pending = ""

    public init(stopStrings: [String]) {
        self.stopStrings = stopStrings.filter { !$0.isEmpty }
    }

    /// Adds newly decoded text. Returns the text that is safe to emit and
    /// whether a stop string was found (the text before it is returned; the
    /// stop string and anything after it are dropped).
    public mutating func append(_ text: String) -> (emit: String, stopped: Bool) {
        pending += text
        guard !stopStrings.isEmpty else {
            defer { pending = "" }
            return (pending, false)
        }
        if let match = earliestMatch() {
            let emit = String(pending[..<match])
            pending = ""
            return (emit, true)
        }
        let keep = longestSuffixThatStartsAStop()
        let cut = pending.index(pending.endIndex, offsetBy: -keep)
        let emit = String(pending[..<cut])
        pending = String(pending[cut...])
        return (emit, false)
    }

    /// Text held back at the end of generation (no stop string followed it).
    public mutating func finish() -> String {
        defer { pending = "" }
        return pending
    }

    private func earliestMatch() -> String.Index? {
        stopStrings.compactMap { pending.firstRange(of: $0)?.lowerBound }.min()
    }

    /// Length in characters of the longest suffix of `pending` that is a
    /// proper prefix of some stop string.
    private func longestSuffixThatStartsAStop() -> Int {
        var best = 0
        for stop in stopStrings {
            let limit = min(stop.count - 1, pending.count)
            if limit <= best { continue }
            for length in stride(from: limit, to: best, by: -1) where pending.hasSuffix(String(stop.prefix(length))) {
                best = length
                break
            }
        }
        return best
    }
}
