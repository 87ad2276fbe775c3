import Foundation

/// Problems with the experts or example prompts given to router fitting.
public enum RouterFitError: Error, CustomStringConvertible, Equatable {
    case tooFewExperts(count: Int)
    case exampleSetCountMismatch(experts: Int, exampleSets: Int)
    /// An example file is named for an expert that is not loaded.
    case unknownExpert(name: String, file: String, experts: [String])
    case duplicateExamples(expert: String, files: [String])
    case missingExamples(expert: String)
    case cannotReadExamples(file: String, reason: String)
    case invalidUTF8(file: String, line: Int)
    case noExamples(file: String)
    /// An example that tokenizes to no tokens.
    case emptyExample(expert: String, index: Int)

    public var description: String {
        switch self {
        case let .tooFewExperts(count):
            return "a router needs at least 2 experts to choose between, got \(count)"
        case let .exampleSetCountMismatch(experts, exampleSets):
            return "\(experts) experts but \(exampleSets) example sets; give one set of example prompts per expert"
        case let .unknownExpert(name, file, experts):
            return "examples \(name)=\(file): no expert is named '\(name)'; expert names are \(experts.joined(separator: ", "))"
        case let .duplicateExamples(expert, files):
            return "expert '\(expert)' has more than one example file (\(files.joined(separator: ", "))); give one file per expert"
        case let .missingExamples(expert):
            return "expert '\(expert)' has no example file; add \(expert)=FILE to --examples"
        case let .cannotReadExamples(file, reason):
            return "\(file): cannot read example prompts: \(reason)"
        case let .invalidUTF8(file, line):
            return "\(file): line \(line) is not valid UTF-8; example files must be UTF-8 text"
        case let .noExamples(file):
            return "\(file): no example prompts (every line is blank or starts with '#'); write one prompt per line"
        case let .emptyExample(expert, index):
            return "example \(index) of expert '\(expert)' has no tokens"
        }
    }
}

/// Example prompt files: UTF-8 text with one prompt per line. Surrounding
/// whitespace (and a Windows line ending) is removed from each line, then
/// blank lines and lines starting with `#` are skipped. A leading byte order
/// mark is ignored.
public enum RouterExamples {
    public static func load(_ url: URL) throws -> [String] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw RouterFitError.cannotReadExamples(file: url.path, reason: error.localizedDescription)
        }
        return try parse(data, file: url.path)
    }

    public static func parse(_ data: Data, file: String) throws -> [String] {
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        var prompts: [String] = []
        for (index, line) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            guard let text = String(validating: line, as: UTF8.self) else {
                throw RouterFitError.invalidUTF8(file: file, line: index + 1)
            }
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            prompts.append(trimmed)
        }
        guard !prompts.isEmpty else { throw RouterFitError.noExamples(file: file) }
        return prompts
    }

    /// Pairs `NAME=FILE` example files with the experts by exact name and
    /// returns one file per expert, in expert order.
    public static func match(experts: [String], files: [(name: String, path: String)]) throws -> [String] {
        var byName: [String: [String]] = [:]
        for (name, path) in files {
            guard experts.contains(name) else {
                throw RouterFitError.unknownExpert(name: name, file: path, experts: experts)
            }
            byName[name, default: []].append(path)
        }
        return try experts.map { expert in
            guard let paths = byName[expert] else { throw RouterFitError.missingExamples(expert: expert) }
            guard paths.count == 1 else { throw RouterFitError.duplicateExamples(expert: expert, files: paths) }
            return paths[0]
        }
    }
}
