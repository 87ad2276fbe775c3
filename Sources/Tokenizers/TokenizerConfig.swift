/// The fields of tokenizer_config.json that the tokenizer and chat templates use.
struct TokenizerConfig: Sendable {
    var bosToken: String?
    var eosToken: String?
    /// The `chat_template` string, or the template named "default" when the file lists several.
    var chatTemplate: String?

    /// Parses the file's JSON; `file` names it in errors.
    static func parse(_ data: [UInt8], file: String) throws -> TokenizerConfig {
        let root = try JSONNode.parse(data, file: file)
        return TokenizerConfig(
            bosToken: try specialToken(root, key: "bos_token"),
            eosToken: try specialToken(root, key: "eos_token"),
            chatTemplate: try chatTemplate(root))
    }

    /// Returns a special token, written as a string or, in older files, as an AddedToken object.
    private static func specialToken(_ root: JSONNode, key: String) throws -> String? {
        guard let node = try root.optionalChild(key) else { return nil }
        if case .string(let text) = node.value { return text }
        if case .object = node.value { return try node.child("content").string() }
        throw node.invalid(expected: "a string or an object with \"content\"")
    }

    private static func chatTemplate(_ root: JSONNode) throws -> String? {
        guard let node = try root.optionalChild("chat_template") else { return nil }
        if case .string(let text) = node.value { return text }
        // A list of {"name", "template"} entries; transformers uses the one named "default".
        for entry in try node.array() where try entry.child("name").string() == "default" {
            return try entry.child("template").string()
        }
        throw node.unsupported(expected: "a template string or a list with a template named \"default\"")
    }
}
