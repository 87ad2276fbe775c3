import Foundation
import Generation
import HTTP
import LoRAMoE
import Synchronization

/// Server-wide settings of the OpenAI-compatible API.
public struct ServerOptions: Sendable {
    /// The id `GET /v1/models` reports for the default blend.
    public var modelID: String
    /// Blends with names of their own, listed by `GET /v1/models`.
    public var namedBlends: [(name: String, spec: BlendSpec)] = []
    /// Upper limit on `max_tokens`; also the default when a request sets none.
    public var maxTokensLimit = 2048
    /// Context length of each request's KV cache; nil for the model's maximum.
    public var contextLength: Int?
    /// How long `POST /v1/experts/unload` waits for requests that hold the expert.
    public var unloadTimeoutSeconds = 60.0

    public init(modelID: String) {
        self.modelID = modelID
    }
}

/// The OpenAI-compatible routes: chat and text completions (streamed or
/// not), models, health, and expert management. No model math happens here:
/// requests become `BatchJob`s for the scheduler.
public final class OpenAIHandler: HTTPHandler {
    let engine: Engine
    let scheduler: BatchScheduler
    let registry: ExpertRegistry
    /// The encoder or gate router chosen at start, for `"router": "encoder"`.
    let inputRouter: (any Router)?
    let options: ServerOptions
    private let completionCounter = Atomic<Int>(0)

    public init(engine: Engine, scheduler: BatchScheduler, registry: ExpertRegistry, inputRouter: (any Router)?, options: ServerOptions) {
        self.engine = engine
        self.scheduler = scheduler
        self.registry = registry
        self.inputRouter = inputRouter
        self.options = options
    }

    public func handle(_ request: HTTPRequest, responder: HTTPResponder) throws {
        do {
            try route(request, responder: responder)
        } catch let error as APIError {
            send(error, to: responder)
        } catch {
            send(.internalError("\(error)"), to: responder)
        }
    }

    private func route(_ request: HTTPRequest, responder: HTTPResponder) throws {
        switch (request.method, request.path) {
        case ("GET", "/health"):
            let load = scheduler.load
            sendJSON(["status": "ok", "model": options.modelID, "active_requests": load.active, "queued_requests": load.queued], to: responder)
        case ("GET", "/v1/models"):
            sendJSON(modelList(), to: responder)
        case ("POST", "/v1/chat/completions"):
            try complete(chat: try RequestParser.parseChat(request.body), responder: responder)
        case ("POST", "/v1/completions"):
            try complete(text: try RequestParser.parseCompletion(request.body), responder: responder)
        case ("GET", "/v1/experts"):
            sendJSON(expertList(), to: responder)
        case ("POST", "/v1/experts"):
            try setDefaultWeights(request.body)
            sendJSON(expertList(), to: responder)
        case ("POST", "/v1/experts/load"):
            try loadExpert(request.body, responder: responder)
        case ("POST", "/v1/experts/unload"):
            try unloadExpert(request.body, responder: responder)
        case (_, "/health"), (_, "/v1/models"), (_, "/v1/chat/completions"), (_, "/v1/completions"),
             (_, "/v1/experts"), (_, "/v1/experts/load"), (_, "/v1/experts/unload"):
            throw APIError(status: 405, type: "invalid_request_error", message: "method \(request.method) is not allowed on \(request.path)")
        default:
            throw APIError.notFound("no route for \(request.method) \(request.path)")
        }
    }

    // MARK: Completions

    private func complete(chat request: ChatCompletionRequest, responder: HTTPResponder) throws {
        let routingText = request.messages.last { $0.role == "user" }?.content ?? ""
        let tokens: [Int]
        do {
            tokens = try engine.chatTokens(request.messages, enableThinking: request.enableThinking)
        } catch {
            throw APIError.invalidRequest("cannot format the messages with the chat template: \(error)", param: "messages")
        }
        try run(tokens: tokens, routingText: routingText, settings: request.settings, kind: .chat, responder: responder)
    }

    private func complete(text request: TextCompletionRequest, responder: HTTPResponder) throws {
        let tokens = engine.tokenizer.encode(request.prompt, addSpecialTokens: true)
        try run(tokens: tokens, routingText: request.prompt, settings: request.settings, kind: .text, responder: responder)
    }

    enum Kind {
        case chat
        case text
    }

    /// The blend a request asked for, with the experts it leases.
    struct ResolvedBlend {
        let source: any DeltaSource
        let lease: ExpertRegistry.Lease?
        let description: [String: Double]
        let router: String
        let label: String
    }

