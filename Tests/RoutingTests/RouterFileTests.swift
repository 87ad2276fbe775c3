import Adapters
import Foundation
import Models
import Routing
import SafeTensors
import Testing
import TestSupport

/// Returns the error's case and JSON key, so tables can name the expected failure.
func routerFileErrorKind(_ error: any Error) -> (kind: String, key: String)? {
    guard let error = error as? RouterFileError else { return nil }
    switch error {
    case let .cannotRead(file, _): return ("cannotRead", file)
    case let .cannotWrite(file, _): return ("cannotWrite", file)
    case .invalidJSON: return ("invalidJSON", "")
    case let .missingKey(_, key): return ("missingKey", key)
    case let .unknownKey(_, key): return ("unknownKey", key)
    case let .invalidValue(_, key, _, _): return ("invalidValue", key)
    case let .modelMismatch(_, key, _, _, _): return ("modelMismatch", key)
    case .expertCountMismatch: return ("expertCountMismatch", "experts")
    case let .expertMismatch(_, key, _, _, _): return ("expertMismatch", key)
    }
}

/// Runs `body` and returns the error it throws, or nil.
func thrownError(_ body: () throws -> Void) -> (any Error)? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

struct FingerprintTests {
    /// Reference values of 64-bit FNV-1a.
    @Test func fnv1aKnownValues() {
        let cases: [(String, UInt64)] = [
            ("", 0xcbf2_9ce4_8422_2325),
            ("a", 0xaf63_dc4c_8601_ec8c),
            ("foobar", 0x8594_4171_f739_67e8),
        ]
        for (text, expected) in cases {
            var hash = FNV1a64()
            hash.combine(Data(text.utf8))
            #expect(hash.value == expected, "\(text)")
        }
        var hash = FNV1a64()
        hash.combine(Data("a".utf8))
        #expect(hash.fingerprint == "fnv1a64:af63dc4c8601ec8c")
        #expect(FNV1a64().fingerprint == "fnv1a64:cbf29ce484222325")
    }

    @Test func stringsAreSeparated() {
        var first = FNV1a64()
        first.combine("ab")
        first.combine("c")
        var second = FNV1a64()
        second.combine("a")
        second.combine("bc")
        #expect(first.value != second.value)
    }

    @Test func modelFingerprintTracksConfigAndWeights() throws {
        let scratch = try RouterScratchDirectory()
        let original = TinyFixtures.modelURL("qwen3-f32")
        let fingerprint = try RouterFingerprint.model(directory: original)
        #expect(try RouterFingerprint.model(directory: original) == fingerprint)
        #expect(try RouterFingerprint.model(directory: TinyFixtures.modelURL("llama-f16")) != fingerprint)

        let copy = try scratch.copy(original, as: "copy")
        #expect(try RouterFingerprint.model(directory: copy) == fingerprint)

        let changedConfig = try scratch.copy(original, as: "config")
        let configURL = changedConfig.appendingPathComponent("config.json")
        try (try Data(contentsOf: configURL) + Data(" ".utf8)).write(to: configURL)
        #expect(try RouterFingerprint.model(directory: changedConfig) != fingerprint)

        let changedWeights = try scratch.copy(original, as: "weights")
        try flipFirstWeightByte(changedWeights.appendingPathComponent("model.safetensors"))
        #expect(try RouterFingerprint.model(directory: changedWeights) != fingerprint)
    }

    @Test func adapterFingerprintTracksBothFiles() throws {
        let scratch = try RouterScratchDirectory()
        let original = TinyFixtures.adapterURL("basic")
        let fingerprint = try RouterFingerprint.adapter(directory: original)
        #expect(try RouterFingerprint.adapter(directory: scratch.copy(original, as: "copy")) == fingerprint)
        #expect(try RouterFingerprint.adapter(directory: TinyFixtures.adapterURL("all-seven")) != fingerprint)
        let changed = try scratch.copy(original, as: "changed")
        let weights = changed.appendingPathComponent("adapter_model.safetensors")
        var bytes = try Data(contentsOf: weights)
        bytes[bytes.count - 1] ^= 1
        try bytes.write(to: weights)
        #expect(try RouterFingerprint.adapter(directory: changed) != fingerprint)
        #expect(throws: SafeTensorsError.self) { try RouterFingerprint.adapter(directory: scratch.url) }
    }
}

