import Foundation
import LoRAMoE
import Synchronization
import Testing

/// Collects a job's events from the scheduler thread.
final class EventLog: Sendable {
    private let events = Mutex<[BatchEvent]>([])
    private let done = DispatchSemaphore(value: 0)

    func record(_ event: BatchEvent) {
        events.withLock { $0.append(event) }
        switch event {
        case .finished, .failed: done.signal()
        case .text: break
        }
    }

    /// Waits for the final event; false on timeout.
    func wait(seconds: Double = 120) -> Bool {
        done.wait(timeout: .now() + seconds) == .success
    }

    var text: String {
        events.withLock { $0.compactMap { if case let .text(piece) = $0 { return piece } else { return nil } }.joined() }
    }

    var result: GenerationResult? {
        events.withLock { $0.compactMap { if case let .finished(result) = $0 { return result } else { return nil } }.first }
    }

    var failure: String? {
        events.withLock { $0.compactMap { if case let .failed(message) = $0 { return message } else { return nil } }.first }
    }
}

struct BatchSchedulerTests {
    let engine: Engine
    let experts: [LoRAAdapter]

    init() throws {
        let engine = try RealModels.engine("smollm2-135m-instruct")
        self.engine = engine
        let directory = RealModels.fixtureDirectory("smollm2-135m-instruct").appendingPathComponent("adapters")
        experts = try engine.loadExperts(["a", "b", "c"].map { ExpertSpec(name: $0, path: directory.appendingPathComponent($0).path) })
    }

    func request(_ prompt: String, temperature: Float, seed: UInt64, maxTokens: Int = 16) throws -> GenerationRequest {
        var sampling = SamplingParameters()
        sampling.temperature = temperature
        sampling.seed = seed
        return GenerationRequest(promptTokens: try engine.chatTokens([ChatMessage(role: "user", content: prompt)]),
                                 maxTokens: maxTokens, sampling: sampling, stopTokens: engine.stopTokens)
    }

    /// Jobs with different blends, prompts and seeds, run together, give the
    /// same tokens as each run alone through `Generator`.
    @Test func batchedJobsMatchSequentialGeneration() throws {
        let blends: [[Double]] = [[0, 0, 0], [1, 0, 0], [0.6, 0.7, -0.3], [0, 0, 1], [0.5, 0.5, 0]]
        let prompts = ["What is 2+2?", "Name a fruit.", "Say hello in French.", "Write a haiku about snow.", "What color is the sky?"]
        let jobs = try (0..<5).map { index in
            BatchJob(request: try request(prompts[index], temperature: index % 2 == 0 ? 0 : 0.9, seed: UInt64(index)),
                     source: FixedDelta(try ExpertBlend(experts: experts, weights: blends[index])))
        }

        let scheduler = BatchScheduler(model: engine.model, tokenizer: engine.tokenizer, maxBatchSize: 4, queueCapacity: 4)
        defer { scheduler.shutdown() }
        let logs = (0..<5).map { _ in EventLog() }
        for (job, log) in zip(jobs, logs) {
            _ = try scheduler.submit(job) { log.record($0) }
        }

        let generator = Generator(model: engine.model, tokenizer: engine.tokenizer)
        for (index, (job, log)) in zip(jobs, logs).enumerated() {
            #expect(log.wait(), "job \(index) did not finish")
            let batched = try #require(log.result, "job \(index): \(log.failure ?? "no result")")
            let alone = try generator.generate(job.request, state: engine.model.makeState(), source: job.source)
            #expect(batched.tokens == alone.tokens, "job \(index)")
            #expect(batched.text == alone.text)
            #expect(log.text == batched.text)
            #expect(batched.finishReason == alone.finishReason)
        }
    }

    @Test func fullQueueRejectsAndCancelStopsAJob() throws {
        let scheduler = BatchScheduler(model: engine.model, tokenizer: engine.tokenizer, maxBatchSize: 1, queueCapacity: 1)
        defer { scheduler.shutdown() }
        let long = BatchJob(request: try request("Tell me a long story.", temperature: 0, seed: 1, maxTokens: 400), source: FixedDelta(nil))
        let first = EventLog()
        let handle = try scheduler.submit(long) { first.record($0) }
        let second = EventLog()
        _ = try scheduler.submit(long) { second.record($0) }
        // One running (or about to), one waiting: a third exceeds the queue.
        #expect(throws: SchedulerError.queueFull(capacity: 1)) {
            try scheduler.submit(long) { _ in }
        }
        handle.cancel()
        #expect(first.wait())
        #expect(first.failure == "cancelled")
        #expect(second.wait())
        #expect(second.result?.tokens.count == 400 || second.result?.finishReason == .stop)
    }

    @Test func invalidJobsAreRejectedAtSubmit() throws {
        let scheduler = BatchScheduler(model: engine.model, tokenizer: engine.tokenizer)
        defer { scheduler.shutdown() }
        var empty = try request("x", temperature: 0, seed: 0)
        empty.promptTokens = []
        #expect(throws: GenerationError.self) { try scheduler.submit(BatchJob(request: empty, source: FixedDelta(nil))) { _ in } }
        let tooLong = BatchJob(request: try request("hello there", temperature: 0, seed: 0), source: FixedDelta(nil), contextLength: 3)
        #expect(throws: GenerationError.self) { try scheduler.submit(tooLong) { _ in } }
        scheduler.shutdown()
        #expect(throws: SchedulerError.shuttingDown) {
            try scheduler.submit(BatchJob(request: try request("hi", temperature: 0, seed: 0), source: FixedDelta(nil))) { _ in }
        }
    }
}
