import Foundation
import Testing

/// `lora-moe serve` as a process: the official openai Python client against
/// it, outputs equal to the CLI's, and a clean stop on SIGTERM.
struct ServeCommandTests {
    /// Starts the server on a free port and returns it with its port.
    func startServer() throws -> (process: Process, port: Int, stderr: Pipe) {
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["serve", "--model", CLI.smolLM2, "--port", "0",
                             "--experts", "a=\(CLI.realAdapter("a")),b=\(CLI.realAdapter("b"))"]
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var seen = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let data = stderr.fileHandleForReading.availableData
            if data.isEmpty { break }
            seen += String(decoding: data, as: UTF8.self)
            if let range = seen.range(of: #"http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                let port = Int(seen[range].split(separator: ":").last ?? "") ?? 0
                return (process, port, stderr)
            }
        }
        process.terminate()
        throw CLIError(message: "the server did not report its port: \(seen)")
    }

    struct CLIError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    @Test func openAIClientMatchesCLI() throws {
        let python = CLI.repositoryRoot.appendingPathComponent(".venv/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "run scripts/setup-python.sh first")
        let (server, port, stderr) = try startServer()
        defer { if server.isRunning { server.terminate() } }

        let client = Process()
        client.executableURL = URL(fileURLWithPath: python)
        client.arguments = [CLI.repositoryRoot.appendingPathComponent("scripts/server/openai_client_check.py").path, "http://127.0.0.1:\(port)"]
        let output = Pipe()
        let errors = Pipe()
        client.standardOutput = output
        client.standardError = errors
        try client.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        client.waitUntilExit()
        #expect(client.terminationStatus == 0, "\(errorText)")
        let results = try #require((try? JSONSerialization.jsonObject(with: data)) as? [String: Any], "\(errorText)")

        // The CLI with the same blend, seed and OpenAI's default sampling filters.
        let sampling = ["--temperature", "0.9", "--seed", "11", "--max-tokens", "16", "--top-k", "0", "--top-p", "1", "--min-p", "0",
                        "--repeat-last-n", "-1", "--json"]
        let blended = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "Name three animals.",
                                   "--experts", "a=\(CLI.realAdapter("a")),b=\(CLI.realAdapter("b"))", "--weights", "0.7,0.3"] + sampling)
        let cliText = CLI.parseJSON(blended.stdout)?["text"] as? String
        #expect(cliText != nil, "\(blended.stderr)")
        #expect(results["chat"] as? String == cliText)
        #expect(results["streamed"] as? String == cliText)
        let single = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "Name three animals.",
                                  "--experts", "b=\(CLI.realAdapter("b"))", "--weights", "1"] + sampling)
        #expect(results["extension"] as? String == CLI.parseJSON(single.stdout)?["text"] as? String)
        #expect((results["completion"] as? String)?.contains("Paris") == true)
        #expect(results["models"] as? [String] == ["smollm2-135m-instruct", "base", "a", "b"])

        // SIGTERM stops the server cleanly.
        server.terminate()
        server.waitUntilExit()
        #expect(server.terminationStatus == 0)
        let rest = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(rest.contains("lora-moe serve: stopped"))
        #expect(rest.contains("path=/v1/chat/completions status=200"))
    }

    @Test func serveRejectsBadArguments() throws {
        let cases: [(arguments: [String], fragment: String)] = [
            (["--port", "-1"], "--port must be at least 0"),
            (["--experts", "a=\(CLI.realAdapter("a"))", "--weights", "1,2"], "1 expert but 2 weights"),
            (["--adapter-dir", "/nonexistent"], "--adapter-dir /nonexistent: directory not found"),
            (["--blend", "nameless"], "must be NAME=SPEC"),
            (["--experts", "a=\(CLI.realAdapter("a"))", "--blend", "x=zzz:1"], "uses 'zzz', which is not among --experts"),
        ]
        for (extra, fragment) in cases {
            let output = try CLI.run(["serve", "--model", CLI.smolLM2] + extra)
            #expect(output.status == 2, "\(extra): \(output.stderr)")
            #expect(output.stderr.contains(fragment), "\(extra): \(output.stderr)")
        }
    }
}
