/// The `decoder` stage of tokenizer.json, which turns token strings back into bytes.
///
/// Only ByteLevel is supported (also as the sole step of a Sequence): each
/// token's characters map back through the byte-level table, and a token with a
/// character outside the table contributes its own UTF-8 bytes.
enum TokenDecoder: Sendable {
    case byteLevel

    static func parse(_ node: JSONNode) throws -> TokenDecoder {
        if node.isNull {
            throw node.unsupported(expected: "a ByteLevel decoder (only byte-level BPE is supported)")
        }
        let typeNode = try node.child("type")
        switch try typeNode.string() {
        case "ByteLevel":
            return .byteLevel
        case "Sequence":
            let steps = try node.child("decoders").array()
            guard steps.count == 1 else {
                throw node.unsupported(expected: "a Sequence holding only a ByteLevel decoder")
            }
            return try parse(steps[0])
        default:
            throw typeNode.unsupported(expected: "ByteLevel")
        }
    }

    /// Returns the bytes that `token` contributes to decoded text.
    func bytes(ofToken token: String) -> [UInt8] {
        switch self {
        case .byteLevel:
            return ByteLevel.decodedBytes(ofToken: token)
        }
    }
}
