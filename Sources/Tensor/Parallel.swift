import CKernels
import Foundation
import Synchronization

/// Splits work over a fixed number of threads: the calling thread plus
/// `threadCount - 1` persistent helper threads.
///
/// Pools with the same `threadCount` share one set of helper threads, created
/// on first use and kept for the life of the process. After each parallel
/// loop a helper spins briefly and then yields the core between checks, for
/// about `WorkerTeam.spinNanoseconds` in all. So the next loop usually starts
/// without a wake-up. After that the helper blocks on a condition variable.
///
/// Several threads may use the same pool at once. One parallel loop runs on
/// the helpers at a time. A loop started while another has them (from
/// another thread, or nested inside a running task) runs entirely on its
/// calling thread. It never waits for the helpers, so nesting cannot deadlock.
public struct ComputePool: Sendable {
    /// Number of threads a parallel loop uses; at least 1.
    public let threadCount: Int
    let team: WorkerTeam?

    public init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
        team = self.threadCount > 1 ? WorkerTeam.shared(helperCount: self.threadCount - 1) : nil
    }

    /// One thread per active processor.
    public static var allCores: ComputePool {
        ComputePool(threadCount: ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Calls `body(task)` once for every task in `0..<count`. Threads claim
    /// tasks one at a time, so uneven tasks balance out. Use it for a few to a
    /// few thousand tasks of at least several microseconds each.
    public func forEachTask(count: Int, _ body: @Sendable (Int) -> Void) {
        guard count > 0 else { return }
        guard let team, count > 1 else {
            for task in 0..<count { body(task) }
            return
        }
        var start = 0
        while start < count {
            let batch = min(count - start, WorkerTeam.maximumTaskCount)
            let offset = start
            team.run(taskCount: batch) { body(offset + $0) }
            start += batch
        }
    }

    /// Calls `body(range)` on disjoint ranges that together cover `0..<count`.
    /// Range bounds are multiples of `alignment` (except the last upper bound),
    /// and no range is shorter than `minimumChunk` unless `count` is. At most
    /// `threadCount` ranges are made.
    public func forEachChunk(
        count: Int,
        alignment: Int = 1,
        minimumChunk: Int = 1,
        _ body: @Sendable (Range<Int>) -> Void
    ) {
        guard count > 0 else { return }
        let units = (count + alignment - 1) / alignment
        let minimumUnits = max(1, (minimumChunk + alignment - 1) / alignment)
        let chunkCount = max(1, min(threadCount, units / minimumUnits))
        if chunkCount == 1 {
            body(0..<count)
            return
        }
        forEachTask(count: chunkCount) { chunk in
            let lower = units * chunk / chunkCount * alignment
            let upper = min(count, units * (chunk + 1) / chunkCount * alignment)
            if lower < upper { body(lower..<upper) }
        }
    }

    /// Calls `body(i)` for every `i` in `0..<count`, spread over the threads.
    public func forEach(count: Int, _ body: @Sendable (Int) -> Void) {
        forEachChunk(count: count) { range in
            for i in range { body(i) }
        }
    }
}

/// A pointer that may be captured by a `@Sendable` closure.
///
/// SAFETY: the caller guarantees that concurrent users touch disjoint
/// elements, or only read.
public struct SendablePointer<Element>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Element>
    public init(_ pointer: UnsafeMutablePointer<Element>) { self.pointer = pointer }
    public init(_ pointer: UnsafePointer<Element>) { self.pointer = UnsafeMutablePointer(mutating: pointer) }
}

/// Helper threads that run the tasks of one parallel loop at a time together
/// with the thread that started it.
///
/// A loop is published in `state`: generation (bits 40...63), task count
/// (bits 20...39) and the next unclaimed task (bits 0...19). Every thread,
/// the caller included, claims tasks by compare-and-swap on `state`, so a
/// helper that wakes late finds nothing left and the caller never waits for
/// a task that no thread has started.
final class WorkerTeam: @unchecked Sendable {
    // SAFETY: `job` and `generation` are written only by the thread that has
    // acquired `busy`. That thread writes `job` before it publishes the
    // generation in `state` and clears it only after every task of that
    // generation has finished. A helper reads `job` only after claiming a task
    // of the current generation, so no read overlaps a write.

