import Foundation

/// Runs the built `lora-moe` executable, which SwiftPM places next to the
/// test bundle.
enum CLI {
    static var executable: URL {
        if let override = ProcessInfo.processInfo.environment["LORA_MOE_BIN"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        // On macOS the test binary sits inside a .xctest bundle.
        while directory.path.contains(".xctest") {
            directory = directory.deletingLastPathComponent()
        }
        return directory.appendingPathComponent("lora-moe")
    }

    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static func run(_ arguments: [String], stdin: String? = nil) throws -> Output {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let outPipe = Pipe()
        let errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        let inPipe = Pipe()
        process.standardInput = inPipe
        try process.run()
        if let stdin {
            inPipe.fileHandleForWriting.write(Data(stdin.utf8))
        }
        try inPipe.fileHandleForWriting.close()
        // Read both pipes before waiting so a full pipe cannot block the child.
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = errPipe.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = outPipe.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Output(status: process.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var smolLM2: String {
        let models = ProcessInfo.processInfo.environment["LORA_MOE_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? repositoryRoot.appendingPathComponent("models").path
        return models + "/smollm2-135m-instruct"
    }

    static func realAdapter(_ name: String) -> String {
        repositoryRoot.appendingPathComponent("Tests/Fixtures/real/smollm2-135m-instruct/adapters/\(name)").path
    }

    static func tinyAdapter(_ name: String) -> String {
        repositoryRoot.appendingPathComponent("Tests/Fixtures/tiny/adapters/\(name)").path
    }

    static func parseJSON(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }
}
