import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTP
import LoRAMoE
import Server
import Testing

/// The OpenAI-compatible API on the real SmolLM2, server on 127.0.0.1.
@Suite(.serialized)
struct OpenAIServerTests {
    /// What `Generator` produces alone for the same chat, blend and sampling.
    func reference(_ harness: ServerHarness, _ prompt: String, experts: [(String, Double)], temperature: Float, seed: UInt64, maxTokens: Int) throws -> GenerationResult {
        let engine = harness.engine
        let adapters = try engine.loadExperts(experts.map {
            ExpertSpec(name: $0.0, path: ServerHarness.adapterDirectory.appendingPathComponent($0.0).path)
        })
        let blend = adapters.isEmpty ? nil : try ExpertBlend(experts: adapters, weights: experts.map(\.1))
        var sampling = SamplingParameters()
        sampling.temperature = temperature
        sampling.topK = 0
        sampling.topP = 1
        sampling.minP = 0
        sampling.repeatLastN = -1
        sampling.seed = seed
        let request = GenerationRequest(promptTokens: try engine.chatTokens([ChatMessage(role: "user", content: prompt)]),
                                        maxTokens: maxTokens, sampling: sampling, stopTokens: engine.stopTokens)
        return try Generator(model: engine.model, tokenizer: engine.tokenizer).generate(request, state: engine.model.makeState(), delta: blend)
    }

