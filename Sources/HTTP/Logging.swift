import CMicroHTTPD
import Foundation

/// The one log line that the server writes per request, in logfmt
/// (`key=value` pairs, values quoted when they contain spaces, quotes, `=`
/// or control characters):
///
///     request_id=req-3fa9c1-7 method=POST path=/v1/chat/completions status=200 duration_ms=41.2 bytes_in=312 bytes_out=1045 remote=127.0.0.1
///
/// `bytes_in` counts request body bytes received and `bytes_out` counts
/// response body bytes handed to libmicrohttpd, which may be more than the
/// client received when the request was cancelled. `status` is 0 when no
/// response was queued. `cancelled=<reason>` and `note="..."` (errors that
/// the server handled) follow when present, then the handler's fields.
enum RequestLogLine {
    static func format(
        context: RequestContext, summary: Exchange.Summary, termination: MHD_RequestTerminationCode
    ) -> String {
        let elapsed = ContinuousClock.now - context.startTime
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        var fields: [(String, String)] = [
            ("request_id", context.exchange.requestID),
            ("method", context.method),
            ("path", context.path),
            ("status", String(summary.status)),
            ("duration_ms", String(format: "%.1f", milliseconds)),
            ("bytes_in", String(context.bodyBytesReceived)),
            ("bytes_out", String(summary.bodyBytesOut)),
            ("remote", context.remoteAddress),
        ]
        if let reason = summary.cancellation {
            fields.append(("cancelled", reason.rawValue))
        }
        if !summary.notes.isEmpty {
            fields.append(("note", summary.notes.joined(separator: "; ")))
        }
        for field in summary.logFields {
            fields.append((sanitizedName(field.name), field.value))
        }
        return fields.map { "\($0.0)=\(quoted($0.1))" }.joined(separator: " ")
    }

    /// Replaces characters other than `A-Z a-z 0-9 _ . -` with `_`, so that
    /// a field name cannot break the line's syntax.
    static func sanitizedName(_ name: String) -> String {
        guard !name.isEmpty else { return "_" }
        return String(
            name.unicodeScalars.map { scalar -> Character in
                let isAllowed = scalar.isASCII
                    && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                        || scalar == "_" || scalar == "." || scalar == "-")
                return isAllowed ? Character(scalar) : "_"
            })
    }

    /// Returns `value` as is when it needs no quoting, otherwise in double
    /// quotes with `"`, `\` and control characters escaped.
    static func quoted(_ value: String) -> String {
        let needsQuotes = value.isEmpty
            || value.unicodeScalars.contains { scalar in
                scalar == " " || scalar == "\"" || scalar == "=" || scalar == "\\" || scalar.value < 0x20
                    || scalar.value == 0x7f
            }
        guard needsQuotes else { return value }
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}

/// Forwards libmicrohttpd's own messages (bind failures, connection-limit
/// rejections, parse errors) to the server's log with a `libmicrohttpd:`
/// prefix, at most `maxMessagesPerSecond` a second. Messages over the rate
/// are counted, and the count is logged with the next message that gets
/// through.
final class LibraryLog: @unchecked Sendable {
    static let maxMessagesPerSecond = 20

    private let log: @Sendable (String) -> Void
    private let lock = NSLock()
    // Guarded by `lock`.
    private var windowStart = ContinuousClock.now
    private var messagesInWindow = 0
    private var suppressedMessages = 0
    private var latestMessage: String?
    private var isStarting = true

    init(log: @escaping @Sendable (String) -> Void) {
        self.log = log
    }

    /// The most recent message, used to explain a failed daemon start.
    var latest: String? {
        lock.withLock { latestMessage }
    }

    /// Ends the start of the daemon. Messages before it are only kept for
    /// `latest`, since a failed start reports them in its own error.
    func daemonStarted() {
        lock.withLock { isStarting = false }
    }

    func record(_ message: String) {
        let trimmed = message.trimmingCharacters(in: .whitespacesAndNewlines)
        // libmicrohttpd logs this whenever a content reader returns
        // END_WITH_ERROR. The server does that only for a cancelled or
        // aborted stream, which the request's own log line already reports.
        if trimmed.hasPrefix("Closing connection (application error generating response)") {
            return
        }
        // Logged whenever the access handler returns MHD_NO: for a client
        // that left before its response, or after a failure that the
        // request's log line already notes.
        if trimmed.hasPrefix("Application reported internal error, closing connection") {
            return
        }
        let line: String? = lock.withLock {
            latestMessage = trimmed
            guard !isStarting else { return nil }
            let now = ContinuousClock.now
            if now - windowStart >= .seconds(1) {
                windowStart = now
                messagesInWindow = 0
            }
            guard messagesInWindow < Self.maxMessagesPerSecond else {
                suppressedMessages += 1
                return nil
            }
            messagesInWindow += 1
            var line = "libmicrohttpd: \(trimmed)"
            if suppressedMessages > 0 {
                line += " (\(suppressedMessages) earlier messages suppressed by the rate limit)"
                suppressedMessages = 0
            }
            return line
        }
        if let line {
            log(line)
        }
    }
}
