import Foundation
import Synchronization
import Testing
import Tokenizers

/// A missing model or fixture. The message explains how to get it.
struct TestSetupError: Error, CustomStringConvertible {
    let description: String
}

enum TestPaths {
    /// The repository root, found from this file's path (symlinks resolved).
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent()  // TokenizersTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    /// `$LORA_MOE_MODELS`, or `<root>/models`.
    static var modelsDirectory: URL {
        if let path = ProcessInfo.processInfo.environment["LORA_MOE_MODELS"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return repositoryRoot.appendingPathComponent("models")
    }

    static func modelDirectory(_ name: String) throws -> URL {
        let directory = modelsDirectory.appendingPathComponent(name)
        let tokenizerFile = directory.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: tokenizerFile.path) else {
            throw TestSetupError(description:
                "\(tokenizerFile.path) not found: run scripts/fetch-models.sh (or set LORA_MOE_MODELS)")
        }
        return directory
    }

    static func fixture(_ relativePath: String) throws -> URL {
        let url = repositoryRoot.appendingPathComponent("Tests/Fixtures").appendingPathComponent(relativePath)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TestSetupError(description:
                "\(url.path) not found: regenerate it with the scripts in scripts/fixtures")
        }
        return url
    }
}

/// Tokenizers of the real models, loaded once per test process.
enum SharedTokenizers {
    private static let smolLM2 = Result { try Tokenizer(directory: TestPaths.modelDirectory("smollm2-135m-instruct")) }
    private static let qwen25 = Result { try Tokenizer(directory: TestPaths.modelDirectory("qwen2.5-coder-0.5b-instruct")) }

    static func model(_ name: String) throws -> Tokenizer {
        switch name {
        case "smollm2-135m-instruct": return try smolLM2.get()
        case "qwen2.5-coder-0.5b-instruct": return try qwen25.get()
        default: throw TestSetupError(description: "no shared tokenizer named \(name)")
        }
    }
}

/// One encode case of a tokenizer fixture.
struct EncodeCase: Decodable {
    let text: String
    let ids: [Int]
    let idsWithSpecialTokens: [Int]
    let decoded: String
    let decodedSkipSpecial: String

    enum CodingKeys: String, CodingKey {
        case text, ids, decoded
        case idsWithSpecialTokens = "ids_with_special_tokens"
        case decodedSkipSpecial = "decoded_skip_special"
    }
}

/// One decode case of a tokenizer fixture (id runs that may cut UTF-8 characters).
struct DecodeCase: Decodable {
    let ids: [Int]
    let decoded: String
    let decodedSkipSpecial: String

    enum CodingKeys: String, CodingKey {
        case ids, decoded
        case decodedSkipSpecial = "decoded_skip_special"
    }
}

/// A file written by scripts/fixtures/make_tokenizer_fixtures.py.
struct TokenizerFixture {
    let name: String
    let modelDirectory: String
    let vocabularySize: Int
    let encode: [EncodeCase]
    let decode: [DecodeCase]
    /// The patch applied to the model's tokenizer.json, or nil for the real file.
    let patch: [String: Any]?

    private struct Cases: Decodable {
        let modelDir: String
        let vocabularySize: Int
        let encode: [EncodeCase]
        let decode: [DecodeCase]

        enum CodingKeys: String, CodingKey {
            case encode, decode
            case modelDir = "model_dir"
            case vocabularySize = "vocabulary_size"
        }
    }

    static func load(_ name: String) throws -> TokenizerFixture {
        let data = try Data(contentsOf: TestPaths.fixture("tokenizers/\(name).json"))
        let cases = try JSONDecoder().decode(Cases.self, from: data)
        let raw = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        return TokenizerFixture(
            name: name, modelDirectory: cases.modelDir, vocabularySize: cases.vocabularySize,
            encode: cases.encode, decode: cases.decode, patch: raw?["patch"] as? [String: Any])
    }

