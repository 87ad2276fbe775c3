import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a line to standard error. Failures are ignored: there is nowhere
/// left to report them.
func printError(_ text: String) {
    _ = writeAll(STDERR_FILENO, text + "\n")
}

/// Writes text to standard output at once (used for streaming tokens).
///
/// When standard output cannot be written the process ends: silently with
/// status 141 for a closed pipe (as if killed by SIGPIPE, so `| head` stays
/// quiet), otherwise with a one-line error and status 1 (disk full, closed
/// descriptor).
func writeOutput(_ text: String) {
    let error = writeAll(STDOUT_FILENO, text)
    guard error != 0 else { return }
    if error == EPIPE { exit(141) }
    printError("lora-moe: error: failed to write to standard output: \(String(cString: strerror(error)))")
    exit(1)
}

/// Writes all of `text` to a file descriptor; returns 0 or the errno of the failure.
private func writeAll(_ descriptor: Int32, _ text: String) -> Int32 {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { buffer in
            write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
        }
        if written < 0 {
            if errno == EINTR { continue }
            return errno
        }
        offset += written
    }
    return 0
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
