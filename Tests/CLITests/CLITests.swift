import Foundation
import Testing

/// The command line: help, argument errors and exit codes. These need no model.
struct CLIArgumentTests {
    @Test func topLevelHelpListsCommands() throws {
        let output = try CLI.run(["--help"])
        #expect(output.status == 0)
        #expect(output.stdout.contains("generate"))
        #expect(output.stdout.contains("score"))
    }

    @Test func everyCommandHasHelp() throws {
        for command in ["generate", "score", "chat", "serve", "bench"] {
            let output = try CLI.run([command, "--help"])
            #expect(output.status == 0, "\(command)")
            #expect(output.stdout.contains("usage: lora-moe \(command)"))
            #expect(output.stdout.contains("--model DIR"))
        }
    }

    /// Arguments that are wrong before any file is read, and the message each gives.
    static let usageErrors: [(arguments: [String], fragment: String)] = [
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["generate", "--model", "m", "--prompt", "hi", "--bogus"], "unknown option '--bogus'"),
        (["generate", "--prompt", "hi"], "missing required option '--model'"),
        (["generate", "--model", "m"], "missing required option '--prompt' (or '--prompt-file')"),
        (["generate", "--model", "m", "--prompt", "a", "--prompt-file", "f"], "give either --prompt or --prompt-file, not both"),
        (["generate", "--model", "m", "--prompt", "hi", "--stop", ""], "--stop needs a non-empty text"),
        (["generate", "--model", "m", "--prompt", "hi", "--max-tokens", "ten"], "option '--max-tokens' expects an integer, got 'ten'"),
        (["generate", "--model", "m", "--prompt", "hi", "--temperature", "-1"], "invalid temperature -1.0"),
        (["generate", "--model", "m", "--prompt", "hi", "--top-p", "2"], "invalid top-p 2.0"),
        (["generate", "--model", "m", "--prompt", "hi", "--seed", "-3"], "--seed expects a non-negative integer"),
        (["generate", "--model", "m", "--prompt", "hi", "--max-tokens"], "option '--max-tokens' needs a value"),
        (["generate", "--model", "m", "--prompt", "hi", "--raw=yes"], "option '--raw' takes no value"),
        (["score", "--model", "m", "--prompt", "hi"], "missing required option '--continuation' (or '--continuation-file')"),
        (["generate", "--model", "m", "--prompt", "a", "--prompt", "b"], "option '--prompt' is given more than once"),
    ]

    @Test func usageErrorsExitWithTwo() throws {
        for (arguments, fragment) in Self.usageErrors {
            let output = try CLI.run(arguments)
            #expect(output.status == 2, "\(arguments)")
            #expect(output.stderr.contains(fragment), "\(arguments): \(output.stderr)")
            #expect(output.stderr.split(separator: "\n").count == 1, "one-line error for \(arguments)")
        }
    }

    @Test func missingModelDirectoryExitsWithOne() throws {
        let output = try CLI.run(["generate", "--model", "/nonexistent/model", "--prompt", "hi"])
        #expect(output.status == 1)
        #expect(output.stderr.contains("/nonexistent/model: model directory not found"))
    }

    @Test func helpOnlyCountsInOptionPosition() throws {
        // "--help" as the value of --prompt is a prompt, not a request for help.
        let output = try CLI.run(["generate", "--model", "/nonexistent/model", "--prompt", "--help"])
        #expect(output.status == 1)
        #expect(!output.stdout.contains("usage:"))
    }

    @Test func unwritableOutputIsAnErrorNotACrash() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { return }
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["--help"]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/full")
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 1)
        #expect(message.contains("failed to write to standard output"))
    }
}

/// End-to-end runs on the real SmolLM2-135M-Instruct (fetched by scripts/fetch-models.sh).
struct CLIGenerationTests {
    @Test func greedyGenerationIsRepeatableAndReportsJSON() throws {
        let arguments = ["generate", "--model", CLI.smolLM2, "--prompt", "What is the capital of France?",
                         "--temperature", "0", "--max-tokens", "12", "--json"]
        let first = try CLI.run(arguments)
        #expect(first.status == 0, "\(first.stderr)")
        let json = try #require(CLI.parseJSON(first.stdout))
        for key in ["text", "token_ids", "prompt_tokens", "generated_tokens", "prompt_tps", "generation_tps", "finish_reason"] {
            #expect(json[key] != nil, "missing \(key)")
        }
        #expect((json["text"] as? String)?.contains("Paris") == true)
        let second = try CLI.run(arguments)
        #expect(CLI.parseJSON(second.stdout)?["token_ids"] as? [Int] == json["token_ids"] as? [Int])
    }

