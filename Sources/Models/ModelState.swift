import Tensor

/// Element type of the key/value cache.
public enum KVCacheType: String, Sendable, CaseIterable {
    case f32
    /// Half the memory; keys and values are rounded to binary16 when stored.
    case f16
}

/// Per-sequence run state: the key/value cache of every layer and the
/// activation buffers of a forward pass. Not thread-safe; one per sequence.
public final class ModelState {
    public let config: ModelConfig
    /// Largest number of positions this state accepts.
    public let contextLength: Int
    public let cacheType: KVCacheType
    /// Positions already in the cache; the next token goes at this position.
    public private(set) var count = 0

    private(set) var capacity = 0
    private(set) var keys: [UnsafeMutableRawPointer] = []    // per layer [capacity, kvHeads * headDim] of cacheType
    private(set) var values: [UnsafeMutableRawPointer] = []  // per layer [capacity, kvHeads * headDim] of cacheType
    let buffers: ActivationBuffers

    init(config: ModelConfig, contextLength: Int, cacheType: KVCacheType) {
        self.config = config
        self.contextLength = contextLength
        self.cacheType = cacheType
        buffers = ActivationBuffers(config: config)
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
    }

    /// Bytes of one cached element.
    var elementSize: Int { cacheType == .f32 ? 4 : 2 }

    /// Bytes the cache holds now (allocated capacity, keys and values).
    public var cacheByteCount: Int { 2 * capacity * config.keyValueWidth * elementSize * config.numHiddenLayers }

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
        let rowBytes = config.keyValueWidth * elementSize
        for layer in 0..<config.numHiddenLayers {
            let newKeys = UnsafeMutableRawPointer.allocate(byteCount: newCapacity * rowBytes, alignment: 64)
            let newValues = UnsafeMutableRawPointer.allocate(byteCount: newCapacity * rowBytes, alignment: 64)
            if capacity > 0 {
                newKeys.copyMemory(from: keys[layer], byteCount: count * rowBytes)
                newValues.copyMemory(from: values[layer], byteCount: count * rowBytes)
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

    /// Stores `rows` key and value rows of `layer` at `position`.
    func store(layer: Int, position: Int, keys source: UnsafePointer<Float>, values valueSource: UnsafePointer<Float>, rows: Int) {
        let width = config.keyValueWidth
        switch cacheType {
        case .f32:
            (keys[layer].assumingMemoryBound(to: Float.self) + position * width).update(from: source, count: rows * width)
            (values[layer].assumingMemoryBound(to: Float.self) + position * width).update(from: valueSource, count: rows * width)
        case .f16:
            Kernels.convertToFloat16(source, count: rows * width, into: keys[layer].assumingMemoryBound(to: UInt16.self) + position * width)
            Kernels.convertToFloat16(valueSource, count: rows * width, into: values[layer].assumingMemoryBound(to: UInt16.self) + position * width)
        }
    }

    /// Attention of `rows` queries over this layer's cache.
    func attend(layer: Int, queries: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, shape: AttentionShape, pool: ComputePool) {
        switch cacheType {
        case .f32:
            Kernels.attention(queries: queries, keys: keys[layer].assumingMemoryBound(to: Float.self),
                              values: values[layer].assumingMemoryBound(to: Float.self), output: output, shape: shape, pool: pool)
        case .f16:
            Kernels.attention(queries: queries, float16Keys: keys[layer].assumingMemoryBound(to: UInt16.self),
                              float16Values: values[layer].assumingMemoryBound(to: UInt16.self), output: output, shape: shape, pool: pool)
        }
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