/// Flips one bit of the first byte of tensor data in a safetensors file.
func flipFirstWeightByte(_ url: URL) throws {
    var bytes = try Data(contentsOf: url)
    let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    bytes[8 + headerLength] ^= 1
    try bytes.write(to: url)
}

struct RouterFileTests {
    let model: LanguageModel
    let experts: [LoRAAdapter]

    init() throws {
        model = try RouterTestSupport.model()
        experts = try RouterTestSupport.experts(model)
    }

    func fit(_ kind: RouterFile.Kind, selection: ExpertSelection = ExpertSelection()) throws -> RouterFile {
        try RouterFitting.fit(
            model: model, experts: experts, examples: RouterTestSupport.examples(),
            options: RouterFitOptions(kind: kind, layer: 2, selection: selection)).file
    }

    @Test func encoderFileRoundTrips() throws {
        let scratch = try RouterScratchDirectory()
        let file = try fit(.encoder, selection: ExpertSelection(topK: 2, minWeight: 0.05, renormalize: false))
        #expect(file.kind == .encoder)
        #expect(file.layer == 2)
        #expect(file.temperature == RouterFitting.defaultEncoderTemperature)
        #expect(file.model.name == "qwen3-f32")
        #expect(file.model.hiddenSize == 64)
        #expect(file.experts.map(\.exampleCount) == [8, 8, 8])
        let url = scratch.file("router.json")
        try file.write(to: url)
        #expect(try RouterFile.load(url) == file)
        #expect(!FileManager.default.fileExists(atPath: scratch.file("router.gate.safetensors").path))

        let text = try String(contentsOf: url, encoding: .utf8)
        #expect(text.hasPrefix("{\n  \"format\": \"lora-moe-router\",\n  \"version\": 1,\n  \"kind\": \"encoder\""))
        #expect(text.contains("\"top_k\": 2"))
        #expect(text.contains("\"renormalize\": false"))
    }

    @Test func gateFileRoundTrips() throws {
        let scratch = try RouterScratchDirectory()
        let file = try fit(.gate)
        #expect(file.kind == .gate)
        #expect(file.center == nil)
        #expect(file.experts.allSatisfy { $0.prototype == nil })
        #expect(file.temperature == RouterFitting.defaultGateTemperature)
        let url = scratch.file("my-router.json")
        try file.write(to: url)
        #expect(try RouterFile.load(url) == file)

        let gateURL = scratch.file("my-router.gate.safetensors")
        let tensors = try SafeTensorsFile(path: gateURL.path)
        #expect(tensors.tensorNames == ["gate.bias", "gate.weight"])
        #expect(tensors.shape(of: "gate.weight") == [3, 64])
        #expect(tensors.shape(of: "gate.bias") == [3])
        #expect(try tensors.tensor(named: "gate.weight").toFloatArray() == file.gate?.weight)
        let text = try String(contentsOf: url, encoding: .utf8)
        #expect(text.contains("\"gate\": {\"file\": \"my-router.gate.safetensors\", \"fingerprint\": \"fnv1a64:"))
    }

    @Test func gateFileName() {
        #expect(RouterFile.gateFileName(for: URL(fileURLWithPath: "/a/router.json")) == "router.gate.safetensors")
        #expect(RouterFile.gateFileName(for: URL(fileURLWithPath: "/a/router")) == "router.gate.safetensors")
        #expect(RouterFile.gateFileName(for: URL(fileURLWithPath: "/a/r.v2.json")) == "r.v2.gate.safetensors")
    }

    @Test func loadedRouterRoutesLikeTheFittedOne() throws {
        let scratch = try RouterScratchDirectory()
        for kind in RouterFile.Kind.allCases {
            let file = try fit(kind)
            let url = scratch.file("\(kind.rawValue).json")
            try file.write(to: url)
            let router = try RouterFile.loadRouter(from: url, model: model, experts: experts)
            let context = RoutingContext(model: model, routingTokens: [45, 50, 140, 230, 231])
            let decision = try router.route(context)
            #expect(decision.router == kind.rawValue)
            let direct = try file.makeRouter(model: model, experts: experts).route(context)
            #expect(decision.weights == direct.weights)
            #expect(decision.scores == direct.scores)
        }
    }

