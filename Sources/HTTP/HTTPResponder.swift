import Foundation

/// Handles the requests of an `HTTPServer`.
public protocol HTTPHandler: Sendable {
    /// Handles one request. The handler calls `responder.respond` or
    /// `responder.startStream` once; the server ignores later calls.
    ///
    /// The call runs on a thread of its own and may block, for example until
    /// a model has produced its output. It may also return first and leave
    /// the response to another thread that keeps a reference to
    /// `responder`. When the last reference to `responder` goes away
    /// without a response, the client gets a 500 JSON error. If the call
    /// throws before responding, the client gets the same 500 and the log
    /// line gets the error. If it throws after starting a stream, the
    /// stream is aborted.
    ///
    /// NOTE: a handler that keeps running after its request is cancelled
    /// keeps its thread, and `HTTPLimits.maxConnections` no longer counts
    /// it, so handlers should stop once `responder.isCancelled` is true.
    func handle(_ request: HTTPRequest, responder: HTTPResponder) throws
}

/// Sends the response to one request, either complete or as a stream, and
/// reports whether the client is still there.
///
/// All methods are thread-safe and may be called from any thread.
public final class HTTPResponder: Sendable {
    let exchange: Exchange

    init(exchange: Exchange) {
        self.exchange = exchange
    }

    deinit {
        _ = exchange.setHead(
            .complete(ServerCore.handlerFailedResponse), note: "the handler released the responder without responding")
    }

    /// Sends a complete response. Returns false, and sends nothing, when the
    /// request already has a response or was cancelled.
    @discardableResult
    public func respond(_ response: HTTPResponse) -> Bool {
        let accepted = exchange.setHead(.complete(response))
        if !accepted, exchange.cancellationReason == nil {
            exchange.note("dropped a second response with status \(response.status)")
        }
        return accepted
    }

    @discardableResult
    public func respond(status: Int, headers: [String: String] = [:], body: Data = Data()) -> Bool {
        respond(HTTPResponse(status: status, headers: headers, body: body))
    }

    /// Sends the status and headers now and returns a stream for the body,
    /// which is sent with chunked transfer encoding to HTTP/1.1 clients and
    /// ends with the connection for HTTP/1.0 clients.
    ///
    /// When the request already has a response, the returned stream is not
    /// started and its writes throw `HTTPStreamError.notStarted`.
    public func startStream(status: Int = 200, headers: [String: String] = [:]) -> HTTPStream {
        let started = exchange.setHead(.stream(status: status, headers: headers))
        if !started, exchange.cancellationReason == nil {
            exchange.note("refused to start a stream because the request already had a response")
        }
        return HTTPStream(exchange: exchange, isStarted: started)
    }

    /// Adds `name=value` to the request's log line, replacing an earlier
    /// value for `name`. Names other than `A-Z a-z 0-9 _ . -` characters
    /// are rewritten with `_` in their place.
    public func setLogField(_ name: String, _ value: String) {
        exchange.setLogField(name, value)
    }

    /// True once the request is cancelled: the client disconnected, the
    /// connection timed out or the server is stopping.
    public var isCancelled: Bool { exchange.cancellationReason != nil }

    public var cancellationReason: HTTPCancellationReason? { exchange.cancellationReason }

    /// Registers `callback` to run once when the request is cancelled, on
    /// the thread that notices: a connection thread, the thread that calls
    /// `stop`, or a producer whose write overflowed the stream buffer. It
    /// runs at once on the calling thread if the request already was
    /// cancelled. It must return quickly and must not call
    /// `HTTPServer.stop`, which waits for connection threads.
    public func onCancel(_ callback: @escaping @Sendable (HTTPCancellationReason) -> Void) {
        exchange.onCancel(callback)
    }

    /// True once `respond` or `startStream` has been called successfully.
    public var hasResponded: Bool { exchange.hasHead }
}

/// The body of a streamed response, written by a producer on any thread.
///
/// Writes do not block: they queue data for the connection thread, which
/// sends it as the client reads. A stream ends with `finish()`, or with
/// `abort()` when the producer fails. A stream released without either is
/// aborted, so that a forgotten `finish()` cannot hold the connection open.
public final class HTTPStream: Sendable {
    private let exchange: Exchange
    private let isStarted: Bool

    init(exchange: Exchange, isStarted: Bool) {
        self.exchange = exchange
        self.isStarted = isStarted
    }

    deinit {
        if isStarted {
            exchange.endStream(aborted: true, note: "aborted a stream that was released without finish()")
        }
    }

    /// Queues `data` for sending. Throws `HTTPStreamError.cancelled` once
    /// the request is cancelled, so a producer learns that the client has
    /// gone at its next write.
    public func write(_ data: Data) throws(HTTPStreamError) {
        guard isStarted else { throw .notStarted }
        try exchange.appendStreamData(data)
    }

    /// Queues the UTF-8 bytes of `text` for sending.
    public func write(_ text: String) throws(HTTPStreamError) {
        try write(Data(text.utf8))
    }

    /// Ends the response normally once the queued data is sent.
    public func finish() {
        guard isStarted else { return }
        exchange.endStream(aborted: false)
    }

    /// Ends the response as failed: the data queued so far is sent, then
    /// the connection is closed without the final chunk, so an HTTP/1.1
    /// client sees an incomplete response.
    public func abort() {
        guard isStarted else { return }
        exchange.endStream(aborted: true, note: "the producer aborted the stream")
    }

    /// True once the stream has ended or the request was cancelled.
    public var isClosed: Bool { !isStarted || exchange.isStreamClosed }

    public var cancellationReason: HTTPCancellationReason? { exchange.cancellationReason }

    /// Registers `callback` to run once when the request is cancelled; see
    /// `HTTPResponder.onCancel`.
    public func onCancel(_ callback: @escaping @Sendable (HTTPCancellationReason) -> Void) {
        exchange.onCancel(callback)
    }
}
