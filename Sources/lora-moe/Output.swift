import Foundation

/// Writes a line to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Writes text to standard output at once (used for streaming tokens).
func writeOutput(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// Prints one JSON object on standard output, keys sorted.
func printJSON(_ object: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    writeOutput(String(decoding: data, as: UTF8.self) + "\n")
}

/// Converts a Float to the shortest Double that prints the same, so JSON
/// shows `-1.25` rather than the binary expansion of the Float.
func jsonNumber(_ value: Float) -> Double {
    Double("\(value)") ?? Double(value)
}

/// Formats a token count and its rate per second for the summary line.
func formatRate(_ count: Int, _ seconds: Double) -> String {
    let rate = seconds > 0 ? Double(count) / seconds : 0
    return String(format: "%d tokens, %.1f tok/s", count, rate)
}