    @Test func overridesReplaceFileSettings() throws {
        let scratch = try RouterScratchDirectory()
        let url = scratch.file("router.json")
        try fit(.encoder).write(to: url)
        let overrides = RouterOverrides(temperature: 5, topK: .some(1), minWeight: 0.01, renormalize: false)
        let router = try #require(try RouterFile.loadRouter(from: url, model: model, experts: experts, overrides: overrides) as? EncoderRouter)
        #expect(router.temperature == 5)
        #expect(router.selection == ExpertSelection(topK: 1, minWeight: 0.01, renormalize: false))
        let weights = try #require(try router.route(RoutingContext(model: model, routingTokens: [45, 50])).weights)
        #expect(weights.filter { $0 > 0 }.count == 1)
        #expect(weights.reduce(0, +) < 1)

        let unlimited = try #require(try RouterFile.load(url).makeRouter(
            model: model, experts: experts, overrides: RouterOverrides(topK: .some(nil))) as? EncoderRouter)
        #expect(unlimited.selection.topK == nil)
        #expect(throws: RouterError.self) {
            try RouterFile.loadRouter(from: url, model: model, experts: experts, overrides: RouterOverrides(topK: .some(4)))
        }
        #expect(throws: RouterError.self) {
            try RouterFile.loadRouter(from: url, model: model, experts: experts, overrides: RouterOverrides(temperature: 0))
        }
    }

    // MARK: Malformed files

    /// Writes `object` as router.json (and a gate file if `gate` is set).
    func writeJSON(_ object: Any, to url: URL) throws {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: url)
    }

    func jsonObject(_ url: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    /// Each case changes one thing in a valid encoder file and names the
    /// error case and key that loading must report.
    static let encoderMutations: [(name: String, kind: String, key: String, mutate: @Sendable (inout [String: Any]) -> Void)] = [
        ("wrong format", "invalidValue", "format", { $0["format"] = "something-else" }),
        ("newer version", "invalidValue", "version", { $0["version"] = 2 }),
        ("version as string", "invalidValue", "version", { $0["version"] = "1" }),
        ("missing format", "missingKey", "format", { $0["format"] = nil }),
        ("missing layer", "missingKey", "layer", { $0["layer"] = nil }),
        ("misspelled key", "unknownKey", "temprature", { $0["temprature"] = 0.1 }),
        ("unknown kind", "invalidValue", "kind", { $0["kind"] = "mixture" }),
        ("layer beyond model", "invalidValue", "layer", { $0["layer"] = 4 }),
        ("negative layer", "invalidValue", "layer", { $0["layer"] = -1 }),
        ("fractional layer", "invalidValue", "layer", { $0["layer"] = 1.5 }),
        ("boolean layer", "invalidValue", "layer", { $0["layer"] = true }),
        ("other pooling", "invalidValue", "pooling", { $0["pooling"] = "max" }),
        ("zero temperature", "invalidValue", "temperature", { $0["temperature"] = 0 }),
        ("temperature as string", "invalidValue", "temperature", { $0["temperature"] = "hot" }),
        ("missing top_k", "missingKey", "top_k", { $0["top_k"] = nil }),
        ("top_k zero", "invalidValue", "top_k", { $0["top_k"] = 0 }),
        ("top_k above expert count", "invalidValue", "top_k", { $0["top_k"] = 4 }),
        ("min_weight one", "invalidValue", "min_weight", { $0["min_weight"] = 1 }),
        ("min_weight negative", "invalidValue", "min_weight", { $0["min_weight"] = -0.5 }),
        ("renormalize as number", "invalidValue", "renormalize", { $0["renormalize"] = 1 }),
        ("missing center", "missingKey", "center", { $0["center"] = nil }),
        ("short center", "invalidValue", "center", { $0["center"] = [0.5, 0.25] }),
        ("center with string", "invalidValue", "center[3]", { object in
            var center = object["center"] as? [Any] ?? []
            center[3] = "x"
            object["center"] = center
        }),
        ("center with float overflow", "invalidValue", "center[0]", { object in
            var center = object["center"] as? [Any] ?? []
            center[0] = 1e39
            object["center"] = center
        }),
        ("gate key on encoder", "unknownKey", "gate", { $0["gate"] = ["file": "x.safetensors", "fingerprint": "fnv1a64:0000000000000000"] }),
        ("model not an object", "invalidValue", "model", { $0["model"] = "qwen3" }),
        ("missing hidden size", "missingKey", "model.hidden_size", { object in
            var model = object["model"] as? [String: Any] ?? [:]
            model["hidden_size"] = nil
            object["model"] = model
        }),
        ("zero hidden size", "invalidValue", "model.hidden_size", { object in
            var model = object["model"] as? [String: Any] ?? [:]
            model["hidden_size"] = 0
            object["model"] = model
        }),
        ("unknown model key", "unknownKey", "model.path", { object in
            var model = object["model"] as? [String: Any] ?? [:]
            model["path"] = "/models/x"
            object["model"] = model
        }),
        ("malformed model fingerprint", "invalidValue", "model.fingerprint", { object in
            var model = object["model"] as? [String: Any] ?? [:]
            model["fingerprint"] = "md5:1234"
            object["model"] = model
        }),
        ("experts not an array", "invalidValue", "experts", { $0["experts"] = ["name": "basic"] }),
        ("no experts", "invalidValue", "experts", { $0["experts"] = [Any]() }),
        ("expert not an object", "invalidValue", "experts[1]", { object in
            var experts = object["experts"] as? [Any] ?? []
            experts[1] = "all-seven"
            object["experts"] = experts
        }),
        ("duplicate expert name", "invalidValue", "experts[1].name", { object in
            RouterFileTests.mutateExpert(&object, 1) { $0["name"] = "basic" }
        }),
        ("empty expert name", "invalidValue", "experts[0].name", { object in
            RouterFileTests.mutateExpert(&object, 0) { $0["name"] = "" }
        }),
        ("malformed expert fingerprint", "invalidValue", "experts[2].fingerprint", { object in
            RouterFileTests.mutateExpert(&object, 2) { $0["fingerprint"] = "fnv1a64:XYZ" }
        }),
        ("zero examples", "invalidValue", "experts[0].examples", { object in
            RouterFileTests.mutateExpert(&object, 0) { $0["examples"] = 0 }
        }),
        ("missing prototype", "missingKey", "experts[1].prototype", { object in
            RouterFileTests.mutateExpert(&object, 1) { $0["prototype"] = nil }
        }),
        ("zero prototype", "invalidValue", "experts[1].prototype", { object in
            RouterFileTests.mutateExpert(&object, 1) { $0["prototype"] = [Double](repeating: 0, count: 64) }
        }),
        ("prototype of wrong length", "invalidValue", "experts[0].prototype", { object in
            RouterFileTests.mutateExpert(&object, 0) { $0["prototype"] = [1.0] }
        }),
        ("unknown expert key", "unknownKey", "experts[0].weight", { object in
            RouterFileTests.mutateExpert(&object, 0) { $0["weight"] = 0.5 }
        }),
    ]

    static func mutateExpert(_ object: inout [String: Any], _ index: Int, _ change: (inout [String: Any]) -> Void) {
        var experts = object["experts"] as? [Any] ?? []
        var expert = experts[index] as? [String: Any] ?? [:]
        change(&expert)
        experts[index] = expert
        object["experts"] = experts
    }

    @Test func malformedEncoderFilesAreRejected() throws {
        let scratch = try RouterScratchDirectory()
        let valid = scratch.file("valid.json")
        try fit(.encoder).write(to: valid)
        let original = try jsonObject(valid)
        for (index, item) in Self.encoderMutations.enumerated() {
            var object = original
            item.mutate(&object)
            let url = scratch.file("case-\(index).json")
            try writeJSON(object, to: url)
            let error = thrownError { _ = try RouterFile.load(url) }
            let classified = error.flatMap(routerFileErrorKind)
            #expect(classified?.kind == item.kind, "\(item.name): \(String(describing: error))")
            #expect(classified?.key == item.key, "\(item.name): \(String(describing: error))")
            #expect("\(error.map { "\($0)" } ?? "")".contains(url.path), "\(item.name): the message names the file")
        }
    }

    @Test func unreadableFilesAreRejected() throws {
        let scratch = try RouterScratchDirectory()
        let missing = scratch.file("missing.json")
        #expect(thrownError { _ = try RouterFile.load(missing) }.flatMap(routerFileErrorKind)?.kind == "cannotRead")

        let notJSON = scratch.file("text.json")
        try Data("layer = 3\n".utf8).write(to: notJSON)
        #expect(thrownError { _ = try RouterFile.load(notJSON) }.flatMap(routerFileErrorKind)?.kind == "invalidJSON")

        let array = scratch.file("array.json")
        try Data("[1, 2]".utf8).write(to: array)
        let arrayError = thrownError { _ = try RouterFile.load(array) }.flatMap(routerFileErrorKind)
        #expect(arrayError?.kind == "invalidValue")
        #expect(arrayError?.key == "top level")

        let unwritable = scratch.file("no-such-directory/router.json")
        let writeError = thrownError { try fit(.encoder).write(to: unwritable) }.flatMap(routerFileErrorKind)
        #expect(writeError?.kind == "cannotWrite")
    }

    @Test func invalidFileIsNotWritten() throws {
        let scratch = try RouterScratchDirectory()
        var file = try fit(.encoder)
        file.temperature = -1
        let url = scratch.file("router.json")
        #expect(thrownError { try file.write(to: url) }.flatMap(routerFileErrorKind)?.key == "temperature")
        #expect(!FileManager.default.fileExists(atPath: url.path))
    }

    // MARK: Gate files

    /// Writes a valid gate router, then changes it with `change`, which gets
    /// the router.json object and the gate file URL and returns the new object.
    func gateCase(_ change: (inout [String: Any], URL) throws -> Void) throws -> (any Error)? {
        let scratch = try RouterScratchDirectory()
        let url = scratch.file("router.json")
        try fit(.gate).write(to: url)
        var object = try jsonObject(url)
        try change(&object, scratch.file("router.gate.safetensors"))
        try writeJSON(object, to: url)
        return thrownError { _ = try RouterFile.load(url) }
    }

    /// Replaces the gate file with `writer`'s tensors and updates the
    /// fingerprint in router.json to match, so only the tensors are wrong.
    func replaceGate(_ object: inout [String: Any], _ gateURL: URL, _ data: Data) throws {
        try data.write(to: gateURL)
        var gate = object["gate"] as? [String: Any] ?? [:]
        gate["fingerprint"] = try RouterFingerprint.file(gateURL)
        object["gate"] = gate
    }

    @Test func malformedGateFilesAreRejected() throws {
        func expectFailure(_ name: String, kind: String, key: String, _ change: (inout [String: Any], URL) throws -> Void) throws {
            let error = try gateCase(change)
            let classified = error.flatMap(routerFileErrorKind)
            #expect(classified?.kind == kind, "\(name): \(String(describing: error))")
            #expect(classified?.key == key, "\(name): \(String(describing: error))")
        }
        try expectFailure("missing gate", kind: "missingKey", key: "gate") { object, _ in object["gate"] = nil }
        try expectFailure("center on gate", kind: "unknownKey", key: "center") { object, _ in object["center"] = [0.0] }
        try expectFailure("prototype on gate", kind: "unknownKey", key: "experts[0].prototype") { object, _ in
            Self.mutateExpert(&object, 0) { $0["prototype"] = [Double](repeating: 1, count: 64) }
        }
        try expectFailure("unknown gate key", kind: "unknownKey", key: "gate.path") { object, _ in
            var gate = object["gate"] as? [String: Any] ?? [:]
            gate["path"] = "/tmp"
            object["gate"] = gate
        }
        try expectFailure("gate file in another directory", kind: "invalidValue", key: "gate.file") { object, _ in
            var gate = object["gate"] as? [String: Any] ?? [:]
            gate["file"] = "../router.gate.safetensors"
            object["gate"] = gate
        }
        try expectFailure("gate file missing", kind: "invalidValue", key: "gate.file") { _, gateURL in
            try FileManager.default.removeItem(at: gateURL)
        }
        try expectFailure("gate file changed", kind: "invalidValue", key: "gate.fingerprint") { _, gateURL in
            var bytes = try Data(contentsOf: gateURL)
            bytes[bytes.count - 1] ^= 1
            try bytes.write(to: gateURL)
        }
        try expectFailure("gate weight of wrong shape", kind: "invalidValue", key: "tensor 'gate.weight'") { object, gateURL in
            var writer = SafeTensorsWriter()
            try writer.add("gate.weight", shape: [64, 3], values: [Float](repeating: 0, count: 192))
            try writer.add("gate.bias", shape: [3], values: [0, 0, 0])
            try replaceGate(&object, gateURL, writer.serialized())
        }
        try expectFailure("gate bias missing", kind: "missingKey", key: "tensor 'gate.bias'") { object, gateURL in
            var writer = SafeTensorsWriter()
            try writer.add("gate.weight", shape: [3, 64], values: [Float](repeating: 0, count: 192))
            try replaceGate(&object, gateURL, writer.serialized())
        }
        try expectFailure("extra tensor", kind: "invalidValue", key: "tensor 'gate.scale'") { object, gateURL in
            var writer = SafeTensorsWriter()
            try writer.add("gate.weight", shape: [3, 64], values: [Float](repeating: 0, count: 192))
            try writer.add("gate.bias", shape: [3], values: [0, 0, 0])
            try writer.add("gate.scale", shape: [1], values: [1])
            try replaceGate(&object, gateURL, writer.serialized())
        }
        try expectFailure("non-finite gate weight", kind: "invalidValue", key: "gate tensor 'gate.bias'[1]") { object, gateURL in
            var writer = SafeTensorsWriter()
            try writer.add("gate.weight", shape: [3, 64], values: [Float](repeating: 0, count: 192))
            try writer.add("gate.bias", shape: [3], values: [0, .nan, 0])
            try replaceGate(&object, gateURL, writer.serialized())
        }
        try expectFailure("gate weight in F16", kind: "invalidValue", key: "tensor 'gate.bias'") { object, gateURL in
            var writer = SafeTensorsWriter()
            try writer.add("gate.weight", shape: [3, 64], values: [Float](repeating: 0, count: 192))
            var data = try writer.serialized()
            // Append an F16 bias by hand: the writer only writes F32.
            let header = #"{"gate.bias":{"dtype":"F16","shape":[3],"data_offsets":[768,774]},"gate.weight":{"dtype":"F32","shape":[3,64],"data_offsets":[0,768]}}"#
            var headerBytes = Data(header.utf8)
            headerBytes.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - headerBytes.count % 8) % 8))
            let payload = data.suffix(768)
            data = Data()
            withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { data.append(contentsOf: $0) }
            data.append(headerBytes)
            data.append(payload)
            data.append(contentsOf: [UInt8](repeating: 0, count: 6))
            try replaceGate(&object, gateURL, data)
        }
    }

    // MARK: Model and expert checks

    @Test func otherModelIsRejected() throws {
        let scratch = try RouterScratchDirectory()
        let url = scratch.file("router.json")
        try fit(.encoder).write(to: url)

        let llama = try TinyFixtures.model("llama-f16")
        let typeError = thrownError { _ = try RouterFile.loadRouter(from: url, model: llama, experts: experts) }
        #expect(typeError.flatMap(routerFileErrorKind)?.kind == "modelMismatch")
        #expect(typeError.flatMap(routerFileErrorKind)?.key == "model.model_type")
        #expect("\(typeError.map { "\($0)" } ?? "")".contains("model_type \"qwen3\""))

        // Same configuration, one weight byte changed.
        let copy = try scratch.copy(TinyFixtures.modelURL("qwen3-f32"), as: "changed-model")
        try flipFirstWeightByte(copy.appendingPathComponent("model.safetensors"))
        let changed = try LanguageModel(directory: copy)
        let fingerprintError = thrownError { _ = try RouterFile.loadRouter(from: url, model: changed, experts: experts) }
        #expect(fingerprintError.flatMap(routerFileErrorKind)?.kind == "modelMismatch")
        #expect(fingerprintError.flatMap(routerFileErrorKind)?.key == "model.fingerprint")
        #expect("\(fingerprintError.map { "\($0)" } ?? "")".contains(copy.path))

        // An identical copy is the same model.
        let same = try LanguageModel(directory: scratch.copy(TinyFixtures.modelURL("qwen3-f32"), as: "same-model"))
        #expect(throws: Never.self) { try RouterFile.loadRouter(from: url, model: same, experts: experts) }
    }

    @Test func otherExpertsAreRejected() throws {
        let scratch = try RouterScratchDirectory()
        let url = scratch.file("router.json")
        try fit(.encoder).write(to: url)
        func failure(_ given: [LoRAAdapter]) -> (error: (any Error)?, kind: String?, key: String?) {
            let error = thrownError { _ = try RouterFile.loadRouter(from: url, model: model, experts: given) }
            let classified = error.flatMap(routerFileErrorKind)
            return (error, classified?.kind, classified?.key)
        }

        let fewer = failure(Array(experts.prefix(2)))
        #expect(fewer.kind == "expertCountMismatch")
        #expect("\(fewer.error.map { "\($0)" } ?? "")".contains("basic, all-seven, mlp-only"))

        let reordered = failure([experts[1], experts[0], experts[2]])
        #expect(reordered.kind == "expertMismatch")
        #expect(reordered.key == "experts[0].name")
        #expect("\(reordered.error.map { "\($0)" } ?? "")".contains("different order"))

        let renamed = try LoRAAdapter(directory: TinyFixtures.adapterURL("mlp-only"), name: "mlp", modelConfig: model.config)
        let rename = failure([experts[0], experts[1], renamed])
        #expect(rename.kind == "expertMismatch")
        #expect(rename.key == "experts[2].name")

        // Same name, other adapter files.
        let impostor = try LoRAAdapter(directory: TinyFixtures.adapterURL("rslora"), name: "all-seven", modelConfig: model.config)
        let swapped = failure([experts[0], impostor, experts[2]])
        #expect(swapped.kind == "expertMismatch")
        #expect(swapped.key == "experts[1].fingerprint")
        #expect("\(swapped.error.map { "\($0)" } ?? "")".contains(TinyFixtures.adapterURL("rslora").path))

        // A byte-identical copy under the same name is accepted.
        let copy = try LoRAAdapter(directory: scratch.copy(TinyFixtures.adapterURL("basic"), as: "basic"), modelConfig: model.config)
        #expect(throws: Never.self) { try RouterFile.loadRouter(from: url, model: model, experts: [copy, experts[1], experts[2]]) }
    }
}

