import Foundation
import Generation
import JSON
import Tokenizers

/// Decoding settings common to chat and text completions, as parsed from a
/// request. Unset fields take OpenAI's defaults (temperature 1, top_p 1, no
/// top-k or min-p).
public struct CompletionSettings: Sendable {
    public var model: String?
    public var maxTokens: Int?
    public var sampling = SamplingParameters()
    public var stop: [String] = []
    public var stream = false
    public var includeUsage = false
    /// The `experts` extension: expert name → weight, overriding `model`.
    public var experts: BlendSpec?
    /// The `router` extension, e.g. "encoder".
    public var router: String?

    init() {
        sampling.temperature = 1
        sampling.topK = 0
        sampling.topP = 1
        sampling.minP = 0
        sampling.repeatPenalty = 1
        sampling.repeatLastN = -1
    }
}

/// A parsed `POST /v1/chat/completions` body.
public struct ChatCompletionRequest: Sendable {
    public var messages: [ChatMessage]
    public var enableThinking: Bool?
    public var settings: CompletionSettings
}

/// A parsed `POST /v1/completions` body.
public struct TextCompletionRequest: Sendable {
    public var prompt: String
    public var settings: CompletionSettings
}

/// Parses request bodies with one error per bad field, naming the field.
/// Fields that would change the output in ways this server does not
/// implement are rejected unless they hold their neutral value.
enum RequestParser {
    /// Fields accepted and ignored: they do not change the output.
    static let ignored: Set<String> = ["user", "metadata", "store", "service_tier", "parallel_tool_calls"]

    static func parseChat(_ body: Data) throws -> ChatCompletionRequest {
        let object = try parseObject(body)
        var known = commonFields.union(["messages", "max_completion_tokens", "chat_template_kwargs", "tools", "tool_choice",
                                        "response_format", "logprobs", "top_logprobs"])
        known.formUnion(ignored)
        try rejectUnknown(object, known: known)
        try requireNeutral(object, ["tools", "tool_choice", "logprobs", "top_logprobs"])
        if let format = object["response_format"], format != .null {
            guard format["type"] == .string("text") else {
                throw APIError.invalidRequest("response_format \(format.summary) is not supported; only {\"type\": \"text\"}", param: "response_format")
            }
        }

        guard case let .array(items)? = object["messages"], !items.isEmpty else {
            throw APIError.invalidRequest("'messages' must be a non-empty array of {role, content}", param: "messages")
        }
        let messages = try items.enumerated().map { index, item in try parseMessage(item, index: index) }

        var settings = try parseCommon(object)
        if let value = object["max_completion_tokens"], value != .null {
            settings.maxTokens = try nonNegativeInt(value, param: "max_completion_tokens")
        }
        var enableThinking: Bool?
        if let kwargs = object["chat_template_kwargs"], kwargs != .null {
            guard case let .object(members) = kwargs else {
                throw APIError.invalidRequest("'chat_template_kwargs' must be an object", param: "chat_template_kwargs")
            }
            for (key, value) in members {
                guard key == "enable_thinking", case let .bool(flag) = value else {
                    throw APIError.invalidRequest("chat_template_kwargs.\(key) is not supported; only enable_thinking (true or false)", param: "chat_template_kwargs")
                }
                enableThinking = flag
            }
        }
        return ChatCompletionRequest(messages: messages, enableThinking: enableThinking, settings: settings)
    }

