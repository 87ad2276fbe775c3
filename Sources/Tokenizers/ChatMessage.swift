/// One message of a conversation: `role` is "system", "user" or "assistant"
/// (some templates accept other roles), `content` is plain text.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}
