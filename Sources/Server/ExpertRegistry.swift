import Adapters
import Foundation
import Models
import Routing
import Tensor

/// The experts a server has loaded, by name, with what requests use them.
///
/// Each load gets a new version. A request leases the adapters it starts
/// with and keeps them (and their version) until it ends, whatever is loaded
/// or unloaded meanwhile; unloading an expert waits until no request holds
/// it. The default blend (the weights set with `POST /v1/experts`) is read
/// once per decoding step, so a change reaches running default-blend
/// requests at their next token.
public final class ExpertRegistry: @unchecked Sendable {
    // SAFETY: every stored property below `lock` is read and written only
    // while holding `lock`.
    public let modelConfig: ModelConfig
    let stackType: DType
    /// Root for runtime loads; nil disables `load`.
    public let adapterDirectory: URL?

    public struct Expert: Sendable {
        public let name: String
        public let adapter: LoRAAdapter
        public let version: Int
    }

    /// What `GET /v1/experts` shows of one expert.
    public struct Info: Sendable {
        public let name: String
        public let path: String
        public let version: Int
        public let inFlight: Int
        public let defaultWeight: Double
    }

    private struct Entry {
        var expert: Expert
        var leases = 0
        var unloading = false
    }

    private let lock = NSCondition()
    private var order: [String] = []
    private var entries: [String: Entry] = [:]
    private var nextVersion = 1
    private var defaultWeights: [String: Double] = [:]
    private var defaultBlend: ExpertBlend?
    private var blendCache: [String: ExpertBlend] = [:]
    private var blendCacheOrder: [String] = []
    static let blendCacheSize = 16

    /// Names that cannot be expert names because the API gives them a meaning.
    static let reservedNames: Set<String> = ["base", "default"]

    /// `stackType` of the adapters `load` reads (see `LoRAAdapter.stackType`).
    public init(modelConfig: ModelConfig, experts: [LoRAAdapter], defaultWeights: [Double], adapterDirectory: URL?,
                stackType: DType = .f32) throws {
        self.modelConfig = modelConfig
        self.stackType = stackType
        self.adapterDirectory = adapterDirectory?.resolvingSymlinksInPath()
        for adapter in experts {
            try Self.checkName(adapter.name)
            order.append(adapter.name)
            entries[adapter.name] = Entry(expert: Expert(name: adapter.name, adapter: adapter, version: nextVersion))
            nextVersion += 1
        }
        for (adapter, weight) in zip(experts, defaultWeights) {
            self.defaultWeights[adapter.name] = weight
        }
        defaultBlend = try makeDefaultBlendLocked()
    }