struct RouterFittingTests {
    @Test func encoderParametersFormula() throws {
        // Expert 0 has unit vectors (1,0) and (0,1). Expert 1 has (2,0), whose unit vector is (1,0).
        let (center, prototypes) = try RouterFitting.encoderParameters(embeddings: [[[1, 0], [0, 1]], [[2, 0]]])
        // The means of the unit vectors are (0.5, 0.5) and (1, 0), and the center is their mean.
        #expect(center == [0.75, 0.25])
        #expect(prototypes == [[-0.25, 0.25], [0.25, -0.25]])
        #expect(throws: RouterError.self) { try RouterFitting.encoderParameters(embeddings: [[[1, 0]], [[0, 0]]]) }
        #expect(throws: RouterError.self) { try RouterFitting.encoderParameters(embeddings: [[[1, 0]], []]) }
        #expect(throws: RouterError.self) { try RouterFitting.encoderParameters(embeddings: [[[1, 0]], [[1, 0, 0]]]) }
    }

    @Test func fitReportsOwnExampleAccuracy() throws {
        let model = try RouterTestSupport.model()
        let experts = try RouterTestSupport.experts(model)
        let result = try RouterFitting.fit(model: model, experts: experts, examples: RouterTestSupport.examples())
        #expect(result.file.layer == model.config.numHiddenLayers)
        #expect(result.correctExamples.count == 3)
        #expect(result.correctExamples.allSatisfy { (0...8).contains($0) })
        #expect(result.trainingLoss == nil)
        let gate = try RouterFitting.fit(
            model: model, experts: experts, examples: RouterTestSupport.examples(), options: RouterFitOptions(kind: .gate))
        #expect(gate.correctExamples == [8, 8, 8])
        #expect((gate.trainingLoss ?? 1) < 0.1)
    }