    func resolveBlend(_ settings: CompletionSettings, routingText: String) throws -> ResolvedBlend {
        if let router = settings.router {
            guard router == "encoder" else {
                throw APIError.invalidRequest("unknown router '\(router)'; this server offers \"encoder\" when started with --router", param: "router")
            }
            guard let inputRouter else {
                throw APIError.invalidRequest("this server has no input router; start it with --router FILE", param: "router")
            }
            guard settings.experts == nil else {
                throw APIError.invalidRequest("'experts' and 'router' exclude each other", param: "router")
            }
            let lease = try registry.lease(inputRouter.experts.map(\.name), param: "router")
            let tokens = engine.tokenizer.encode(routingText, addSpecialTokens: false)
            let decision = try inputRouter.route(RoutingContext(model: engine.model, routingTokens: tokens, pool: scheduler.pool))
            let weights = decision.weights ?? []
            let description = Dictionary(zip(decision.experts, weights), uniquingKeysWith: { first, _ in first })
            let label = zip(decision.experts, weights).map { "\($0):\(formatWeight($1))" }.joined(separator: "+")
            return ResolvedBlend(source: decision.source, lease: lease, description: description, router: decision.router, label: label)
        }

        let spec: BlendSpec?
        if let experts = settings.experts {
            spec = experts
        } else if let model = settings.model, model != options.modelID, model != "default" {
            if model == "base" {
                spec = BlendSpec(terms: [])
            } else if let named = options.namedBlends.first(where: { $0.name == model }) {
                spec = named.spec
            } else {
                spec = try BlendSpec(parsing: model)
            }
        } else {
            spec = nil
        }

        guard let spec else {
            // The default blend: weights may change between tokens.
            let current = registry.defaultBlendSpec
            let lease = try registry.lease(current.terms.map(\.name), param: "model")
            let description = Dictionary(current.terms.map { ($0.name, $0.weight) }, uniquingKeysWith: { first, _ in first })
            return ResolvedBlend(source: registry.defaultSource, lease: lease, description: description, router: "weighted", label: "default(\(current.text))")
        }
        let lease = try registry.lease(spec.terms.map(\.name), param: settings.experts != nil ? "experts" : "model")
        let blend: ExpertBlend?
        do {
            blend = try registry.blend(for: lease, weights: spec.terms.map(\.weight))
        } catch {
            throw APIError.invalidRequest("\(error)", param: settings.experts != nil ? "experts" : "model")
        }
        let description = Dictionary(spec.terms.map { ($0.name, $0.weight) }, uniquingKeysWith: { first, _ in first })
        return ResolvedBlend(source: FixedDelta(blend), lease: lease, description: description, router: "static", label: spec.text)
    }

    private func run(tokens: [Int], routingText: String, settings: CompletionSettings, kind: Kind, responder: HTTPResponder) throws {
        let blend = try resolveBlend(settings, routingText: routingText)
        responder.setLogField("blend", blend.label)
        responder.setLogField("prompt_tokens", "\(tokens.count)")

        let contextLength = min(options.contextLength ?? engine.model.config.maxPositionEmbeddings, engine.model.config.maxPositionEmbeddings)
        guard tokens.count < contextLength else {
            throw APIError.invalidRequest("the prompt has \(tokens.count) tokens but the context holds \(contextLength)", param: kind == .chat ? "messages" : "prompt")
        }
        let room = contextLength - tokens.count
        let maxTokens = settings.maxTokens ?? min(options.maxTokensLimit, room)
        guard maxTokens <= options.maxTokensLimit else {
            throw APIError.invalidRequest("max_tokens \(maxTokens) exceeds this server's limit of \(options.maxTokensLimit)", param: "max_tokens")
        }

        let request = GenerationRequest(promptTokens: tokens, maxTokens: min(maxTokens, room), sampling: settings.sampling,
                                        stopStrings: settings.stop, stopTokens: engine.stopTokens)
        let job = BatchJob(request: request, source: blend.source, contextLength: contextLength)
        let id = (kind == .chat ? "chatcmpl-" : "cmpl-") + String(completionCounter.add(1, ordering: .relaxed).newValue)
        let created = Int(Date().timeIntervalSince1970)
        let model = settings.model ?? options.modelID
        let common = CompletionContext(id: id, created: created, model: model, kind: kind, blend: blend,
                                       promptTokens: tokens.count, includeUsage: settings.includeUsage)

        if settings.stream {
            try stream(job, context: common, responder: responder)
        } else {
            try wait(for: job, context: common, responder: responder)
        }
    }

    struct CompletionContext {
        let id: String
        let created: Int
        let model: String
        let kind: Kind
        let blend: ResolvedBlend
        let promptTokens: Int
        let includeUsage: Bool

