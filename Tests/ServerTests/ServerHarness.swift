import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTP
import LoRAMoE
import Server

/// A server on 127.0.0.1 with a free port, serving the real SmolLM2 with the
/// random test adapters a, b and c, for the duration of a test.
final class ServerHarness: @unchecked Sendable {
    // SAFETY: all stored properties are set in init and not mutated afterwards.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var modelDirectory: URL {
        let models = ProcessInfo.processInfo.environment["LORA_MOE_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? repositoryRoot.appendingPathComponent("models").path
        return URL(fileURLWithPath: models).appendingPathComponent("smollm2-135m-instruct")
    }

    static let adapterDirectory = repositoryRoot.appendingPathComponent("Tests/Fixtures/real/smollm2-135m-instruct/adapters")

    /// Loaded once and shared: loading the model is the slow part.
    nonisolated(unsafe) static var sharedEngine: Engine?
    static let engineLock = NSLock()

    static func engine() throws -> Engine {
        engineLock.lock()
        defer { engineLock.unlock() }
        if let sharedEngine { return sharedEngine }
        let engine = try Engine(directory: modelDirectory)
        sharedEngine = engine
        return engine
    }

    let engine: Engine
    let scheduler: BatchScheduler
    let registry: ExpertRegistry
    let server: HTTPServer
    let log = LogCollector()
    var baseURL: String { "http://127.0.0.1:\(server.port)" }

    init(maxBatch: Int = 8, queue: Int = 16, limits: HTTPLimits = HTTPLimits(), adapterDirectory: URL? = ServerHarness.adapterDirectory,
         preloaded: [String] = ["a", "b"]) throws {
        engine = try Self.engine()
        let experts = try engine.loadExperts(preloaded.map {
            ExpertSpec(name: $0, path: Self.adapterDirectory.appendingPathComponent($0).path)
        })
        registry = try ExpertRegistry(modelConfig: engine.model.config, experts: experts,
                                      defaultWeights: [Double](repeating: 0, count: experts.count), adapterDirectory: adapterDirectory)
        scheduler = BatchScheduler(model: engine.model, tokenizer: engine.tokenizer, maxBatchSize: maxBatch, queueCapacity: queue)
        var options = ServerOptions(modelID: "smollm2")
        options.maxTokensLimit = 256
        options.unloadTimeoutSeconds = 30
        let handler = OpenAIHandler(engine: engine, scheduler: scheduler, registry: registry, inputRouter: nil, options: options)
        let log = self.log
        server = try HTTPServer(host: "127.0.0.1", port: 0, limits: limits, handler: handler) { log.append($0) }
    }

    deinit {
        server.stop(gracePeriod: 1)
        scheduler.shutdown()
    }

    struct Response {
        let status: Int
        let headers: [String: String]
        let body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
        var errorMessage: String? { (json?["error"] as? [String: Any])?["message"] as? String }
        var errorParam: String? { (json?["error"] as? [String: Any])?["param"] as? String }
    }

    /// Sends a request and waits for the whole response.
    func request(_ method: String, _ path: String, json: Any? = nil, rawBody: Data? = nil, timeout: Double = 120) throws -> Response {
        var request = URLRequest(url: URL(string: baseURL + path)!)
        request.httpMethod = method
        request.timeoutInterval = timeout
        if let json {
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        } else if let rawBody {
            request.httpBody = rawBody
        }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Response?
        nonisolated(unsafe) var failure: Error?
        URLSession.shared.dataTask(with: request) { data, response, error in
            if let http = response as? HTTPURLResponse {
                var headers: [String: String] = [:]
                for (key, value) in http.allHeaderFields {
                    if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
                }
                result = Response(status: http.statusCode, headers: headers, body: data ?? Data())
            } else {
                failure = error
            }
            done.signal()
        }.resume()
        done.wait()
        if let failure { throw failure }
        guard let result else { throw URLError(.badServerResponse) }
        return result
    }

    /// The data lines of a server-sent-event body, without the `data: ` prefix.
    static func events(_ body: String) -> [String] {
        body.components(separatedBy: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
    }
}

final class LogCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }
}