    @Test func sameSeedSameSampledText() throws {
        let arguments = ["generate", "--model", CLI.smolLM2, "--prompt", "Write a short poem about rain.",
                         "--temperature", "1.0", "--seed", "1234", "--max-tokens", "24", "--json"]
        let first = try CLI.run(arguments)
        let second = try CLI.run(arguments)
        #expect(first.status == 0)
        #expect(CLI.parseJSON(first.stdout)?["text"] as? String == CLI.parseJSON(second.stdout)?["text"] as? String)
        let other = try CLI.run(arguments.map { $0 == "1234" ? "99" : $0 })
        #expect(CLI.parseJSON(first.stdout)?["text"] as? String != CLI.parseJSON(other.stdout)?["text"] as? String)
    }

    @Test func streamsTextAndPrintsSummary() throws {
        let output = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "Say hello.", "--temperature", "0",
                                  "--max-tokens", "8", "--experts", CLI.realAdapter("a") + "," + CLI.realAdapter("b"),
                                  "--weights", "0.7,0.3"])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(!output.stdout.isEmpty)
        #expect(output.stderr.contains("tok/s"))
        #expect(output.stderr.contains("a=0.7 + b=0.3"))
    }

    @Test func stopStringEndsGeneration() throws {
        let base = ["generate", "--model", CLI.smolLM2, "--prompt", "Count from 1 to 20, separated by commas.",
                    "--temperature", "0", "--max-tokens", "60", "--json"]
        let full = try #require(CLI.parseJSON(try CLI.run(base).stdout)?["text"] as? String)
        #expect(full.contains("5"))
        let stopped = try CLI.run(base + ["--stop", "5"])
        let json = try #require(CLI.parseJSON(stopped.stdout))
        let text = try #require(json["text"] as? String)
        #expect(!text.contains("5"))
        #expect(full.hasPrefix(text))
        #expect(json["finish_reason"] as? String == "stop")
    }

    @Test func promptLongerThanContextIsAnError() throws {
        let output = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "This prompt is longer than eight tokens for sure.",
                                  "--context", "8", "--raw"])
        #expect(output.status == 2)
        #expect(output.stderr.contains("tokens but the context holds 8"))
        let score = try CLI.run(["score", "--model", CLI.smolLM2, "--prompt", "Hi", "--continuation", "one two three four five six seven eight",
                                 "--context", "8", "--raw"])
        #expect(score.status == 2)
        #expect(score.stderr.contains("the prompt (1 token) and continuation"))
    }

    @Test func thinkSwitchNeedsAThinkingTemplate() throws {
        let output = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "hi", "--think"])
        #expect(output.status == 2)
        #expect(output.stderr.contains("need a chat template with a thinking switch"))
        let raw = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "hi", "--raw", "--no-think"])
        #expect(raw.status == 2)
        #expect(raw.stderr.contains("no effect with --raw"))
    }

    @Test func routerOptionsAreChecked() throws {
        let cases: [(arguments: [String], fragment: String)] = [
            (["--router", "arrow"], "--router needs --experts"),
            (["--experts", CLI.realAdapter("a"), "--weights", "1", "--router", "arrow"], "--weights and --router exclude each other"),
            (["--router-top-k", "2"], "--router-top-k needs --router"),
            (["--experts", CLI.realAdapter("a"), "--router", "arrow", "--router-top-k", "2"], "invalid top-k 2 for 1 expert"),
            (["--experts", CLI.realAdapter("a"), "--router", "arrow", "--router-min-weight", "0.1"], "--router-min-weight applies to router files"),
        ]
        for (extra, fragment) in cases {
            let output = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "hi"] + extra)
            #expect(output.status == 2, "\(extra): \(output.stderr)")
            #expect(output.stderr.contains(fragment), "\(extra): \(output.stderr)")
        }
        // Arrow routes every token among all experts, so they must adapt the same projections.
        let mismatched = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "hi", "--router", "arrow",
                                      "--experts", "\(CLI.realAdapter("a")),\(CLI.realAdapter("b"))"])
        #expect(mismatched.status == 1)
        #expect(mismatched.stderr.contains("every expert must adapt the same projections"))
    }

    @Test func promptFileReadsStandardInput() throws {
        let inline = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "What is 1+1?", "--temperature", "0", "--max-tokens", "8", "--json"])
        let piped = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt-file", "-", "--temperature", "0", "--max-tokens", "8", "--json"],
                                stdin: "What is 1+1?")
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(CLI.parseJSON(piped.stdout)?["token_ids"] as? [Int] == CLI.parseJSON(inline.stdout)?["token_ids"] as? [Int])
        // A pipe given as a path, as a shell's <(...) or /dev/stdin.
        let devStdin = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt-file", "/dev/stdin", "--temperature", "0",
                                    "--max-tokens", "8", "--json"], stdin: "What is 1+1?")
        #expect(devStdin.status == 0, "\(devStdin.stderr)")
        #expect(CLI.parseJSON(devStdin.stdout)?["token_ids"] as? [Int] == CLI.parseJSON(inline.stdout)?["token_ids"] as? [Int])
        // A missing prompt file is a bad file: status 1 and one line.
        let missing = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt-file", "/nonexistent/prompt.txt"])
        #expect(missing.status == 1, "\(missing.stderr)")
        #expect(missing.stderr == "lora-moe: error: --prompt-file /nonexistent/prompt.txt: file not found or unreadable\n")
    }

    @Test func badExpertsGiveOneLineErrors() throws {
        let cases: [(experts: String, weights: String?, status: Int32, fragment: String)] = [
            (CLI.realAdapter("a"), "0.5,0.5", 2, "1 expert but 2 weights"),
            (CLI.realAdapter("a"), "1e39", 2, "is not a finite number in single precision"),
            ("\(CLI.realAdapter("a")),,\(CLI.realAdapter("b"))", nil, 2, "has an empty entry"),
            ("/nonexistent/adapter", nil, 1, "/nonexistent/adapter: adapter directory not found"),
            (CLI.tinyAdapter("basic"), nil, 1, "Was the adapter trained for a different base model?"),
            (CLI.tinyAdapter("reject-dora"), nil, 1, "use_dora"),
            ("x=\(CLI.realAdapter("a")),x=\(CLI.realAdapter("b"))", nil, 2, "two experts are named 'x'"),
        ]
        for (experts, weights, status, fragment) in cases {
            var arguments = ["generate", "--model", CLI.smolLM2, "--prompt", "hi", "--experts", experts]
            if let weights { arguments += ["--weights", weights] }
            let output = try CLI.run(arguments)
            #expect(output.status == status, "\(experts): \(output.stderr)")
            #expect(output.stderr.contains(fragment), "\(experts): \(output.stderr)")
        }
    }

    @Test func scoreJSONMatchesSumOfLogprobs() throws {
        let output = try CLI.run(["score", "--model", CLI.smolLM2, "--prompt", "The capital of France is",
                                  "--continuation", " Paris.", "--raw", "--json"])
        #expect(output.status == 0, "\(output.stderr)")
        let json = try #require(CLI.parseJSON(output.stdout))
        let logprobs = try #require(json["logprobs"] as? [Double])
        let ids = try #require(json["token_ids"] as? [Int])
        let total = try #require(json["total_logprob"] as? Double)
        #expect(logprobs.count == ids.count)
        #expect(abs(logprobs.reduce(0, +) - total) < 1e-4)
        #expect(logprobs.allSatisfy { $0 <= 0 })
        // " Paris" is very likely after this prompt.
        #expect(logprobs[0] > -2)
    }
}