    @Test func healthModelsAndExperts() throws {
        let harness = try ServerHarness()
        let health = try harness.request("GET", "/health")
        #expect(health.status == 200)
        #expect(health.json?["status"] as? String == "ok")

        let models = try harness.request("GET", "/v1/models")
        let ids = (models.json?["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        #expect(ids == ["smollm2", "base", "a", "b"])

        let experts = try harness.request("GET", "/v1/experts")
        let names = (experts.json?["data"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(names == ["a", "b"])
    }

    @Test func chatCompletionWithBlendEqualsGenerator() throws {
        let harness = try ServerHarness()
        for (model, experts, extra) in [
            ("a:0.7+b:0.3", [("a", 0.7), ("b", 0.3)], [String: Any]()),
            ("smollm2", [("a", 1.2), ("b", -0.4)], ["experts": ["a": 1.2, "b": -0.4]]),
            ("base", [], [String: Any]()),
        ] as [(String, [(String, Double)], [String: Any])] {
            var body: [String: Any] = ["model": model, "messages": [["role": "user", "content": "Name two colors."]],
                                       "max_tokens": 16, "temperature": 0.8, "seed": 7]
            body.merge(extra) { $1 }
            let response = try harness.request("POST", "/v1/chat/completions", json: body)
            #expect(response.status == 200, "\(response.text)")
            let choice = (response.json?["choices"] as? [[String: Any]])?.first
            let content = (choice?["message"] as? [String: Any])?["content"] as? String
            let expected = try reference(harness, "Name two colors.", experts: experts, temperature: 0.8, seed: 7, maxTokens: 16)
            #expect(content == expected.text, "\(model)")
            let usage = response.json?["usage"] as? [String: Any]
            #expect(usage?["completion_tokens"] as? Int == expected.tokens.count)
            let used = response.json?["experts"] as? [String: Double] ?? [:]
            #expect(used == Dictionary(uniqueKeysWithValues: experts))
        }
    }

    @Test func streamingChunksAddUpToTheCompletion() throws {
        let harness = try ServerHarness()
        let body: [String: Any] = ["model": "a", "messages": [["role": "user", "content": "Count to five."]], "max_tokens": 20,
                                   "temperature": 0, "stream": true, "stream_options": ["include_usage": true]]
        let streamed = try harness.request("POST", "/v1/chat/completions", json: body)
        #expect(streamed.status == 200)
        #expect(streamed.headers["content-type"]?.hasPrefix("text/event-stream") == true)
        let events = ServerHarness.events(streamed.text)
        #expect(events.last == "[DONE]")
        let chunks = events.dropLast().compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        let text = chunks.compactMap { chunk -> String? in
            let choice = (chunk["choices"] as? [[String: Any]])?.first
            return (choice?["delta"] as? [String: Any])?["content"] as? String
        }.joined()
        let finish = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first?["finish_reason"]) as? String }
        #expect(finish.count == 1)
        #expect((chunks.last?["usage"] as? [String: Any])?["completion_tokens"] != nil)

        var whole = body
        whole["stream"] = false
        whole.removeValue(forKey: "stream_options")
        let complete = try harness.request("POST", "/v1/chat/completions", json: whole)
        let content = ((complete.json?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
        #expect(text == content)
    }

    @Test func textCompletion() throws {
        let harness = try ServerHarness()
        let response = try harness.request("POST", "/v1/completions", json: ["model": "base", "prompt": "The capital of France is", "max_tokens": 5, "temperature": 0])
        #expect(response.status == 200, "\(response.text)")
        #expect(response.json?["object"] as? String == "text_completion")
        let text = (response.json?["choices"] as? [[String: Any]])?.first?["text"] as? String
        #expect(text?.contains("Paris") == true)
    }

    /// Bad requests and the status each must get; the server keeps serving after each.
    @Test func badRequestsGetJSONErrors() throws {
        let harness = try ServerHarness(limits: { var limits = HTTPLimits(); limits.maxBodyBytes = 2000; return limits }())
        let chat = "/v1/chat/completions"
        let message = [["role": "user", "content": "hi"]]
        let cases: [(path: String, body: Any?, raw: Data?, status: Int, param: String?)] = [
            (chat, nil, Data("{not json".utf8), 400, nil),
            (chat, ["messages": "hi"], nil, 400, "messages"),
            (chat, ["messages": message, "max_tokens": "ten"], nil, 400, "max_tokens"),
            (chat, ["messages": message, "temperature": 5], nil, 400, "temperature"),
            (chat, ["messages": message, "n": 2], nil, 400, "n"),
            (chat, ["messages": message, "frobnicate": true], nil, 400, "frobnicate"),
            (chat, ["messages": message, "model": "nosuch"], nil, 404, "model"),
            (chat, ["messages": message, "experts": ["nosuch": 1]], nil, 404, "experts"),
            (chat, ["messages": message, "model": "a:x"], nil, 400, "model"),
            (chat, ["messages": [["role": "tool", "content": "x"]]], nil, 400, "messages[0].role"),
            (chat, ["messages": message, "max_tokens": 100000], nil, 400, "max_tokens"),
            (chat, ["messages": [["role": "user", "content": String(repeating: "x", count: 5000)]]], nil, 413, nil),
            ("/v1/nothing", nil, nil, 404, nil),
        ]
        for (path, body, raw, status, param) in cases {
            let response = try harness.request("POST", path, json: body, rawBody: raw)
            #expect(response.status == status, "\(body ?? "raw"): \(response.text)")
            #expect(response.errorMessage != nil, "no JSON error for \(body ?? "raw")")
            if let param { #expect(response.errorParam == param, "\(response.text)") }
        }
        let wrongMethod = try harness.request("GET", chat)
        #expect(wrongMethod.status == 405)
        let health = try harness.request("GET", "/health")
        #expect(health.status == 200)
    }

    @Test func fullQueueAnswers429WithRetryAfter() throws {
        let harness = try ServerHarness(maxBatch: 1, queue: 0)
        nonisolated(unsafe) let long: [String: Any] = ["model": "base", "messages": [["role": "user", "content": "Tell a long story."]], "max_tokens": 200, "temperature": 0]
        let group = DispatchGroup()
        nonisolated(unsafe) var first: ServerHarness.Response?
        group.enter()
        DispatchQueue.global().async {
            first = try? harness.request("POST", "/v1/chat/completions", json: long)
            group.leave()
        }
        // Wait until the first request occupies the only slot.
        let deadline = Date().addingTimeInterval(30)
        while harness.scheduler.load.active == 0, Date() < deadline { usleep(10_000) }
        let rejected = try harness.request("POST", "/v1/chat/completions", json: long)
        #expect(rejected.status == 429)
        #expect(rejected.headers["retry-after"] != nil)
        group.wait()
        #expect(first?.status == 200)
    }

    @Test func clientDisconnectCancelsGeneration() throws {
        let harness = try ServerHarness()
        var request = URLRequest(url: URL(string: harness.baseURL + "/v1/chat/completions")!)
        request.httpMethod = "POST"
        request.httpBody = try JSONSerialization.data(withJSONObject: [
            "model": "base", "messages": [["role": "user", "content": "Write a very long essay."]], "max_tokens": 256, "stream": true,
        ] as [String: Any])
        let task = URLSession.shared.dataTask(with: request) { _, _, _ in }
        task.resume()
        let started = Date()
        while harness.scheduler.load.active == 0, Date().timeIntervalSince(started) < 30 { usleep(10_000) }
        #expect(harness.scheduler.load.active == 1)
        task.cancel()
        let cancelled = Date()
        while harness.scheduler.load.active > 0, Date().timeIntervalSince(cancelled) < 10 { usleep(10_000) }
        #expect(harness.scheduler.load.active == 0, "the job kept running after the client left")
        #expect(try harness.request("GET", "/health").status == 200)
    }

    @Test func defaultWeightsCanBeSet() throws {
        let harness = try ServerHarness()
        let set = try harness.request("POST", "/v1/experts", json: ["weights": ["a": 0.5]])
        #expect(set.status == 200, "\(set.text)")
        let weights = (set.json?["data"] as? [[String: Any]])?.compactMap { $0["default_weight"] as? Double }
        #expect(weights == [0.5, 0])
        let body: [String: Any] = ["messages": [["role": "user", "content": "Say something."]], "max_tokens": 12, "temperature": 0]
        let response = try harness.request("POST", "/v1/chat/completions", json: body)
        let content = ((response.json?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
        let expected = try reference(harness, "Say something.", experts: [("a", 0.5)], temperature: 0, seed: 0, maxTokens: 12)
        #expect(content == expected.text)
        #expect(response.json?["router"] as? String == "weighted")
        let unknown = try harness.request("POST", "/v1/experts", json: ["weights": ["zzz": 1]])
        #expect(unknown.status == 404)
    }

    @Test func loadAndUnloadAreConfinedToTheAdapterDirectory() throws {
        let harness = try ServerHarness(preloaded: [])
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("lora-moe-outside-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: outside) }
        let link = ServerHarness.adapterDirectory.appendingPathComponent("escape-\(UUID().uuidString)")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: outside)
        defer { try? FileManager.default.removeItem(at: link) }
        // Directories inside whose files link out of the adapter directory
        // (rejected) or to another adapter inside it (allowed).
        let files = ["adapter_config.json", "adapter_model.safetensors"]
        let source = ServerHarness.adapterDirectory.appendingPathComponent("a")
        let fileLinks = ServerHarness.adapterDirectory.appendingPathComponent("file-links-\(UUID().uuidString)")
        let insideLinks = ServerHarness.adapterDirectory.appendingPathComponent("inside-links-\(UUID().uuidString)")
        defer {
            try? FileManager.default.removeItem(at: fileLinks)
            try? FileManager.default.removeItem(at: insideLinks)
        }
        for directory in [fileLinks, insideLinks] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        }
        for file in files {
            try FileManager.default.copyItem(at: source.appendingPathComponent(file), to: outside.appendingPathComponent(file))
            try FileManager.default.createSymbolicLink(at: fileLinks.appendingPathComponent(file), withDestinationURL: outside.appendingPathComponent(file))
            try FileManager.default.createSymbolicLink(at: insideLinks.appendingPathComponent(file), withDestinationURL: source.appendingPathComponent(file))
        }

        let attempts: [(path: String, status: Int)] = [
            ("../adapters/a", 403), ("/etc", 403), (outside.path, 403), (link.lastPathComponent, 403),
            (fileLinks.lastPathComponent, 403), ("missing", 404), ("", 400),
        ]
        for (path, status) in attempts {
            let response = try harness.request("POST", "/v1/experts/load", json: ["name": "x", "path": path])
            #expect(response.status == status, "\(path): \(response.text)")
        }
        let reserved = try harness.request("POST", "/v1/experts/load", json: ["name": "base", "path": "a"])
        #expect(reserved.status == 400)
        let linkedInside = try harness.request("POST", "/v1/experts/load", json: ["name": "linked", "path": insideLinks.lastPathComponent])
        #expect(linkedInside.status == 200, "\(linkedInside.text)")

        let loaded = try harness.request("POST", "/v1/experts/load", json: ["name": "c", "path": "c"])
        #expect(loaded.status == 200, "\(loaded.text)")
        #expect(try harness.request("POST", "/v1/experts/load", json: ["name": "c", "path": "c"]).status == 409)
        let used = try harness.request("POST", "/v1/chat/completions", json: ["model": "c", "messages": [["role": "user", "content": "hi"]], "max_tokens": 4])
        #expect(used.status == 200)
        #expect(try harness.request("POST", "/v1/experts/unload", json: ["name": "c"]).status == 200)
        #expect(try harness.request("POST", "/v1/experts/unload", json: ["name": "c"]).status == 404)
        let gone = try harness.request("POST", "/v1/chat/completions", json: ["model": "c", "messages": [["role": "user", "content": "hi"]], "max_tokens": 4])
        #expect(gone.status == 404)
    }

    @Test func unloadWaitsForRequestsInFlight() throws {
        let harness = try ServerHarness()
        let group = DispatchGroup()
        nonisolated(unsafe) var generation: ServerHarness.Response?
        group.enter()
        DispatchQueue.global().async {
            generation = try? harness.request("POST", "/v1/chat/completions", json: [
                "model": "a", "messages": [["role": "user", "content": "Tell a story."]], "max_tokens": 60, "temperature": 0,
            ] as [String: Any])
            group.leave()
        }
        let deadline = Date().addingTimeInterval(30)
        while harness.scheduler.load.active == 0, Date() < deadline { usleep(10_000) }
        let unload = try harness.request("POST", "/v1/experts/unload", json: ["name": "a"])
        // The unload returned only after the generation that held 'a' finished.
        #expect(unload.status == 200)
        #expect(harness.scheduler.load.active == 0)
        group.wait()
        #expect(generation?.status == 200)
        let tokens = ((generation?.json?["usage"] as? [String: Any])?["completion_tokens"] as? Int) ?? 0
        #expect(tokens > 0)
    }

    @Test func concurrentRequestsWithDifferentBlends() throws {
        let harness = try ServerHarness()
        let blends: [[(String, Double)]] = [[], [("a", 1)], [("b", 1)], [("a", 0.5), ("b", 0.5)], [("a", -0.5), ("b", 1)], [("a", 0.2)]]
        nonisolated(unsafe) var responses = [ServerHarness.Response?](repeating: nil, count: blends.count)
        DispatchQueue.concurrentPerform(iterations: blends.count) { index in
            let experts = Dictionary(uniqueKeysWithValues: blends[index])
            responses[index] = try? harness.request("POST", "/v1/chat/completions", json: [
                "model": "base", "experts": experts, "messages": [["role": "user", "content": "Describe the sea."]],
                "max_tokens": 12, "temperature": 0,
            ] as [String: Any])
        }
        for (index, experts) in blends.enumerated() {
            let content = ((responses[index]?.json?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
            let expected = try reference(harness, "Describe the sea.", experts: experts, temperature: 0, seed: 0, maxTokens: 12)
            #expect(content == expected.text, "blend \(experts)")
        }
        // One log line per request names its blend (members in the order the client sent them).
        #expect(harness.log.all.contains { $0.contains("blend=a:0.5+b:0.5") || $0.contains("blend=b:0.5+a:0.5") })
    }
}