    @Test func invalidFitInputsAreRejected() throws {
        let model = try RouterTestSupport.model()
        let experts = try RouterTestSupport.experts(model)
        let examples = RouterTestSupport.examples()
        #expect(throws: RouterFitError.tooFewExperts(count: 1)) {
            try RouterFitting.fit(model: model, experts: [experts[0]], examples: [examples[0]])
        }
        #expect(throws: RouterFitError.exampleSetCountMismatch(experts: 3, exampleSets: 2)) {
            try RouterFitting.fit(model: model, experts: experts, examples: Array(examples.prefix(2)))
        }
        #expect(throws: RouterFitError.missingExamples(expert: "all-seven")) {
            try RouterFitting.fit(model: model, experts: experts, examples: [examples[0], [], examples[2]])
        }
        #expect(throws: RouterFitError.emptyExample(expert: "mlp-only", index: 1)) {
            try RouterFitting.fit(model: model, experts: experts, examples: [examples[0], examples[1], [[5], [], [6]]])
        }
        #expect(throws: RouterError.self) {
            try RouterFitting.fit(model: model, experts: experts, examples: examples, options: RouterFitOptions(layer: 4))
        }
        #expect(throws: RouterError.self) {
            try RouterFitting.fit(model: model, experts: experts, examples: examples, options: RouterFitOptions(temperature: 0))
        }
        #expect(throws: RouterError.self) {
            try RouterFitting.fit(
                model: model, experts: experts, examples: examples, options: RouterFitOptions(selection: ExpertSelection(topK: 5)))
        }
        #expect(throws: ModelError.self) {
            try RouterFitting.fit(model: model, experts: experts, examples: [examples[0], examples[1], [[100_000]]])
        }
    }
}