        var object: String { kind == .chat ? "chat.completion" : "text_completion" }
        var chunkObject: String { kind == .chat ? "chat.completion.chunk" : "text_completion" }

        func usage(_ completionTokens: Int) -> [String: Any] {
            ["prompt_tokens": promptTokens, "completion_tokens": completionTokens, "total_tokens": promptTokens + completionTokens]
        }

        /// The extension fields saying which blend answered.
        var blendFields: [String: Any] {
            ["experts": blend.description, "router": blend.router]
        }
    }

    private func submit(_ job: BatchJob, onEvent: @escaping @Sendable (BatchEvent) -> Void) throws -> BatchJobHandle {
        do {
            return try scheduler.submit(job, onEvent: onEvent)
        } catch SchedulerError.queueFull(let capacity) {
            throw APIError.overloaded("the server is busy (\(capacity) requests waiting); retry later", retryAfter: 1)
        } catch SchedulerError.shuttingDown {
            throw APIError.unavailable("the server is shutting down")
        } catch let error as GenerationError {
            throw APIError.invalidRequest("\(error)")
        }
    }

    private func wait(for job: BatchJob, context: CompletionContext, responder: HTTPResponder) throws {
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<BatchEvent?>(nil)
        let handle = try submit(job) { event in
            switch event {
            case .text: break
            case .finished, .failed:
                outcome.withLock { $0 = event }
                done.signal()
            }
        }
        responder.onCancel { _ in handle.cancel() }
        done.wait()
        withExtendedLifetime(context.blend.lease) {}

        switch outcome.withLock({ $0 }) {
        case let .finished(result)?:
            responder.setLogField("completion_tokens", "\(result.tokens.count)")
            let choice: [String: Any] = context.kind == .chat
                ? ["index": 0, "message": ["role": "assistant", "content": result.text], "finish_reason": finishReason(result.finishReason), "logprobs": NSNull()]
                : ["index": 0, "text": result.text, "finish_reason": finishReason(result.finishReason), "logprobs": NSNull()]
            var body: [String: Any] = [
                "id": context.id, "object": context.object, "created": context.created, "model": context.model,
                "choices": [choice], "usage": context.usage(result.tokens.count),
            ]
            body.merge(context.blendFields) { $1 }
            sendJSON(body, to: responder)
        case let .failed(message)?:
            if responder.isCancelled { return }
            send(.internalError("generation failed: \(message)"), to: responder)
        default:
            send(.internalError("generation ended without a result"), to: responder)
        }
    }

    private func stream(_ job: BatchJob, context: CompletionContext, responder: HTTPResponder) throws {
        // Submit first, so a full queue is still a plain 429 response.
        let stream = Mutex<HTTPStream?>(nil)
        let pendingHandle = Mutex<BatchJobHandle?>(nil)
        let done = DispatchSemaphore(value: 0)
        let handle = try submit(job) { [self] event in
            guard let output = stream.withLock({ $0 }) else { return }
            let payload: [String: Any]
            var finished = false
            switch event {
            case let .text(piece):
                payload = chunk(context, delta: piece, finishReason: nil)
            case let .finished(result):
                responder.setLogField("completion_tokens", "\(result.tokens.count)")
                payload = chunk(context, delta: nil, finishReason: finishReason(result.finishReason))
                finished = true
                var lines = Self.sse(payload)
                if context.includeUsage {
                    var usage: [String: Any] = ["id": context.id, "object": context.chunkObject, "created": context.created,
                                                "model": context.model, "choices": [[String: Any]](), "usage": context.usage(result.tokens.count)]
                    usage.merge(context.blendFields) { $1 }
                    lines += Self.sse(usage)
                }
                lines += "data: [DONE]\n\n"
                try? output.write(lines)
                output.finish()
                done.signal()
                return
            case let .failed(message):
                responder.setLogField("error", message)
                output.abort()
                done.signal()
                return
            }
            do {
                try output.write(Self.sse(payload))
            } catch {
                pendingHandle.withLock { $0?.cancel() }
            }
            _ = finished
        }
        pendingHandle.withLock { $0 = handle }
        let output = responder.startStream(status: 200, headers: [
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        ])
        // The role comes first, as in OpenAI's streams.
        if context.kind == .chat {
            try? output.write(Self.sse(chunk(context, delta: "", finishReason: nil, role: true)))
        }
        stream.withLock { $0 = output }
        responder.onCancel { _ in handle.cancel() }
        done.wait()
        withExtendedLifetime(context.blend.lease) {}
    }

