/// A compiled regular expression, run by a backtracking matcher that tries
/// alternatives left to right and quantifiers greedy-first, as Oniguruma does,
/// so the leftmost match it finds is the one Oniguruma finds.
///
/// Patterns that can match the empty string are rejected: the tokenizers
/// library's handling of empty matches is not reproduced.
struct TokenizerRegex: Sendable {
    private enum Instruction: Sendable {
        case scalar(UInt32)
        case set(Int)
        /// Try `preferred` first; on failure resume at `alternative` with the same position.
        case split(preferred: Int, alternative: Int)
        case jump(Int)
        /// Run the sub-program at `body`; continue with the next instruction when it
        /// matches (or, if `negated`, when it does not).
        case lookahead(body: Int, negated: Bool)
        case match
    }

    private let instructions: [Instruction]
    private let sets: [ScalarSet]
    let pattern: String

    private static let maximumInstructions = 100_000

    init(pattern: String) throws(RegexSyntaxError) {
        let root = try RegexParser.parse(pattern)
        if root.canMatchEmpty {
            throw RegexSyntaxError(message: "patterns that can match the empty string are not supported", offset: 0)
        }
        var compiler = Compiler()
        try compiler.emit(root)
        compiler.instructions.append(.match)
        self.instructions = compiler.instructions
        self.sets = compiler.sets
        self.pattern = pattern
    }

    private struct Compiler {
        var instructions: [Instruction] = []
        var sets: [ScalarSet] = []

        mutating func emit(_ node: RegexNode) throws(RegexSyntaxError) {
            if instructions.count > TokenizerRegex.maximumInstructions {
                throw RegexSyntaxError(message: "pattern is too large after expanding repetitions", offset: 0)
            }
            switch node {
            case let .set(set):
                if let literal = set.singleLiteral {
                    instructions.append(.scalar(literal))
                } else {
                    sets.append(set)
                    instructions.append(.set(sets.count - 1))
                }
            case let .sequence(items):
                for item in items { try emit(item) }
            case let .alternation(branches):
                // split(b1, next); b1; jump end; next: split(b2, next2); b2; jump end; ...; bN; end:
                var jumpsToEnd: [Int] = []
                for (index, branch) in branches.enumerated() {
                    if index < branches.count - 1 {
                        let split = instructions.count
                        instructions.append(.split(preferred: split + 1, alternative: -1))
                        try emit(branch)
                        jumpsToEnd.append(instructions.count)
                        instructions.append(.jump(-1))
                        instructions[split] = .split(preferred: split + 1, alternative: instructions.count)
                    } else {
                        try emit(branch)
                    }
                }
                for jump in jumpsToEnd { instructions[jump] = .jump(instructions.count) }
            case let .repetition(body, minimum, maximum, greedy):
                if body.canMatchEmpty && maximum == nil {
                    throw RegexSyntaxError(message: "unbounded repetition of an expression that can match the empty string is not supported", offset: 0)
                }
                for _ in 0..<minimum { try emit(body) }
                if let maximum {
                    // Each optional copy is entered only if the previous one matched.
                    var exits: [Int] = []
                    for _ in minimum..<maximum {
                        exits.append(instructions.count)
                        instructions.append(.split(preferred: -1, alternative: -1))
                        try emit(body)
                    }
                    let end = instructions.count
                    for exit in exits {
                        instructions[exit] = greedy
                            ? .split(preferred: exit + 1, alternative: end)
                            : .split(preferred: end, alternative: exit + 1)
                    }
                } else {
                    // loop: split(body, end); body; jump loop; end:
                    let loop = instructions.count
                    instructions.append(.split(preferred: -1, alternative: -1))
                    try emit(body)
                    instructions.append(.jump(loop))
                    let end = instructions.count
                    instructions[loop] = greedy
                        ? .split(preferred: loop + 1, alternative: end)
                        : .split(preferred: end, alternative: loop + 1)
                }
            case let .lookahead(body, negated):
                let start = instructions.count
                instructions.append(.lookahead(body: start + 2, negated: negated))
                instructions.append(.jump(-1))
                try emit(body)
                instructions.append(.match)
                instructions[start + 1] = .jump(instructions.count)
            }
        }
    }

    /// Returns the non-overlapping matches in `scalars`, leftmost first, as Oniguruma's
    /// search loop finds them. `properties[i]` is `ScalarProperties.mask(of:)` of `scalars[i]`.
    func matches(in scalars: UnsafeBufferPointer<UInt32>, properties: UnsafeBufferPointer<UInt64>) -> [Range<Int>] {
        precondition(scalars.count == properties.count)
        var result: [Range<Int>] = []
        var stack: [(pc: Int, position: Int)] = []
        var start = 0
        while start < scalars.count {
            if let end = run(from: 0, at: start, scalars: scalars, properties: properties, stack: &stack) {
                result.append(start..<end)
                start = end  // end > start because empty matches are rejected at compile time
            } else {
                start += 1
            }
        }
        return result
    }

    /// Returns the end of the first match of the program starting at `startPC`, anchored at `position`.
    private func run(
        from startPC: Int, at startPosition: Int,
        scalars: UnsafeBufferPointer<UInt32>, properties: UnsafeBufferPointer<UInt64>,
        stack: inout [(pc: Int, position: Int)]
    ) -> Int? {
        let base = stack.count
        defer { stack.removeSubrange(base...) }
        var pc = startPC
        var position = startPosition
        let count = scalars.count
        while true {
            var failed = false
            switch instructions[pc] {
            case let .scalar(value):
                if position < count && scalars[position] == value {
                    position += 1
                    pc += 1
                } else {
                    failed = true
                }
            case let .set(index):
                if position < count && sets[index].contains(scalars[position], properties: properties[position]) {
                    position += 1
                    pc += 1
                } else {
                    failed = true
                }
            case let .split(preferred, alternative):
                stack.append((alternative, position))
                pc = preferred
            case let .jump(target):
                pc = target
            case let .lookahead(body, negated):
                let found = run(from: body, at: position, scalars: scalars, properties: properties, stack: &stack) != nil
                if found != negated {
                    pc += 1
                } else {
                    failed = true
                }
            case .match:
                return position
            }
            if failed {
                guard stack.count > base, let top = stack.popLast() else { return nil }
                pc = top.pc
                position = top.position
            }
        }
    }
}
