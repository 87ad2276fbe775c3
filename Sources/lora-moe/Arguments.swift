import Foundation

/// A command-line option of a subcommand.
struct Option {
    let name: String
    /// Placeholder shown in help; nil for a flag that takes no value.
    let valueName: String?
    let help: String
    var repeatable = false

    var isFlag: Bool { valueName == nil }
}

/// A command-line mistake: unknown option, missing or malformed value.
/// A file named on the command line that is missing or unreadable: exit
/// status 1, like any other bad file.
struct InputFileError: Error, CustomStringConvertible {
    let option: String
    let path: String
    let problem: String
    var description: String { "--\(option) \(path): \(problem)" }
}

struct UsageError: Error, CustomStringConvertible {
    let message: String
    let command: String
    var description: String { "\(message) (see 'lora-moe \(command) --help')" }
}

/// Options parsed against a list of `Option`s. Accepts `--name value`,
/// `--name=value` and flags; a repeatable option may appear many times.
struct ParsedArguments {
    let command: String
    private var values: [String: [String]] = [:]
    private var flags: Set<String> = []

    init(_ arguments: [String], options: [Option], command: String) throws {
        self.command = command
        let byName = Dictionary(uniqueKeysWithValues: options.map { ($0.name, $0) })
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw UsageError(message: "unexpected argument '\(argument)'", command: command)
            }
            var name = String(argument.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard let option = byName[name] else {
                throw UsageError(message: "unknown option '--\(name)'", command: command)
            }
            if option.isFlag {
                guard inlineValue == nil else {
                    throw UsageError(message: "option '--\(name)' takes no value", command: command)
                }
                flags.insert(name)
                continue
            }
            let value: String
            if let inlineValue {
                value = inlineValue
            } else {
                guard index < arguments.count else {
                    throw UsageError(message: "option '--\(name)' needs a value (\(option.valueName ?? "VALUE"))", command: command)
                }
                value = arguments[index]
                index += 1
            }
            if !option.repeatable, values[name] != nil {
                throw UsageError(message: "option '--\(name)' is given more than once", command: command)
            }
            values[name, default: []].append(value)
        }
    }

    func flag(_ name: String) -> Bool { flags.contains(name) }

    func string(_ name: String) -> String? { values[name]?.last }

    func strings(_ name: String) -> [String] { values[name] ?? [] }

    func requiredString(_ name: String) throws -> String {
        guard let value = string(name) else {
            throw UsageError(message: "missing required option '--\(name)'", command: command)
        }
        return value
    }

    func int(_ name: String) throws -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text) else {
            throw UsageError(message: "option '--\(name)' expects an integer, got '\(text)'", command: command)
        }
        return value
    }

    func double(_ name: String) throws -> Double? {
        guard let text = string(name) else { return nil }
        guard let value = Double(text), value.isFinite else {
            throw UsageError(message: "option '--\(name)' expects a number, got '\(text)'", command: command)
        }
        return value
    }

    /// A comma-separated list of numbers.
    func doubles(_ name: String) throws -> [Double]? {
        guard let text = string(name) else { return nil }
        return try text.split(separator: ",", omittingEmptySubsequences: false).map { item in
            let trimmed = item.trimmingCharacters(in: .whitespaces)
            guard let value = Double(trimmed), value.isFinite else {
                throw UsageError(message: "option '--\(name)' expects comma-separated numbers, got '\(item)'", command: command)
            }
            return value
        }
    }
}

/// Help text: usage line, description and one line per option.
func helpText(usage: String, summary: String, options: [Option]) -> String {
    var lines = ["usage: \(usage)", "", summary, "", "options:"]
    let labels = options.map { option in "--\(option.name)" + (option.valueName.map { " \($0)" } ?? "") }
    let width = min(28, (labels.map(\.count).max() ?? 0) + 2)
    for (option, label) in zip(options, labels) {
        let padding = String(repeating: " ", count: max(2, width - label.count))
        lines.append("  \(label)\(padding)\(option.help)")
    }
    lines.append("  --help\(String(repeating: " ", count: max(2, width - 6)))show this help")
    return lines.joined(separator: "\n")
}

/// True when `--help` or `-h` appears where an option name is expected, so
/// `--prompt --help` (a prompt that happens to read "--help") is not help.
func helpRequested(_ arguments: [String], options: [Option]) -> Bool {
    let takesValue = Set(options.filter { !$0.isFlag }.map(\.name))
    var index = 0
    while index < arguments.count {
        let argument = arguments[index]
        if argument == "--help" || argument == "-h" { return true }
        if argument.hasPrefix("--"), !argument.contains("="), takesValue.contains(String(argument.dropFirst(2))) {
            index += 1
        }
        index += 1
    }
    return false
}

/// "1 token", "2 tokens".
func plural(_ count: Int, _ noun: String) -> String {
    "\(count) \(noun)\(count == 1 ? "" : "s")"
}