    static func parseCompletion(_ body: Data) throws -> TextCompletionRequest {
        let object = try parseObject(body)
        var known = commonFields.union(["prompt", "echo", "suffix", "logprobs", "best_of"])
        known.formUnion(ignored)
        try rejectUnknown(object, known: known)
        try requireNeutral(object, ["echo", "suffix", "logprobs"])
        if let bestOf = object["best_of"], bestOf != .null, bestOf != .number(1) {
            throw APIError.invalidRequest("best_of must be 1", param: "best_of")
        }
        let prompt: String
        switch object["prompt"] {
        case let .string(text)?:
            prompt = text
        case let .array(items)? where items.count == 1:
            guard case let .string(text) = items[0] else {
                throw APIError.invalidRequest("'prompt' must be a string (token-id prompts are not supported)", param: "prompt")
            }
            prompt = text
        case .array?:
            throw APIError.invalidRequest("'prompt' must be one string; batches of prompts are not supported", param: "prompt")
        default:
            throw APIError.invalidRequest("'prompt' is required and must be a string", param: "prompt")
        }
        var settings = try parseCommon(object)
        // The legacy completions endpoint defaults to 16 tokens.
        if object["max_tokens"] == nil || object["max_tokens"] == .null {
            settings.maxTokens = 16
        }
        return TextCompletionRequest(prompt: prompt, settings: settings)
    }

    static let commonFields: Set<String> = [
        "model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "seed", "stop", "n",
        "stream", "stream_options", "experts", "router", "presence_penalty", "frequency_penalty",
    ]

    static func parseObject(_ body: Data) throws -> JSONValue {
        let value: JSONValue
        do {
            value = try JSONValue.parse([UInt8](body))
        } catch {
            throw APIError.invalidRequest("the request body is not valid JSON: \(error)")
        }
        guard case .object = value else {
            throw APIError.invalidRequest("the request body must be a JSON object")
        }
        return value
    }

    static func rejectUnknown(_ object: JSONValue, known: Set<String>) throws {
        guard case let .object(members) = object else { return }
        if let unknown = members.first(where: { !known.contains($0.key) }) {
            throw APIError.invalidRequest("unrecognized request field '\(unknown.key)'", param: unknown.key)
        }
    }

    static func requireNeutral(_ object: JSONValue, _ fields: [String]) throws {
        for field in fields {
            if let value = object[field], !value.isNeutral {
                throw APIError.invalidRequest("'\(field)' is not supported by this server (got \(value.summary))", param: field)
            }
        }
    }

    static func parseMessage(_ value: JSONValue, index: Int) throws -> ChatMessage {
        let param = "messages[\(index)]"
        guard case .object = value else {
            throw APIError.invalidRequest("\(param) must be an object with 'role' and 'content'", param: param)
        }
        guard case let .string(role)? = value["role"] else {
            throw APIError.invalidRequest("\(param).role must be a string", param: "\(param).role")
        }
        guard ["system", "user", "assistant", "developer"].contains(role) else {
            throw APIError.invalidRequest("\(param).role '\(role)' is not supported; use system, user or assistant", param: "\(param).role")
        }
        let content: String
        switch value["content"] {
        case let .string(text)?:
            content = text
        case let .array(parts)?:
            content = try parts.enumerated().map { partIndex, part in
                guard part["type"] == .string("text"), case let .string(text)? = part["text"] else {
                    throw APIError.invalidRequest("\(param).content[\(partIndex)] must be {\"type\": \"text\", \"text\": …}; other content types are not supported", param: "\(param).content")
                }
                return text
            }.joined()
        default:
            throw APIError.invalidRequest("\(param).content must be a string or an array of text parts", param: "\(param).content")
        }
        // OpenAI's "developer" role plays the part of the system message.
        return ChatMessage(role: role == "developer" ? "system" : role, content: content)
    }