/// `lora-moe chat` driven through stdin, as from a pipe.
struct CLIChatTests {
    let experts = "a=\(CLI.realAdapter("a")),b=\(CLI.realAdapter("b"))"

    @Test func multiTurnSessionWithCommands() throws {
        let input = """
        What is the capital of France?
        /experts
        /weights 0.2,0.8
        /experts
        And of Italy?
        /weights 1
        /nonsense
        /reset
        Hi!
        /quit
        This line comes after /quit and must not be answered.

        """
        let output = try CLI.run(["chat", "--model", CLI.smolLM2, "--experts", experts, "--weights", "0,0",
                                  "--temperature", "0", "--max-tokens", "24"], stdin: input)
        #expect(output.status == 0, "\(output.stderr)")
        let replies = output.stdout.split(separator: "\n").map(String.init)
        #expect(replies.count == 3, "\(replies)")
        #expect(replies.first?.contains("Paris") == true)
        #expect(replies.dropFirst().first?.contains("Rome") == true, "the second turn must see the first")
        #expect(output.stderr.contains("a  weight 0  "))
        #expect(output.stderr.contains("a  weight 0.2  "))
        #expect(output.stderr.contains("b  weight 0.8  "))
        #expect(output.stderr.contains("2 experts but 1 weight;"))
        #expect(output.stderr.contains("unknown command '/nonsense'"))
        #expect(output.stderr.contains("conversation cleared"))
        // Only the first turn and the turn after /reset start without a cache;
        // the second turn reuses the first one's keys and values.
        #expect(output.stderr.components(separatedBy: "(0 cached)").count - 1 == 2, "\(output.stderr)")
    }