struct RouterExamplesTests {
    @Test func parsesPromptLines() throws {
        let text = "\u{FEFF}# comment\nfirst prompt\r\n\n   \n  second prompt  \n\t# indented comment\nthird # not a comment\n"
        #expect(try RouterExamples.parse(Data(text.utf8), file: "x.txt") == ["first prompt", "second prompt", "third # not a comment"])
        #expect(try RouterExamples.parse(Data("only line without newline".utf8), file: "x.txt") == ["only line without newline"])
    }

    @Test func rejectsBadFiles() throws {
        #expect(throws: RouterFitError.noExamples(file: "empty.txt")) { try RouterExamples.parse(Data(), file: "empty.txt") }
        #expect(throws: RouterFitError.noExamples(file: "c.txt")) { try RouterExamples.parse(Data("# a\n\n# b\n".utf8), file: "c.txt") }
        var bytes = Data("good line\nsecond line\n".utf8)
        bytes.append(contentsOf: [0x62, 0xFF, 0x61, 0x0A])
        #expect(throws: RouterFitError.invalidUTF8(file: "bad.txt", line: 3)) { try RouterExamples.parse(bytes, file: "bad.txt") }
        let missing = "/nonexistent/examples.txt"
        let error = thrownError { _ = try RouterExamples.load(URL(fileURLWithPath: missing)) }
        #expect(error.map { "\($0)" }?.contains(missing) == true)
        if case .cannotReadExamples = error as? RouterFitError {} else {
            Issue.record("expected cannotReadExamples, got \(String(describing: error))")
        }
    }

    @Test func matchesFilesToExperts() throws {
        let experts = ["code", "french", "chat"]
        let files = [("chat", "c.txt"), ("code", "a.txt"), ("french", "b.txt")]
        #expect(try RouterExamples.match(experts: experts, files: files) == ["a.txt", "b.txt", "c.txt"])
        #expect(throws: RouterFitError.unknownExpert(name: "Code", file: "a.txt", experts: experts)) {
            try RouterExamples.match(experts: experts, files: [("Code", "a.txt"), ("french", "b.txt"), ("chat", "c.txt")])
        }
        #expect(throws: RouterFitError.missingExamples(expert: "chat")) {
            try RouterExamples.match(experts: experts, files: [("code", "a.txt"), ("french", "b.txt")])
        }
        #expect(throws: RouterFitError.duplicateExamples(expert: "code", files: ["a.txt", "d.txt"])) {
            try RouterExamples.match(experts: experts, files: files + [("code", "d.txt")])
        }
    }
}
