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
            (["--port", "70000"], "--port must be at most 65535, got 70000"),
            (["--experts", "a=\(CLI.realAdapter("a"))", "--weights", "1,2"], "1 expert but 2 weights"),
            (["--host", "999.1.1.1"], "invalid listen host"),
            (["--blend", "nameless"], "must be NAME=SPEC"),
            (["--experts", "a=\(CLI.realAdapter("a"))", "--blend", "x=zzz:1"], "uses 'zzz', which is not among --experts"),
        ]
        for (extra, fragment) in cases {
            let output = try CLI.run(["serve", "--model", CLI.smolLM2] + extra)
            #expect(output.status == 2, "\(extra): \(output.stderr)")
            #expect(output.stderr.contains(fragment), "\(extra): \(output.stderr)")
        }
        // A missing directory is a bad file: status 1, as for --model.
        let missing = try CLI.run(["serve", "--model", CLI.smolLM2, "--adapter-dir", "/nonexistent"])
        #expect(missing.status == 1, "\(missing.stderr)")
        #expect(missing.stderr.contains("--adapter-dir /nonexistent: directory not found"), "\(missing.stderr)")
    }

    /// A port already in use ends the server with a one-line error and exit
    /// status 1, every time: the scheduler thread once crashed on this path.
    @Test func servePortInUseFailsCleanly() throws {
        let socket = try LoopbackListener()
        defer { socket.stop() }
        for _ in 0..<3 {
            let output = try CLI.run(["serve", "--model", CLI.smolLM2, "--port", "\(socket.port)"])
            #expect(output.status == 1, "\(output.stderr)")
            #expect(output.stderr.contains("could not start the HTTP server on 127.0.0.1:\(socket.port)"), "\(output.stderr)")
            #expect(!output.stderr.contains("Fatal error"), "\(output.stderr)")
            #expect(output.stderr.split(separator: "\n").count == 1, "one line: \(output.stderr)")
        }
    }
}

/// A TCP socket listening on 127.0.0.1 at a port the system chose.
struct LoopbackListener {
    let descriptor: Int32
    let port: Int

    init() throws {
        #if os(Linux)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(fd, generic, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, generic, &length) == 0
            }
        }
        guard fd >= 0, bound else {
            throw POSIXError(.EADDRNOTAVAIL)
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func stop() {
        _ = close(descriptor)
    }
}
