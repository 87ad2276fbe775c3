/// Per-sequence run state: the key/value cache of every layer and the
/// activation buffers of a forward pass. Not thread-safe; one per sequence.
public final class ModelState {
    public let config: ModelConfig
    /// Largest number of positions this state accepts.
    public let contextLength: Int
    /// Positions already in the cache; the next token goes at this position.
    public private(set) var count = 0

    private(set) var capacity = 0
    private(set) var keys: [UnsafeMutablePointer<Float>] = []    // per layer [capacity, kvHeads * headDim]
    private(set) var values: [UnsafeMutablePointer<Float>] = []  // per layer [capacity, kvHeads * headDim]
    let buffers: ActivationBuffers

    init(config: ModelConfig, contextLength: Int) {
        self.config = config
        self.contextLength = contextLength
        buffers = ActivationBuffers(config: config)
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
    }

    /// Forgets every position at or after `length`, keeping the prefix.
    public func truncate(to length: Int) {
        precondition(length >= 0 && length <= count, "ModelState.truncate: \(length) outside 0...\(count)")
        count = length
    }

    /// Forgets all positions.
    public func reset() {
        count = 0
    }

    /// Grows the cache so that `needed` positions fit; doubles to amortize copies.
    func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        let newCapacity = min(contextLength, max(needed, capacity * 2, 64))
        let width = config.keyValueWidth
        for layer in 0..<config.numHiddenLayers {
            let newKeys = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * width)
            let newValues = UnsafeMutablePointer<Float>.allocate(capacity: newCapacity * width)
            if capacity > 0 {
                newKeys.update(from: keys[layer], count: count * width)
                newValues.update(from: values[layer], count: count * width)
                keys[layer].deallocate()
                values[layer].deallocate()
                keys[layer] = newKeys
                values[layer] = newValues
            } else {
                keys.append(newKeys)
                values.append(newValues)
            }
        }
        capacity = newCapacity
    }

    func advance(by rows: Int) {
        count += rows
    }
}

/// Scratch activations for up to `rows` tokens at once, grown on demand.
final class ActivationBuffers {
    let config: ModelConfig
    private(set) var rows = 0
    private(set) var hidden: UnsafeMutablePointer<Float>        // [rows, hidden] residual stream
    private(set) var normed: UnsafeMutablePointer<Float>        // [rows, max(hidden, queryWidth)]
    private(set) var query: UnsafeMutablePointer<Float>         // [rows, heads * headDim]
    private(set) var key: UnsafeMutablePointer<Float>           // [rows, kvHeads * headDim]
    private(set) var value: UnsafeMutablePointer<Float>         // [rows, kvHeads * headDim]
    private(set) var attention: UnsafeMutablePointer<Float>     // [rows, heads * headDim]
    private(set) var projected: UnsafeMutablePointer<Float>     // [rows, hidden]
    private(set) var gate: UnsafeMutablePointer<Float>          // [rows, intermediate]
    private(set) var up: UnsafeMutablePointer<Float>            // [rows, intermediate]

    init(config: ModelConfig) {
        self.config = config
        hidden = .allocate(capacity: 0)
        normed = .allocate(capacity: 0)
        query = .allocate(capacity: 0)
        key = .allocate(capacity: 0)
        value = .allocate(capacity: 0)
        attention = .allocate(capacity: 0)
        projected = .allocate(capacity: 0)
        gate = .allocate(capacity: 0)
        up = .allocate(capacity: 0)
    }

    deinit {
        [hidden, normed, query, key, value, attention, projected, gate, up].forEach { $0.deallocate() }
    }

    func reserve(rows needed: Int) {
        guard needed > rows else { return }
        [hidden, normed, query, key, value, attention, projected, gate, up].forEach { $0.deallocate() }
        let c = config
        hidden = .allocate(capacity: needed * c.hiddenSize)
        normed = .allocate(capacity: needed * max(c.hiddenSize, c.queryWidth))
        query = .allocate(capacity: needed * c.queryWidth)
        key = .allocate(capacity: needed * c.keyValueWidth)
        value = .allocate(capacity: needed * c.keyValueWidth)
        attention = .allocate(capacity: needed * c.queryWidth)
        projected = .allocate(capacity: needed * c.hiddenSize)
        gate = .allocate(capacity: needed * c.intermediateSize)
        up = .allocate(capacity: needed * c.intermediateSize)
        rows = needed
    }
}