    private func chunk(_ context: CompletionContext, delta: String?, finishReason: String?, role: Bool = false) -> [String: Any] {
        var choice: [String: Any] = ["index": 0, "finish_reason": finishReason.map { $0 as Any } ?? NSNull(), "logprobs": NSNull()]
        if context.kind == .chat {
            var content: [String: Any] = [:]
            if role { content["role"] = "assistant" }
            if let delta { content["content"] = delta }
            choice["delta"] = content
        } else {
            choice["text"] = delta ?? ""
        }
        var body: [String: Any] = ["id": context.id, "object": context.chunkObject, "created": context.created,
                                   "model": context.model, "choices": [choice]]
        body.merge(context.blendFields) { $1 }
        return body
    }

    static func sse(_ object: [String: Any]) -> String {
        "data: " + jsonText(object) + "\n\n"
    }

    private func finishReason(_ reason: FinishReason) -> String {
        switch reason {
        case .stop: return "stop"
        case .length: return "length"
        case .error: return "stop"
        }
    }

    // MARK: Models and experts

    private func modelList() -> [String: Any] {
        var ids = [options.modelID, "base"] + registry.names + options.namedBlends.map(\.name)
        var seen = Set<String>()
        ids = ids.filter { seen.insert($0).inserted }
        return ["object": "list", "data": ids.map { ["id": $0, "object": "model", "created": 0, "owned_by": "lora-moe"] as [String: Any] }]
    }

    private func expertList() -> [String: Any] {
        ["object": "list", "data": registry.list().map { info in
            ["name": info.name, "path": info.path, "version": info.version, "in_flight": info.inFlight, "default_weight": info.defaultWeight] as [String: Any]
        }]
    }

    private func setDefaultWeights(_ body: Data) throws {
        let object = try RequestParser.parseObject(body)
        try RequestParser.rejectUnknown(object, known: ["weights"])
        guard case let .object(members)? = object["weights"] else {
            throw APIError.invalidRequest("'weights' must be an object mapping expert names to numbers", param: "weights")
        }
        try registry.setDefaultWeights(try members.map { name, value in
            guard case let .number(weight) = value else {
                throw APIError.invalidRequest("weights.\(name) must be a number", param: "weights")
            }
            return (name, weight)
        })
    }

    private func loadExpert(_ body: Data, responder: HTTPResponder) throws {
        let object = try RequestParser.parseObject(body)
        try RequestParser.rejectUnknown(object, known: ["name", "path"])
        guard case let .string(name)? = object["name"] else { throw APIError.invalidRequest("'name' must be a string", param: "name") }
        guard case let .string(path)? = object["path"] else { throw APIError.invalidRequest("'path' must be a string", param: "path") }
        let info = try registry.load(name: name, path: path)
        responder.setLogField("expert", "\(name)@\(info.version)")
        sendJSON(["name": info.name, "path": info.path, "version": info.version, "object": "expert"], to: responder)
    }

    private func unloadExpert(_ body: Data, responder: HTTPResponder) throws {
        let object = try RequestParser.parseObject(body)
        try RequestParser.rejectUnknown(object, known: ["name"])
        guard case let .string(name)? = object["name"] else { throw APIError.invalidRequest("'name' must be a string", param: "name") }
        if inputRouter?.experts.contains(where: { $0.name == name }) == true {
            throw APIError.conflict("expert '\(name)' belongs to the server's router and cannot be unloaded", param: "name")
        }
        try registry.unload(name: name, timeout: options.unloadTimeoutSeconds)
        responder.setLogField("expert", name)
        sendJSON(["name": name, "unloaded": true, "object": "expert"], to: responder)
    }

    // MARK: Responses

    private func sendJSON(_ object: [String: Any], status: Int = 200, to responder: HTTPResponder) {
        responder.respond(status: status, headers: ["Content-Type": "application/json"], body: Data(jsonText(object).utf8))
    }

    private func send(_ error: APIError, to responder: HTTPResponder) {
        responder.setLogField("error", error.message)
        var headers = ["Content-Type": "application/json"]
        if let retryAfter = error.retryAfter { headers["Retry-After"] = "\(retryAfter)" }
        responder.respond(status: error.status, headers: headers, body: Data(jsonText(error.body).utf8))
    }
}

/// Serializes a JSON object with sorted keys; values come from this module,
/// so serialization cannot fail except for non-finite numbers, which become null.
func jsonText(_ object: [String: Any]) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
        return #"{"error": {"message": "the response could not be serialized", "type": "server_error", "param": null, "code": null}}"#
    }
    return String(decoding: data, as: UTF8.self)
}
