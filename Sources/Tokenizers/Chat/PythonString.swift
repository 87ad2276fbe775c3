/// Python `str` operations used by the Qwen3 template, compared scalar by scalar.
///
/// Swift's `hasPrefix`, `contains` and `==` compare by canonical equivalence and
/// by Character, so "</think>" followed by a combining mark would not match;
/// Python compares code points, and so do these helpers.
enum PythonString {
    static func hasPrefix(_ text: String, _ prefix: String) -> Bool {
        text.utf8.starts(with: prefix.utf8)
    }

    static func hasSuffix(_ text: String, _ suffix: String) -> Bool {
        text.utf8.reversed().starts(with: suffix.utf8.reversed())
    }

    static func contains(_ text: String, _ part: String) -> Bool {
        split(text, separator: part).count > 1
    }

    /// `text.split(separator)`: the pieces between non-overlapping occurrences, left to right.
    static func split(_ text: String, separator: String) -> [String] {
        let bytes = Array(text.utf8)
        let pattern = Array(separator.utf8)
        precondition(!pattern.isEmpty, "empty separator")
        var pieces: [String] = []
        var pieceStart = 0
        var index = 0
        while index + pattern.count <= bytes.count {
            if bytes[index..<(index + pattern.count)].elementsEqual(pattern) {
                pieces.append(String(decoding: bytes[pieceStart..<index], as: UTF8.self))
                index += pattern.count
                pieceStart = index
            } else {
                index += 1
            }
        }
        pieces.append(String(decoding: bytes[pieceStart...], as: UTF8.self))
        return pieces
    }

    /// `text.lstrip(characters)` for ASCII `characters`.
    static func lstrip(_ text: String, _ characters: String) -> String {
        let strip = Set(characters.utf8)
        return String(decoding: text.utf8.drop(while: { strip.contains($0) }), as: UTF8.self)
    }

    /// `text.rstrip(characters)` for ASCII `characters`.
    static func rstrip(_ text: String, _ characters: String) -> String {
        let strip = Set(characters.utf8)
        var bytes = Array(text.utf8)
        while let last = bytes.last, strip.contains(last) { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `text.strip(characters)` for ASCII `characters`.
    static func strip(_ text: String, _ characters: String) -> String {
        rstrip(lstrip(text, characters), characters)
    }
}