    static let maximumTaskCount = (1 << 20) - 1
    /// How long an idle helper waits for the next loop before it blocks, in nanoseconds.
    static let spinNanoseconds: UInt64 = 200_000
    /// Spins with only a pause instruction before a waiting thread starts
    /// calling `sched_yield` between checks (a few microseconds). Yielding
    /// lets a thread queued on the same core run. That matters when other
    /// processes keep both cores busy: there, pure spinning made two threads
    /// slower than one (kernel-bench, load average 8 on 2 cores).
    static let pureSpins = 2_000

    let helperCount: Int
    private let busy = Atomic<Bool>(false)
    private let state = Atomic<UInt64>(0)
    private let finished = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let condition = NSCondition()
    private var job: ((Int) -> Void)?
    private var generation: UInt64 = 0

    private static let teams = Mutex<[Int: WorkerTeam]>([:])

    /// The process-wide team with `helperCount` helper threads.
    static func shared(helperCount: Int) -> WorkerTeam {
        teams.withLock { teams in
            if let team = teams[helperCount] { return team }
            let team = WorkerTeam(helperCount: helperCount)
            teams[helperCount] = team
            return team
        }
    }

    private init(helperCount: Int) {
        self.helperCount = helperCount
        for index in 0..<helperCount {
            let thread = Thread { [self] in helperLoop() }
            thread.name = "ComputePool helper \(index + 1)/\(helperCount)"
            thread.start()
        }
    }

    /// Runs `body(task)` for every task in `0..<taskCount` (at most
    /// `maximumTaskCount`) on the helpers and the calling thread.
    func run(taskCount: Int, _ body: @Sendable (Int) -> Void) {
        precondition(taskCount <= Self.maximumTaskCount, "WorkerTeam.run: \(taskCount) tasks exceed \(Self.maximumTaskCount)")
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            // Another loop has the helpers (a nested call or another thread).
            for task in 0..<taskCount { body(task) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }

        withoutActuallyEscaping(body) { escapable in
            job = escapable
            finished.store(0, ordering: .relaxed)
            generation = (generation + 1) & 0xFF_FFFF
            state.store(generation << 40 | UInt64(taskCount) << 20, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                condition.lock()
                condition.broadcast()
                condition.unlock()
            }

            runClaimedTasks(generation: generation)

            var spins = 0
            while finished.load(ordering: .acquiring) < taskCount {
                spins += 1
                // After a short spin, yield: a helper inside a task may be
                // waiting for this core on a machine with more runnable
                // threads than cores.
                if spins > Self.pureSpins { sched_yield() } else { ck_cpu_relax() }
            }
            job = nil
        }
    }

    /// Claims and runs tasks of `generation` until none is left.
    private func runClaimedTasks(generation: UInt64) {
        var current = state.load(ordering: .acquiring)
        while current >> 40 == generation {
            let next = current & 0xF_FFFF
            let count = (current >> 20) & 0xF_FFFF
            guard next < count else { return }
            let (exchanged, original) = state.compareExchange(
                expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged {
                runTask(Int(next))
                finished.add(1, ordering: .releasing)
                current = state.load(ordering: .acquiring)
            } else {
                current = original
            }
        }
    }

    /// Runs one task. It is kept out of line so that the reference to `job`
    /// taken here is released before the task counts as finished, because
    /// `withoutActuallyEscaping` traps if the closure outlives `run`.
    @inline(never)
    private func runTask(_ task: Int) {
        job!(task)
    }

    private func helperLoop() {
        var seen: UInt64 = 0
        while true {
            seen = waitForGeneration(after: seen)
            runClaimedTasks(generation: seen)
        }
    }

    /// Returns the first published generation different from `seen`,
    /// spinning first and then blocking.
    private func waitForGeneration(after seen: UInt64) -> UInt64 {
        let deadline = DispatchTime.now().uptimeNanoseconds + Self.spinNanoseconds
        var spins = 0
        while true {
            let current = state.load(ordering: .acquiring) >> 40
            if current != seen { return current }
            spins += 1
            if spins > Self.pureSpins {
                if DispatchTime.now().uptimeNanoseconds > deadline { break }
                sched_yield()
            } else {
                ck_cpu_relax()
            }
        }

        // The caller stores `state` and then reads `sleepers`; this thread
        // increments `sleepers` and then reads `state`. Both sequentially
        // consistent. So either the caller reads a sleeper and broadcasts
        // under the lock, which this thread keeps until it waits, or this
        // thread reads the new generation and does not wait.
        condition.lock()
        sleepers.add(1, ordering: .sequentiallyConsistent)
        while state.load(ordering: .sequentiallyConsistent) >> 40 == seen {
            condition.wait()
        }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        condition.unlock()
        return state.load(ordering: .acquiring) >> 40
    }
}
