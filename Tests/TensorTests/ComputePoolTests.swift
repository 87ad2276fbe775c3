import Foundation
import Synchronization
import Testing
import Tensor

struct ComputePoolTests {
    /// Counts how often each index was visited.
    final class VisitCounts: Sendable {
        let counts: Mutex<[Int]>
        init(_ count: Int) { counts = Mutex([Int](repeating: 0, count: count)) }
        func visit(_ index: Int) { counts.withLock { $0[index] += 1 } }
        var allOnce: Bool { counts.withLock { $0.allSatisfy { $0 == 1 } } }
    }

    @Test func tasksCoverRangeOnce() {
        for count in [0, 1, 2, 3, 7, 64, 1000] {
            for threads in [1, 2, 3, 4] {
                let visits = VisitCounts(count)
                ComputePool(threadCount: threads).forEachTask(count: count) { visits.visit($0) }
                #expect(visits.allOnce, "count \(count) threads \(threads)")
            }
        }
    }

    @Test func chunksRespectAlignmentAndMinimum() {
        for count in [1, 5, 16, 17, 100, 1001] {
            for threads in [1, 2, 3] {
                let visits = VisitCounts(count)
                let ranges = Mutex<[Range<Int>]>([])
                ComputePool(threadCount: threads).forEachChunk(count: count, alignment: 4, minimumChunk: 8) { range in
                    for i in range { visits.visit(i) }
                    ranges.withLock { $0.append(range) }
                }
                #expect(visits.allOnce, "count \(count) threads \(threads)")
                let all = ranges.withLock { $0 }
                #expect(all.count <= threads)
                for range in all {
                    #expect(range.lowerBound % 4 == 0, "range \(range)")
                    #expect(range.count >= min(8, count) || range.upperBound == count, "range \(range)")
                }
            }
        }
    }

    @Test func moreTasksThanOneBatch() {
        // Above the 2^20 - 1 tasks that one published loop can hold.
        let count = (1 << 20) + 5
        let visits = VisitCounts(count)
        ComputePool(threadCount: 2).forEachTask(count: count) { visits.visit($0) }
        #expect(visits.allOnce)
    }

    @Test func nestedLoopsRunInline() {
        let pool = ComputePool(threadCount: 2)
        let visits = VisitCounts(8 * 50)
        pool.forEachTask(count: 8) { outer in
            pool.forEachTask(count: 50) { inner in visits.visit(outer * 50 + inner) }
        }
        #expect(visits.allOnce)
    }

    /// Four threads share one pool; each loop must still see every task once.
    @Test func concurrentCallersDoNotInterfere() async {
        let pool = ComputePool(threadCount: 2)
        let failures = VisitCounts(1)
        await withTaskGroup(of: Void.self) { group in
            for caller in 0..<4 {
                group.addTask {
                    for iteration in 0..<300 {
                        let count = 1 + (caller * 37 + iteration * 11) % 97
                        let visits = VisitCounts(count)
                        pool.forEachTask(count: count) { visits.visit($0) }
                        if !visits.allOnce { failures.visit(0) }
                    }
                }
            }
        }
        let failureCount = failures.counts.withLock { $0[0] }
        #expect(failureCount == 0)
    }

    /// Results written by helper threads are visible to the caller after the loop.
    @Test func writesAreVisibleAfterLoop() {
        let pool = ComputePool(threadCount: 3)
        let buffer = UnsafeMutablePointer<Int>.allocate(capacity: 4096)
        defer { buffer.deallocate() }
        let pointer = SendablePointer(buffer)
        for round in 0..<200 {
            pool.forEachChunk(count: 4096) { range in
                for i in range { pointer.pointer[i] = i + round }
            }
            #expect((0..<4096).allSatisfy { buffer[$0] == $0 + round }, "round \(round)")
        }
    }


    /// Two tasks that each sleep 100 ms finish in well under 200 ms only if
    /// a helper thread runs one of them alongside the caller. The pool has
    /// a thread count no other test uses, so no concurrent test has its
    /// helpers. (A loop that finds them busy runs on its caller alone.)
    @Test func helperRunsTasksInParallel() {
        let pool = ComputePool(threadCount: 6)
        let start = DispatchTime.now().uptimeNanoseconds
        pool.forEachTask(count: 2) { _ in usleep(100_000) }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        #expect(elapsed < 180, "elapsed \(elapsed) ms")
    }
}
