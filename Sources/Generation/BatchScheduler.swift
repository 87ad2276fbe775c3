import Foundation
import Models
import Routing
import Synchronization
import Tensor
import Tokenizers

/// A generation request for the batch scheduler: tokens, limits and the
/// blend source (asked once per step, like `Generator`).
public struct BatchJob: Sendable {
    public var request: GenerationRequest
    public var source: any DeltaSource
    /// Context length for this job's KV cache; nil for the model's maximum.
    public var contextLength: Int?

    public init(request: GenerationRequest, source: any DeltaSource, contextLength: Int? = nil) {
        self.request = request
        self.source = source
        self.contextLength = contextLength
    }
}

/// What a job reports, in order: text pieces, then exactly one of
/// `finished` or `failed`.
public enum BatchEvent: Sendable {
    case text(String)
    case finished(GenerationResult)
    case failed(String)
}

/// Why a job was not accepted.
public enum SchedulerError: Error, CustomStringConvertible, Equatable {
    case queueFull(capacity: Int)
    case shuttingDown

    public var description: String {
        switch self {
        case let .queueFull(capacity): return "the request queue is full (\(capacity) waiting); retry later"
        case .shuttingDown: return "the scheduler is shutting down"
        }
    }
}

/// A handle to cancel a submitted job (for example when its client disconnects).
public final class BatchJobHandle: Sendable {
    let cancelled = Atomic<Bool>(false)

    /// Stops the job at its next step; it then reports `failed("cancelled")`.
    public func cancel() {
        cancelled.store(true, ordering: .relaxed)
    }

    public var isCancelled: Bool { cancelled.load(ordering: .relaxed) }
}

/// Runs many generations at once on one model. Each iteration runs one
/// batched forward pass over every active job: a decode step for jobs that
/// are generating and a chunk of prompt for jobs that are still prefilling.
/// Each job keeps its own KV cache, sampler and blend, so jobs with
/// different experts and weights share the base model's matrix products.
///
/// Jobs beyond `maxBatchSize` wait in a queue of at most `queueCapacity`;
/// `submit` throws `queueFull` beyond that instead of blocking. The
/// scheduler's thread keeps it alive until `shutdown()` is called.
public final class BatchScheduler: @unchecked Sendable {
    // SAFETY: `pending` and `stopping` are guarded by `condition`; `active`
    // and the batch buffers are touched only by the scheduler thread.
    public let model: LanguageModel
    public let tokenizer: Tokenizer
    public let maxBatchSize: Int
    public let queueCapacity: Int
    /// Most prompt tokens one job feeds per iteration, so a long prompt does
    /// not stall the other jobs' decoding for long.
    public let prefillChunk: Int
    public let pool: ComputePool

    private let condition = NSCondition()
    private var pending: [Job] = []
    private var stopping = false
    private var active: [Job] = []
    private let buffers: BatchBuffers
    private var thread: Thread?
    private let finishedThread = NSCondition()
    private var threadDone = false

    final class Job {
        let job: BatchJob
        let handle: BatchJobHandle
        let onEvent: @Sendable (BatchEvent) -> Void
        let state: ModelState
        var decoder: SequenceDecoder
        var prefilled = 0
        var nextToken: Int?
        var statistics = GenerationStatistics()
        var prefillStart: Date?
        var decodeStart: Date?

        init(job: BatchJob, handle: BatchJobHandle, onEvent: @escaping @Sendable (BatchEvent) -> Void, model: LanguageModel, tokenizer: Tokenizer) {
            self.job = job
            self.handle = handle
            self.onEvent = onEvent
            state = model.makeState(contextLength: job.contextLength)
            decoder = SequenceDecoder(request: job.request, tokenizer: tokenizer)
            statistics.promptTokens = job.request.promptTokens.count
        }

        var isPrefilling: Bool { prefilled < job.request.promptTokens.count }
    }

    public init(model: LanguageModel, tokenizer: Tokenizer, maxBatchSize: Int = 8, queueCapacity: Int = 32,
                prefillChunk: Int = 128, pool: ComputePool = .allCores) {
        self.model = model
        self.tokenizer = tokenizer
        self.maxBatchSize = max(1, maxBatchSize)
        self.queueCapacity = max(0, queueCapacity)
        self.prefillChunk = max(1, prefillChunk)
        self.pool = pool
        buffers = model.makeBatchBuffers()
        // The thread keeps a strong reference until `shutdown()` ends it. An
        // unowned reference crashed when the scheduler was released before
        // the thread had started.
        let thread = Thread { self.run() }
        thread.name = "lora-moe scheduler"
        self.thread = thread
        thread.start()
    }

    /// Jobs running now and jobs waiting for a slot.
    public var load: (active: Int, queued: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (active.count, pending.count)
    }