    @Test func weightZeroChatEqualsBaseChat() throws {
        let question = "Name three colors.\n"
        let withExperts = try CLI.run(["chat", "--model", CLI.smolLM2, "--experts", experts, "--weights", "0,0",
                                       "--temperature", "0", "--max-tokens", "20"], stdin: question)
        let base = try CLI.run(["chat", "--model", CLI.smolLM2, "--temperature", "0", "--max-tokens", "20"], stdin: question)
        #expect(withExperts.status == 0 && base.status == 0)
        #expect(withExperts.stdout == base.stdout)
    }

    @Test func endOfInputEndsSession() throws {
        let output = try CLI.run(["chat", "--model", CLI.smolLM2, "--temperature", "0"], stdin: "")
        #expect(output.status == 0)
        #expect(output.stdout.isEmpty)
    }
}

struct CLIBenchTests {
    @Test func benchReportsSpeedAndMemory() throws {
        let output = try CLI.run(["bench", "--model", CLI.smolLM2, "--prompt-tokens", "16", "--gen-tokens", "4", "--runs", "1",
                                  "--warmup", "0", "--json", "--experts", CLI.realAdapter("a")])
        #expect(output.status == 0, "\(output.stderr)")
        let json = try #require(CLI.parseJSON(output.stdout))
        for key in ["prefill_tps", "decode_tps", "time_to_first_token_s", "load_s", "peak_rss_bytes"] {
            #expect((json[key] as? Double ?? Double(json[key] as? Int ?? -1)) > 0, "\(key)")
        }
        #expect(json["experts"] as? [String] == ["a"])
        let tooLong = try CLI.run(["bench", "--model", CLI.smolLM2, "--prompt-tokens", "9000"])
        #expect(tooLong.status == 2)
    }
}

struct CLIMergeTests {
    @Test func mergedAndFusedBlendsGiveTheSameTokens() throws {
        let experts = "a=\(CLI.realAdapter("a")),b=\(CLI.realAdapter("b"))"
        func run(_ merge: String) throws -> [String: Any]? {
            CLI.parseJSON(try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "Describe a cat.", "--experts", experts,
                                       "--weights", "0.8,-0.4", "--temperature", "0", "--max-tokens", "16", "--merge", merge, "--json"]).stdout)
        }
        let merged = try #require(try run("on"))
        let fused = try #require(try run("off"))
        #expect(merged["merged"] as? Bool == true)
        #expect(fused["merged"] as? Bool == false)
        #expect(merged["token_ids"] as? [Int] == fused["token_ids"] as? [Int])
        let bad = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "hi", "--merge", "maybe"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("--merge expects auto, on or off"))
    }

    /// `auto` merges a fixed blend, except on a Q4_0 model, whose Q8_0
    /// merged copies decode slower than the fused experts.
    @Test func autoMergeSkipsQ4Models() throws {
        func merged(_ quantize: String) throws -> Bool? {
            let output = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "hi", "--experts", CLI.realAdapter("a"),
                                      "--quantize", quantize, "--max-tokens", "1", "--json"])
            return CLI.parseJSON(output.stdout)?["merged"] as? Bool
        }
        #expect(try merged("q8") == true)
        #expect(try merged("q4") == false)
    }
}

struct CLIQuantizationTests {
    @Test func quantizedAndHalfCacheRunsAnswer() throws {
        for options in [["--quantize", "q8"], ["--quantize", "q4"], ["--kv-cache", "f16"], ["--quantize", "q8", "--kv-cache", "f16"]] {
            let output = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "What is the capital of France?",
                                      "--temperature", "0", "--max-tokens", "12", "--json"] + options)
            #expect(output.status == 0, "\(options): \(output.stderr)")
            #expect((CLI.parseJSON(output.stdout)?["text"] as? String)?.contains("Paris") == true, "\(options)")
        }
        let bench = try CLI.run(["bench", "--model", CLI.smolLM2, "--quantize", "q8", "--kv-cache", "f16", "--prompt-tokens", "8",
                                 "--gen-tokens", "2", "--runs", "1", "--warmup", "0", "--json"])
        let json = try #require(CLI.parseJSON(bench.stdout))
        #expect(json["quantization"] as? String == "Q8_0")
        #expect(json["kv_cache"] as? String == "f16")
    }

    @Test func badQuantizationOptionsAreUsageErrors() throws {
        for (options, fragment) in [(["--quantize", "q3"], "--quantize expects q8 or q4"), (["--kv-cache", "bf16"], "--kv-cache expects f32 or f16")] {
            let output = try CLI.run(["generate", "--model", CLI.smolLM2, "--prompt", "hi"] + options)
            #expect(output.status == 2)
            #expect(output.stderr.contains(fragment))
        }
    }
}
