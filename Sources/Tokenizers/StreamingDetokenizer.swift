/// Turns token ids into text as they arrive, never splitting a UTF-8 character.
///
/// Bytes of a character that is still incomplete are held back until the next
/// id completes it. The concatenation of everything `append` and `finish`
/// return equals `tokenizer.decode(allIDs, skipSpecialTokens:)`.
public struct StreamingDetokenizer: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecialTokens: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one id and returns the text that is now complete (possibly empty).
    public mutating func append(_ id: Int) -> String {
        tokenizer.appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &pending)
        let emitCount = pending.count - Self.incompleteSuffixLength(pending)
        guard emitCount > 0 else { return "" }
        // The emitted bytes end right before a lead byte (or at the end), which is
        // a point where decoding the whole stream also starts a new character, so
        // invalid bytes become the same U+FFFD characters either way.
        let text = String(decoding: pending[..<emitCount], as: UTF8.self)
        pending.removeFirst(emitCount)
        return text
    }

    /// Returns the held-back bytes as text; bytes that never formed a character become U+FFFD.
    public mutating func finish() -> String {
        let text = String(decoding: pending, as: UTF8.self)
        pending.removeAll()
        return text
    }

    /// Returns the length of the trailing bytes that start a valid UTF-8 sequence
    /// but do not finish it, or 0 when the bytes end on a boundary or on invalid data.
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        let count = bytes.count
        // A sequence is at most 4 bytes, so an incomplete one starts in the last 3.
        for start in stride(from: count - 1, through: max(0, count - 3), by: -1) {
            let lead = bytes[start]
            if lead & 0xC0 == 0x80 { continue }  // continuation byte: keep looking for the lead
            let needed: Int
            switch lead {
            case 0xC2...0xDF: needed = 2
            case 0xE0...0xEF: needed = 3
            case 0xF0...0xF4: needed = 4
            default: return 0  // ASCII or a byte that never starts a sequence
            }
            let present = count - start
            if present >= needed { return 0 }
            for offset in 1..<present where !isValidContinuation(bytes[start + offset], lead: lead, index: offset) {
                return 0
            }
            return present
        }
        return 0
    }

    /// Checks byte `index` (1-based after the lead) of a sequence, including the
    /// narrower second-byte ranges that exclude overlong forms and surrogates.
    private static func isValidContinuation(_ byte: UInt8, lead: UInt8, index: Int) -> Bool {
        if index == 1 {
            switch lead {
            case 0xE0: return (0xA0...0xBF).contains(byte)
            case 0xED: return (0x80...0x9F).contains(byte)
            case 0xF0: return (0x90...0xBF).contains(byte)
            case 0xF4: return (0x80...0x8F).contains(byte)
            default: break
            }
        }
        return (0x80...0xBF).contains(byte)
    }
}
