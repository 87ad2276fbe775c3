import Dispatch
import Foundation

/// Splits work over a fixed number of threads.
///
/// NOTE: each call goes through `DispatchQueue.concurrentPerform`, which was
/// measured to cost about 20% on small matrix-vector products at 2 threads
/// compared with a persistent worker pool.
public struct ComputePool: Sendable {
    /// Number of threads a parallel loop uses; at least 1.
    public let threadCount: Int

    public init(threadCount: Int) {
        self.threadCount = max(1, threadCount)
    }

    /// One thread per active processor.
    public static var allCores: ComputePool {
        ComputePool(threadCount: ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Calls `body(range)` on disjoint ranges that together cover `0..<count`.
    /// Range bounds are multiples of `alignment` (except the last upper bound),
    /// and no range is shorter than `minimumChunk` unless `count` is.
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
        DispatchQueue.concurrentPerform(iterations: chunkCount) { chunk in
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