    static func parseCommon(_ object: JSONValue) throws -> CompletionSettings {
        var settings = CompletionSettings()
        if let value = object["model"], value != .null {
            guard case let .string(model) = value else { throw APIError.invalidRequest("'model' must be a string", param: "model") }
            settings.model = model
        }
        if let value = object["max_tokens"], value != .null {
            settings.maxTokens = try nonNegativeInt(value, param: "max_tokens")
        }
        if let value = try number(object, "temperature") {
            guard value >= 0, value <= 2 else { throw APIError.invalidRequest("temperature must be between 0 and 2", param: "temperature") }
            settings.sampling.temperature = Float(value)
        }
        if let value = try number(object, "top_p") {
            guard value > 0, value <= 1 else { throw APIError.invalidRequest("top_p must be in (0, 1]", param: "top_p") }
            settings.sampling.topP = Float(value)
        }
        if let value = object["top_k"], value != .null {
            settings.sampling.topK = try nonNegativeInt(value, param: "top_k")
        }
        if let value = try number(object, "min_p") {
            guard value >= 0, value <= 1 else { throw APIError.invalidRequest("min_p must be in [0, 1]", param: "min_p") }
            settings.sampling.minP = Float(value)
        }
        if let value = try number(object, "repetition_penalty") {
            guard value > 0 else { throw APIError.invalidRequest("repetition_penalty must be > 0", param: "repetition_penalty") }
            settings.sampling.repeatPenalty = Float(value)
        }
        for field in ["presence_penalty", "frequency_penalty"] {
            if let value = try number(object, field), value != 0 {
                throw APIError.invalidRequest("\(field) is not supported (use repetition_penalty)", param: field)
            }
        }
        if let value = object["seed"], value != .null {
            guard let seed = JSONFieldsInteger.exact(value) else { throw APIError.invalidRequest("'seed' must be an integer", param: "seed") }
            settings.sampling.seed = UInt64(bitPattern: Int64(seed))
        } else {
            settings.sampling.seed = UInt64.random(in: 0..<(1 << 53))
        }
        switch object["stop"] {
        case nil, .null?:
            break
        case let .string(text)?:
            settings.stop = [text]
        case let .array(items)?:
            settings.stop = try items.map { item in
                guard case let .string(text) = item else { throw APIError.invalidRequest("'stop' must be a string or an array of strings", param: "stop") }
                return text
            }
            guard settings.stop.count <= 4 else { throw APIError.invalidRequest("'stop' takes at most 4 strings", param: "stop") }
        default:
            throw APIError.invalidRequest("'stop' must be a string or an array of strings", param: "stop")
        }
        if let value = object["n"], value != .null, value != .number(1) {
            throw APIError.invalidRequest("only n = 1 is supported", param: "n")
        }
        if let value = object["stream"], value != .null {
            guard case let .bool(flag) = value else { throw APIError.invalidRequest("'stream' must be true or false", param: "stream") }
            settings.stream = flag
        }
        if let options = object["stream_options"], options != .null {
            guard case let .object(members) = options else {
                throw APIError.invalidRequest("'stream_options' must be an object", param: "stream_options")
            }
            for (key, value) in members {
                guard key == "include_usage", case let .bool(flag) = value else {
                    throw APIError.invalidRequest("stream_options.\(key) is not supported", param: "stream_options")
                }
                settings.includeUsage = flag
            }
        }
        if let experts = object["experts"], experts != .null {
            guard case let .object(members) = experts else {
                throw APIError.invalidRequest("'experts' must be an object mapping expert names to weights", param: "experts")
            }
            settings.experts = BlendSpec(terms: try members.map { key, value in
                guard case let .number(weight) = value, weight.isFinite else {
                    throw APIError.invalidRequest("experts.\(key) must be a number", param: "experts")
                }
                return (key, weight)
            })
        }
        if let value = object["router"], value != .null {
            guard case let .string(router) = value else { throw APIError.invalidRequest("'router' must be a string", param: "router") }
            settings.router = router
        }
        return settings
    }

    static func number(_ object: JSONValue, _ field: String) throws -> Double? {
        guard let value = object[field], value != .null else { return nil }
        guard case let .number(number) = value, number.isFinite else {
            throw APIError.invalidRequest("'\(field)' must be a number", param: field)
        }
        return number
    }

    static func nonNegativeInt(_ value: JSONValue, param: String) throws -> Int {
        guard let integer = JSONFieldsInteger.exact(value), integer >= 0 else {
            throw APIError.invalidRequest("'\(param)' must be a non-negative integer", param: param)
        }
        return integer
    }
}

/// Exact integers from JSON numbers.
enum JSONFieldsInteger {
    static func exact(_ value: JSONValue) -> Int? {
        guard case let .number(number) = value, number.rounded() == number, abs(number) < 9.0e15 else { return nil }
        return Int(number)
    }
}
