/// The `post_processor` stage of tokenizer.json, applied to a single sequence
/// when special tokens are requested.
///
/// Supported types: TemplateProcessing (its `single` template), ByteLevel (which
/// only adjusts offsets, so it leaves ids unchanged) and Sequence.
indirect enum PostProcessor: Sendable {
    /// Template pieces in order: nil is the input sequence, an array is special-token ids.
    case template([[Int]?])
    case byteLevel
    case sequence([PostProcessor])

    /// Parses a post-processor object; returns nil for a JSON null.
    static func parse(_ node: JSONNode) throws -> PostProcessor? {
        if node.isNull { return nil }
        let typeNode = try node.child("type")
        switch try typeNode.string() {
        case "ByteLevel":
            return .byteLevel
        case "Sequence":
            let items = try node.child("processors").array()
            return .sequence(try items.map { item in
                guard let processor = try parse(item) else { throw item.invalid(expected: "a post-processor object") }
                return processor
            })
        case "TemplateProcessing":
            return try parseTemplate(node)
        default:
            throw typeNode.unsupported(expected: "TemplateProcessing, ByteLevel or Sequence")
        }
    }

    private static func parseTemplate(_ node: JSONNode) throws -> PostProcessor {
        var specialTokens: [String: [Int]] = [:]
        if let specialNode = try node.optionalChild("special_tokens") {
            for (name, entry) in try specialNode.entries() {
                specialTokens[name] = try entry.child("ids").array().map { try $0.int() }
            }
        }
        var pieces: [[Int]?] = []
        for piece in try node.child("single").array() {
            if let sequence = try piece.optionalChild("Sequence") {
                let idNode = try sequence.child("id")
                guard try idNode.string() == "A" else {
                    throw idNode.invalid(expected: "\"A\" (the single template has one sequence)")
                }
                pieces.append(nil)
            } else if let special = try piece.optionalChild("SpecialToken") {
                let idNode = try special.child("id")
                let name = try idNode.string()
                guard let ids = specialTokens[name] else {
                    throw idNode.invalid(expected: "a name listed in \(node.path).special_tokens")
                }
                pieces.append(ids)
            } else {
                throw piece.invalid(expected: "an object with a \"Sequence\" or \"SpecialToken\" key")
            }
        }
        return .template(pieces)
    }

    /// Returns `ids` with the template's special tokens added.
    func process(_ ids: [Int]) -> [Int] {
        switch self {
        case let .template(pieces):
            var result: [Int] = []
            for piece in pieces {
                result += piece ?? ids
            }
            return result
        case .byteLevel:
            return ids
        case let .sequence(processors):
            return processors.reduce(ids) { $1.process($0) }
        }
    }
}