    static func checkName(_ name: String) throws {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "_.-"))
        guard !name.isEmpty, name.unicodeScalars.allSatisfy({ allowed.contains($0) }), !reservedNames.contains(name) else {
            throw APIError.invalidRequest("invalid expert name '\(name)': use letters, digits, '_', '.' or '-', and not 'base' or 'default'", param: "name")
        }
    }

    // MARK: Listing and default weights

    public var names: [String] {
        lock.lock()
        defer { lock.unlock() }
        return order
    }

    public func list() -> [Info] {
        lock.lock()
        defer { lock.unlock() }
        return order.compactMap { name in
            entries[name].map {
                Info(name: name, path: $0.expert.adapter.directory.path, version: $0.expert.version,
                     inFlight: $0.leases, defaultWeight: defaultWeights[name] ?? 0)
            }
        }
    }

    /// Replaces the default weights of the named experts (others keep theirs).
    /// All names must be loaded; nothing changes if one is not.
    public func setDefaultWeights(_ weights: [(name: String, weight: Double)]) throws {
        lock.lock()
        defer { lock.unlock() }
        for (name, weight) in weights {
            guard entries[name] != nil else {
                throw APIError.notFound("expert '\(name)' is not loaded", param: "weights", code: "expert_not_found")
            }
            guard weight.isFinite, Float(weight).isFinite else {
                throw APIError.invalidRequest("weight of '\(name)' must be a finite number", param: "weights")
            }
        }
        var updated = defaultWeights
        for (name, weight) in weights { updated[name] = weight }
        let previous = defaultWeights
        defaultWeights = updated
        do {
            defaultBlend = try makeDefaultBlendLocked()
        } catch {
            defaultWeights = previous
            throw APIError.invalidRequest("\(error)", param: "weights")
        }
    }

    private func makeDefaultBlendLocked() throws -> ExpertBlend? {
        let active = order.compactMap { name -> (LoRAAdapter, Double)? in
            guard let entry = entries[name], !entry.unloading, let weight = defaultWeights[name], weight != 0 else { return nil }
            return (entry.expert.adapter, weight)
        }
        guard !active.isEmpty else { return nil }
        return try ExpertBlend(experts: active.map(\.0), weights: active.map(\.1))
    }

    /// The default blend as a per-step source.
    public var defaultSource: any DeltaSource { DefaultBlendSource(registry: self) }

    func currentDefaultBlend() -> ExpertBlend? {
        lock.lock()
        defer { lock.unlock() }
        return defaultBlend
    }

    /// The default weights of all loaded experts, in load order.
    public var defaultBlendSpec: BlendSpec {
        lock.lock()
        defer { lock.unlock() }
        return BlendSpec(terms: order.compactMap { name in
            guard let weight = defaultWeights[name], weight != 0 else { return nil }
            return (name, weight)
        })
    }

    // MARK: Leases

    /// The experts a request holds until it ends.
    public final class Lease: Sendable {
        public let experts: [Expert]
        private let release: @Sendable () -> Void

        init(experts: [Expert], release: @escaping @Sendable () -> Void) {
            self.experts = experts
            self.release = release
        }

        deinit { release() }
    }

    /// Leases the experts of `spec`, or throws 404 for an unknown name and
    /// 409 for one being unloaded.
    public func lease(_ names: [String], param: String) throws -> Lease {
        lock.lock()
        defer { lock.unlock() }
        var experts: [Expert] = []
        for name in names {
            guard let entry = entries[name] else {
                throw APIError.notFound("expert '\(name)' is not loaded (loaded: \(order.joined(separator: ", ")))", param: param, code: "model_not_found")
            }
            guard !entry.unloading else {
                throw APIError.conflict("expert '\(name)' is being unloaded", param: param)
            }
            experts.append(entry.expert)
        }
        for name in names { entries[name]?.leases += 1 }
        return Lease(experts: experts) { [weak self] in self?.releaseLease(names) }
    }

    private func releaseLease(_ names: [String]) {
        lock.lock()
        for name in names {
            if let leases = entries[name]?.leases { entries[name]?.leases = max(0, leases - 1) }
        }
        lock.broadcast()
        lock.unlock()
    }

    /// A blend of leased experts, built once per distinct blend and expert
    /// versions and then shared.
    public func blend(for lease: Lease, weights: [Double]) throws -> ExpertBlend? {
        guard !lease.experts.isEmpty else { return nil }
        let key = zip(lease.experts, weights).map { "\($0.name)@\($0.version):\($1)" }.joined(separator: "+")
        lock.lock()
        if let cached = blendCache[key] {
            lock.unlock()
            return cached
        }
        lock.unlock()
        let blend = try ExpertBlend(experts: lease.experts.map(\.adapter), weights: weights)
        lock.lock()
        defer { lock.unlock() }
        blendCache[key] = blend
        blendCacheOrder.append(key)
        if blendCacheOrder.count > Self.blendCacheSize {
            blendCache.removeValue(forKey: blendCacheOrder.removeFirst())
        }
        return blend
    }

    // MARK: Loading and unloading

    /// Loads the adapter at `path` (relative to the adapter directory, or an
    /// absolute path inside it) under `name`.
    public func load(name: String, path: String) throws -> Info {
        try Self.checkName(name)
        guard let root = adapterDirectory else {
            throw APIError(status: 403, type: "permission_error", message: "runtime loading is disabled; start the server with --adapter-dir DIR", param: "path")
        }
        let directory = try Self.confine(path, to: root)
        lock.lock()
        let taken = entries[name] != nil
        lock.unlock()
        if taken {
            throw APIError.conflict("an expert named '\(name)' is already loaded; unload it first", param: "name")
        }

        let adapter: LoRAAdapter
        do {
            adapter = try LoRAAdapter(directory: directory, name: name, modelConfig: modelConfig, stackType: stackType)
        } catch {
            throw APIError.invalidRequest("cannot load '\(path)': \(error)", param: "path")
        }

        lock.lock()
        defer { lock.unlock() }
        guard entries[name] == nil else {
            throw APIError.conflict("an expert named '\(name)' is already loaded; unload it first", param: "name")
        }
        let expert = Expert(name: name, adapter: adapter, version: nextVersion)
        nextVersion += 1
        entries[name] = Entry(expert: expert)
        order.append(name)
        return Info(name: name, path: directory.path, version: expert.version, inFlight: 0, defaultWeight: 0)
    }

    /// Resolves `path` under `root`, rejecting `..`, absolute paths outside
    /// it and symbolic links that lead out of it, the directory's own or
    /// those of the two files a PEFT adapter is read from.
    static func confine(_ path: String, to root: URL) throws -> URL {
        let reject = { (reason: String) in
            APIError(status: 403, type: "permission_error", message: "path '\(path)' \(reason); adapters load only from inside the adapter directory", param: "path")
        }
        guard !path.isEmpty else { throw APIError.invalidRequest("'path' must not be empty", param: "path") }
        guard !path.split(separator: "/").contains("..") else { throw reject("contains '..'") }
        let candidate = path.hasPrefix("/") ? URL(fileURLWithPath: path) : root.appendingPathComponent(path)
        let resolved = candidate.resolvingSymlinksInPath().standardizedFileURL
        let rootPath = root.standardizedFileURL.path
        guard resolved.path == rootPath || resolved.path.hasPrefix(rootPath + "/") else {
            throw reject(path.hasPrefix("/") ? "is outside the adapter directory" : "leads outside the adapter directory")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw APIError.notFound("adapter directory '\(path)' not found in the adapter directory", param: "path")
        }
        for file in ["adapter_config.json", "adapter_model.safetensors"] {
            let target = resolved.appendingPathComponent(file).resolvingSymlinksInPath().standardizedFileURL
            guard target.path.hasPrefix(rootPath + "/") else {
                throw reject("has \(file) linking outside the adapter directory")
            }
        }
        return resolved
    }

    /// Unloads `name` once no request holds it. New requests for it fail
    /// at once; if requests still hold it after `timeout` seconds, the
    /// expert stays loaded and this throws 409.
    public func unload(name: String, timeout: Double) throws {
        lock.lock()
        defer { lock.unlock() }
        guard let entry = entries[name] else {
            throw APIError.notFound("expert '\(name)' is not loaded", param: "name", code: "expert_not_found")
        }
        guard !entry.unloading else {
            throw APIError.conflict("expert '\(name)' is already being unloaded", param: "name")
        }
        entries[name]?.unloading = true
        defaultBlend = try? makeDefaultBlendLocked()
        let deadline = Date().addingTimeInterval(timeout)
        while (entries[name]?.leases ?? 0) > 0 {
            if !lock.wait(until: deadline) { break }
        }
        if let leases = entries[name]?.leases, leases > 0 {
            entries[name]?.unloading = false
            defaultBlend = try? makeDefaultBlendLocked()
            throw APIError.conflict("expert '\(name)' is still used by \(leases) request(s) after \(Int(timeout)) s; try again later", param: "name")
        }
        entries.removeValue(forKey: name)
        order.removeAll { $0 == name }
        defaultWeights.removeValue(forKey: name)
        blendCache = blendCache.filter { !$0.key.split(separator: "+").contains { $0.hasPrefix("\(name)@") } }
        blendCacheOrder.removeAll { blendCache[$0] == nil }
        defaultBlend = try? makeDefaultBlendLocked()
    }
}

/// The registry's default blend, asked once per decoding step.
struct DefaultBlendSource: DeltaSource {
    let registry: ExpertRegistry

    func deltaForStep() -> (any ProjectionDelta)? {
        registry.currentDefaultBlend()
    }
}
