/// A candidate merge of the symbol at `position` with the symbol after it.
struct MergeCandidate {
    var rank: Int32
    var position: Int32
    var newID: Int32
}

/// A binary min-heap of merge candidates ordered by (rank, position): the
/// lowest-ranked merge first, and among equal ranks the leftmost, which is the
/// order the tokenizers library's BPE applies merges in.
struct MergeQueue {
    private var heap: [MergeCandidate] = []

    init(capacity: Int) {
        heap.reserveCapacity(capacity)
    }

    var isEmpty: Bool { heap.isEmpty }

    @inline(__always)
    private static func precedes(_ a: MergeCandidate, _ b: MergeCandidate) -> Bool {
        a.rank != b.rank ? a.rank < b.rank : a.position < b.position
    }

    mutating func push(_ candidate: MergeCandidate) {
        heap.append(candidate)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.precedes(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> MergeCandidate? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < heap.count && Self.precedes(heap[left], heap[smallest]) { smallest = left }
                if right < heap.count && Self.precedes(heap[right], heap[smallest]) { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}