    /// Validates and queues a job. `onEvent` is called on the scheduler
    /// thread and must return quickly.
    public func submit(_ job: BatchJob, onEvent: @escaping @Sendable (BatchEvent) -> Void) throws -> BatchJobHandle {
        let request = job.request
        try request.sampling.validate()
        guard request.maxTokens >= 0 else {
            throw GenerationError.invalidParameter(name: "max_tokens", value: "\(request.maxTokens)", expected: "an integer >= 0")
        }
        guard !request.promptTokens.isEmpty else {
            throw GenerationError.emptyPrompt(hint: "give at least one token of prompt")
        }
        let contextLength = min(job.contextLength ?? model.config.maxPositionEmbeddings, model.config.maxPositionEmbeddings)
        guard request.promptTokens.count <= contextLength else {
            throw GenerationError.promptTooLong(tokens: request.promptTokens.count, contextLength: contextLength)
        }
        for token in request.promptTokens where token < 0 || token >= model.config.vocabSize {
            throw ModelError.tokenOutOfRange(token: token, vocabularySize: model.config.vocabSize)
        }

        let handle = BatchJobHandle()
        let entry = Job(job: job, handle: handle, onEvent: onEvent, model: model, tokenizer: tokenizer)
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { throw SchedulerError.shuttingDown }
        // Jobs beyond the free batch slots wait; the queue holds queueCapacity of them.
        let freeSlots = max(0, maxBatchSize - active.count)
        guard pending.count < freeSlots + queueCapacity else {
            throw SchedulerError.queueFull(capacity: queueCapacity)
        }
        pending.append(entry)
        condition.signal()
        return handle
    }

    /// Stops accepting jobs, cancels the queued and running ones, and waits
    /// for the scheduler thread to end.
    public func shutdown() {
        condition.lock()
        let alreadyStopping = stopping
        stopping = true
        condition.signal()
        condition.unlock()
        guard !alreadyStopping else { return }
        finishedThread.lock()
        while !threadDone { finishedThread.wait() }
        finishedThread.unlock()
    }

    private func run() {
        while let admitted = nextWork() {
            active += admitted
            iterate()
        }
        for job in active { job.onEvent(.failed("cancelled: the server is shutting down")) }
        active = []
        finishedThread.lock()
        threadDone = true
        finishedThread.broadcast()
        finishedThread.unlock()
    }

    /// Waits until there is work, then takes queued jobs into free slots.
    /// Returns nil when the scheduler stops.
    private func nextWork() -> [Job]? {
        condition.lock()
        defer { condition.unlock() }
        while pending.isEmpty && active.isEmpty && !stopping {
            condition.wait()
        }
        if stopping {
            for job in pending { job.onEvent(.failed("cancelled: the server is shutting down")) }
            pending = []
            return nil
        }
        let count = min(pending.count, maxBatchSize - active.count)
        let admitted = Array(pending.prefix(count))
        pending.removeFirst(count)
        return admitted
    }

    /// One batched forward pass over every active job, then sampling.
    private func iterate() {
        active.removeAll { job in
            guard job.handle.isCancelled else { return false }
            job.onEvent(.failed("cancelled"))
            return true
        }
        guard !active.isEmpty else { return }

        var entries: [BatchEntry] = []
        var fed: [Int] = []
        for job in active {
            let tokens: [Int]
            if job.isPrefilling {
                let prompt = job.job.request.promptTokens
                tokens = Array(prompt[job.prefilled..<min(prompt.count, job.prefilled + prefillChunk)])
                if job.prefillStart == nil { job.prefillStart = Date() }
            } else if let next = job.nextToken {
                tokens = [next]
            } else {
                continue
            }
            entries.append(BatchEntry(tokens: tokens, state: job.state, delta: job.job.source.deltaForStep()))
            fed.append(tokens.count)
        }

        let logits: [Float]
        do {
            logits = try model.forward(batch: entries, buffers: buffers, pool: pool)
        } catch {
            for job in active { job.onEvent(.failed("\(error)")) }
            active = []
            return
        }

        let vocab = model.config.vocabSize
        var finished: [ObjectIdentifier] = []
        for (index, job) in active.enumerated() {
            if job.isPrefilling {
                job.prefilled += fed[index]
                if job.isPrefilling { continue }
                job.statistics.promptSeconds = Date().timeIntervalSince(job.prefillStart ?? Date())
                job.decodeStart = Date()
            }
            let row = Array(logits[(index * vocab)..<((index + 1) * vocab)])
            let (text, next) = job.decoder.step(logits: row)
            if !text.isEmpty { job.onEvent(.text(text)) }
            job.nextToken = next
            if next != nil, job.state.count >= job.state.contextLength {
                let rest = job.decoder.finish(.length)
                if !rest.isEmpty { job.onEvent(.text(rest)) }
                job.nextToken = nil
            }
            if job.decoder.finishReason == .error {
                job.onEvent(.failed(GenerationError.nonFiniteLogits(position: job.state.count).description))
                finished.append(ObjectIdentifier(job))
                continue
            }
            if job.nextToken == nil {
                job.statistics.generatedTokens = job.decoder.generated.count
                job.statistics.generationSeconds = Date().timeIntervalSince(job.decodeStart ?? Date())
                job.onEvent(.finished(GenerationResult(
                    text: job.decoder.text, tokens: job.decoder.generated,
                    finishReason: job.decoder.finishReason ?? .length, statistics: job.statistics)))
                finished.append(ObjectIdentifier(job))
            }
        }
        active.removeAll { finished.contains(ObjectIdentifier($0)) }
    }
}