    private static let patchedTokenizers = Mutex<[String: Tokenizer]>([:])

    /// Returns the tokenizer the fixture was generated with: the model's own, or the
    /// model's tokenizer.json with the patch applied as the generator applies it.
    /// Patched tokenizers are built once per test process.
    func makeTokenizer() throws -> Tokenizer {
        guard patch != nil else { return try SharedTokenizers.model(modelDirectory) }
        if let cached = Self.patchedTokenizers.withLock({ $0[name] }) { return cached }
        let tokenizer = try makePatchedTokenizer()
        Self.patchedTokenizers.withLock { $0[name] = tokenizer }
        return tokenizer
    }

    private func makePatchedTokenizer() throws -> Tokenizer {
        guard let patch else { return try SharedTokenizers.model(modelDirectory) }
        let directory = try TestPaths.modelDirectory(modelDirectory)
        let url = directory.appendingPathComponent("tokenizer.json")
        guard var document = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any],
              var model = document["model"] as? [String: Any]
        else { throw TestSetupError(description: "\(url.path) is not a JSON object with a model") }

        for (key, value) in patch["set"] as? [String: Any] ?? [:] {
            document[key] = value
        }
        for (key, value) in patch["model"] as? [String: Any] ?? [:] {
            model[key] = value
        }
        if patch["merges_as_strings"] as? Bool == true, let merges = model["merges"] as? [[String]] {
            model["merges"] = merges.map { "\($0[0]) \($0[1])" }
        }
        document["model"] = model
        var added = document["added_tokens"] as? [Any] ?? []
        added += patch["append_added_tokens"] as? [Any] ?? []
        document["added_tokens"] = added

        var writer = JSONTestWriter()
        writer.write(document)
        return try Tokenizer(tokenizerJSON: Data(writer.bytes), tokenizerConfigJSON: nil, source: "\(name) (patched \(url.path))")
    }
}

/// Serializes `JSONSerialization` objects. Foundation's writer takes over a second
/// on the 11 MB Qwen file, which this avoids.
struct JSONTestWriter {
    private(set) var bytes: [UInt8] = []

    mutating func write(_ value: Any) {
        switch value {
        case let text as String:
            writeString(text)
        case let number as NSNumber:
            // JSONSerialization returns booleans as a distinct NSNumber subclass.
            if String(describing: type(of: number)).contains("Boolean") {
                append(number.boolValue ? "true" : "false")
            } else if number.doubleValue == number.doubleValue.rounded() && abs(number.doubleValue) < 1e15 {
                append(String(number.int64Value))
            } else {
                append(String(number.doubleValue))
            }
        case let array as [Any]:
            bytes.append(UInt8(ascii: "["))
            for (index, item) in array.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                write(item)
            }
            bytes.append(UInt8(ascii: "]"))
        case let object as [String: Any]:
            bytes.append(UInt8(ascii: "{"))
            for (index, entry) in object.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                writeString(entry.key)
                bytes.append(UInt8(ascii: ":"))
                write(entry.value)
            }
            bytes.append(UInt8(ascii: "}"))
        default:
            append("null")
        }
    }

    private mutating func append(_ text: String) {
        bytes += text.utf8
    }

    private mutating func writeString(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): append("\\\"")
            case UInt8(ascii: "\\"): append("\\\\")
            case 0..<0x20: append(String(format: "\\u%04x", Int(byte)))
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// Names of the tokenizer fixtures in Tests/Fixtures/tokenizers.
let tokenizerFixtureNames = [
    "smollm2-135m-instruct",
    "qwen2.5-coder-0.5b-instruct",
    "smollm2-digits-nfc-template",
    "qwen2.5-llama3-style",
    "smollm2-regex-features",
    "smollm2-added-token-options",
]

/// Shows a string with its escapes visible, for failure messages.
func visible(_ text: String) -> String {
    let shown = text.count > 80 ? String(text.prefix(80)) + "…" : text
    return shown.debugDescription
}
