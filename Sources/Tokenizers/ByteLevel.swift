/// The GPT-2 byte-to-unicode table that byte-level BPE vocabularies are written in.
///
/// Printable bytes `!`…`~`, `¡`…`¬` and `®`…`ÿ` stand for themselves; the other
/// 68 bytes, in increasing order, map to U+0100, U+0101, …, U+0143.
enum ByteLevel {
    /// The pre-tokenizer pattern that ByteLevel applies when `use_regex` is true.
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    /// `scalarForByte[b]` is the vocabulary character of byte `b`.
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(byte) {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next) ?? " "
                next += 1
            }
        }
        return table
    }()

    /// `byteForScalar[c]` is the byte of vocabulary character `c` (below U+0144), or -1.
    private static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in scalarForByte.enumerated() {
            table[Int(scalar.value)] = Int16(byte)
        }
        return table
    }()

    private static func isPrintable(_ byte: Int) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }

    /// Returns the byte that vocabulary character `scalar` stands for, or nil for characters outside the table.
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        guard scalar.value < 0x144 else { return nil }
        let byte = byteForScalar[Int(scalar.value)]
        return byte < 0 ? nil : UInt8(byte)
    }

    /// Returns the bytes that a vocabulary token spells, or nil when a character is outside the table.
    static func bytes(forToken token: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard let byte = byte(for: scalar) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    /// Returns the bytes the ByteLevel decoder produces for one token: the table
    /// bytes when every character is in the table, else the token's own UTF-8
    /// (so added tokens such as `<|im_end|>` decode to themselves).
    static func decodedBytes(ofToken token: String) -> [UInt8] {
        bytes(forToken: token) ?? Array(token.utf8)
    }
}
