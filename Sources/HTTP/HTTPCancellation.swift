/// The reason a request was cancelled. A cancelled request's response can
/// no longer be delivered, so its handler and stream producer should stop.
public enum HTTPCancellationReason: String, Sendable, Equatable {
    /// The client closed or reset the connection. Closing only the
    /// client's sending side (TCP half-close) counts as well.
    case clientDisconnected = "client_disconnected"
    /// The connection stayed idle for longer than
    /// `HTTPLimits.idleTimeoutSeconds` while the response was being sent.
    case timedOut = "timed_out"
    /// `HTTPServer.stop` ran out of grace period.
    case serverStopping = "server_stopping"
    /// The client read a stream more slowly than the producer wrote it, and
    /// the stream buffered more than `HTTPLimits.maxStreamBufferBytes`.
    case streamBufferFull = "stream_buffer_full"
    /// libmicrohttpd closed the connection for another reason, such as a
    /// send error, or ended a streamed response early, as it does for a
    /// HEAD request.
    case connectionClosed = "connection_closed"
}

/// Errors from `HTTPStream.write`.
public enum HTTPStreamError: Error, Equatable, CustomStringConvertible {
    /// The request was cancelled, so nothing more can be sent.
    case cancelled(HTTPCancellationReason)
    /// The stream was already ended with `finish()` or `abort()`.
    case ended
    /// The stream never started, because the handler had already responded
    /// or started another stream.
    case notStarted

    public var description: String {
        switch self {
        case let .cancelled(reason): return "the HTTP stream was cancelled (\(reason.rawValue))"
        case .ended: return "write after the HTTP stream ended"
        case .notStarted: return "write to an HTTP stream that never started, because the request already had a response"
        }
    }
}
