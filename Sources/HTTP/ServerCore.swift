import CMicroHTTPD
import Foundation
import Synchronization

/// The part of `HTTPServer` that libmicrohttpd's callbacks reach through
/// their closure pointer: request admission, body collection, handler
/// dispatch, response queueing and the per-request log line.
///
/// The fields behind `registry` are read and written only while it is
/// locked; the other stored properties are immutable or atomic.
final class ServerCore: @unchecked Sendable {
    let handler: any HTTPHandler
    let limits: HTTPLimits
    let log: @Sendable (String) -> Void
    let libraryLog: LibraryLog

    private let requestIDPrefix: String
    private let requestCounter = Atomic<Int>(0)
    private let registry = NSCondition()
    private var activeExchanges: [ObjectIdentifier: Exchange] = [:]
    private var isStopping = false

    init(handler: any HTTPHandler, limits: HTTPLimits, log: @escaping @Sendable (String) -> Void) {
        self.handler = handler
        self.limits = limits
        self.log = log
        self.libraryLog = LibraryLog(log: log)
        // A random prefix keeps request ids unique across server restarts.
        self.requestIDPrefix = "req-" + String(UInt32.random(in: 0x10_0000...0xff_ffff), radix: 16)
    }

    var idleTimeoutSeconds: UInt32 { UInt32(limits.idleTimeoutSeconds) }

    // MARK: - Access handler

    /// Handles one call of the daemon's MHD_AccessHandlerCallback.
    /// libmicrohttpd calls it once when the header is complete, once per
    /// piece of body, and once more when the request is complete.
    func handleAccess(
        connection: OpaquePointer, url: UnsafePointer<CChar>?, method: UnsafePointer<CChar>?,
        version: UnsafePointer<CChar>?, uploadData: UnsafePointer<CChar>?, uploadDataSize: UnsafeMutablePointer<Int>,
        requestSlot: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    ) -> MHD_Result {
        guard let pointer = requestSlot.pointee else {
            let context = makeContext(connection: connection, url: url, method: method, version: version)
            requestSlot.pointee = Unmanaged.passRetained(context).toOpaque()
            return admit(context, connection: connection)
        }
        let context = Unmanaged<RequestContext>.fromOpaque(pointer).takeUnretainedValue()
        if context.responseQueued {
            return .YES
        }
        if uploadDataSize.pointee > 0 {
            let accepted = receiveBody(uploadData, count: uploadDataSize.pointee, into: context)
            uploadDataSize.pointee = 0
            return accepted ? .YES : .NO
        }
        return respondToCompleteRequest(context, connection: connection)
    }

    private func makeContext(
        connection: OpaquePointer, url: UnsafePointer<CChar>?, method: UnsafePointer<CChar>?,
        version: UnsafePointer<CChar>?
    ) -> RequestContext {
        let headers = ConnectionValues.headers(of: connection)
        let exchange = Exchange(
            requestID: requestID(clientValue: headers["x-request-id"]), maxStreamBufferBytes: limits.maxStreamBufferBytes)
        registry.lock()
        activeExchanges[ObjectIdentifier(exchange)] = exchange
        registry.unlock()
        return RequestContext(
            exchange: exchange, method: method.map { String(cString: $0) } ?? "",
            path: url.map { String(cString: $0) } ?? "", version: version.map { String(cString: $0) } ?? "",
            headers: headers, remoteAddress: ConnectionValues.remoteAddress(of: connection))
    }

    /// Returns the client's `X-Request-Id` when it is safe to log and echo,
    /// otherwise a new id.
    private func requestID(clientValue: String?) -> String {
        if let clientValue, (1...128).contains(clientValue.utf8.count),
            clientValue.utf8.allSatisfy({ byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                    || byte == 0x2e || byte == 0x5f || byte == 0x3a || byte == 0x2d
            })
        {
            return clientValue
        }
        let number = requestCounter.add(1, ordering: .relaxed).newValue
        return "\(requestIDPrefix)-\(number)"
    }

    /// Checks what is known once the header has arrived, and responds at
    /// once when the request cannot be served. Rejecting a body before it
    /// is read makes libmicrohttpd close the connection after the response.
    private func admit(_ context: RequestContext, connection: OpaquePointer) -> MHD_Result {
        if stopping {
            return queueServerResponse(Self.stoppingResponse, for: context, on: connection)
        }

        let headerBytes = cmhd_connection_header_size(connection)
        if headerBytes > limits.maxHeaderBytes {
            let response = HTTPResponse.error(
                status: 431,
                message: "The request header is \(headerBytes) bytes, over the limit of \(limits.maxHeaderBytes) bytes.",
                type: HTTPErrorType.invalidRequest, code: "request_header_fields_too_large",
                headers: ["Connection": "close"])
            return queueServerResponse(response, for: context, on: connection)
        }

        if let problem = Self.framingProblem(context.headers) {
            let response = HTTPResponse.error(
                status: 400, message: problem, type: HTTPErrorType.invalidRequest, code: "invalid_request_framing",
                headers: ["Connection": "close"])
            return queueServerResponse(response, for: context, on: connection)
        }

        if let declared = context.headers["content-length"].flatMap({ UInt64($0) }) {
            if declared > UInt64(limits.maxBodyBytes) {
                return queueServerResponse(
                    bodyTooLargeResponse(declaredBytes: declared), for: context, on: connection,
                    note: "rejected a request body of \(declared) bytes, more than the limit of \(limits.maxBodyBytes) bytes")
            }
            context.body.reserveCapacity(Int(declared))
        }
        return .YES
    }

    /// Describes a body length that two parsers could read differently,
    /// which is how request smuggling through a proxy works. libmicrohttpd
    /// 0.9.75 accepts both cases: it uses the first of several
    /// Content-Length values, and chunked encoding when Transfer-Encoding
    /// is present too. RFC 9112, section 6.3, allows rejecting both.
    private static func framingProblem(_ headers: [String: String]) -> String? {
        guard let contentLength = headers["content-length"] else { return nil }
        if contentLength.contains(",") {
            return "The request has more than one Content-Length value."
        }
        if headers["transfer-encoding"] != nil {
            return "The request has both Content-Length and Transfer-Encoding; send only one."
        }
        return nil
    }

    /// Appends a piece of body, or discards it once the body is over the
    /// limit. Returns false to make libmicrohttpd close the connection when
    /// a chunked body keeps going past twice the limit.
    private func receiveBody(_ data: UnsafePointer<CChar>?, count: Int, into context: RequestContext) -> Bool {
        guard let data else { return true }
        context.bodyBytesReceived += count
        if !context.bodyTooLarge, context.body.count + count <= limits.maxBodyBytes {
            context.body.append(UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: count)
            return true
        }
        if !context.bodyTooLarge {
            context.bodyTooLarge = true
            context.body = Data()
        }
        if context.bodyBytesReceived > 2 * limits.maxBodyBytes {
            context.exchange.note(
                "closed the connection after \(context.bodyBytesReceived) body bytes, over twice the limit of \(limits.maxBodyBytes)")
            return false
        }
        return true
    }

    private func respondToCompleteRequest(_ context: RequestContext, connection: OpaquePointer) -> MHD_Result {
        if context.bodyTooLarge {
            return queueServerResponse(
                bodyTooLargeResponse(declaredBytes: nil), for: context, on: connection,
                note: "rejected a request body larger than the limit of \(limits.maxBodyBytes) bytes")
        }
        if context.exchange.cancellationReason == .serverStopping {
            return queueServerResponse(Self.stoppingResponse, for: context, on: connection)
        }

        let request = HTTPRequest(
            id: context.exchange.requestID, method: context.method, path: context.path,
            query: ConnectionValues.queryArguments(of: connection), headers: context.headers, body: context.body,
            remoteAddress: context.remoteAddress, version: context.version)
        context.body = Data()
        return dispatch(request, context: context, connection: connection)
    }

    // MARK: - Handler dispatch

    /// Runs the handler on a thread of its own and waits for the response
    /// head while watching the client's socket.
    private func dispatch(_ request: HTTPRequest, context: RequestContext, connection: OpaquePointer) -> MHD_Result {
        let exchange = context.exchange
        let socket = cmhd_connection_socket(connection)

        // The time the handler takes is not idle time of the connection.
        _ = cmhd_set_connection_timeout(connection, 0)
        let startError = DetachedThread.start { [self] in
            runHandler(request, responder: HTTPResponder(exchange: exchange))
        }
        if startError != 0 {
            _ = cmhd_set_connection_timeout(connection, idleTimeoutSeconds)
            let message = String(cString: strerror(startError))
            exchange.note("could not start a handler thread: \(message)")
            let response = HTTPResponse.error(
                status: 503, message: "The server could not start a thread for the request; retry later.",
                type: HTTPErrorType.server, code: "server_overloaded", headers: ["Connection": "close"])
            return queueServerResponse(response, for: context, on: connection)
        }

        guard let head = exchange.waitForHead(socket: socket) else {
            if exchange.cancellationReason == .serverStopping {
                _ = cmhd_set_connection_timeout(connection, idleTimeoutSeconds)
                return queueServerResponse(Self.stoppingResponse, for: context, on: connection)
            }
            return .NO
        }
        _ = cmhd_set_connection_timeout(connection, idleTimeoutSeconds)

        context.responseQueued = true
        switch head {
        case let .complete(response):
            return ResponseQueue.queue(response, exchange: exchange, on: connection)
        case let .stream(status, headers):
            let source = StreamSource(
                exchange: exchange, connection: connection, socket: socket, idleTimeoutSeconds: idleTimeoutSeconds)
            return ResponseQueue.queueStream(status: status, headers: headers, source: source, on: connection)
        }
    }

    private func runHandler(_ request: HTTPRequest, responder: HTTPResponder) {
        do {
            try handler.handle(request, responder: responder)
        } catch {
            let exchange = responder.exchange
            let note = "handler threw: \(error)"
            if !exchange.setHead(.complete(Self.handlerFailedResponse), note: note),
                !exchange.endStream(aborted: true, note: note)
            {
                exchange.note(note)
            }
        }
    }

    /// Queues a response that the server produced itself, such as 413.
    private func queueServerResponse(
        _ response: HTTPResponse, for context: RequestContext, on connection: OpaquePointer, note: String? = nil
    ) -> MHD_Result {
        if let note { context.exchange.note(note) }
        context.responseQueued = true
        context.exchange.recordServerResponse(response)
        return ResponseQueue.queue(response, exchange: context.exchange, on: connection)
    }

    private func bodyTooLargeResponse(declaredBytes: UInt64?) -> HTTPResponse {
        let size = declaredBytes.map { "The request body has \($0) bytes, more than" } ?? "The request body is larger than"
        return HTTPResponse.error(
            status: 413, message: "\(size) the limit of \(limits.maxBodyBytes) bytes.",
            type: HTTPErrorType.invalidRequest, code: "request_too_large", headers: ["Connection": "close"])
    }

    static let stoppingResponse = HTTPResponse.error(
        status: 503, message: "The server is shutting down; retry the request later.", type: HTTPErrorType.server,
        code: "server_shutting_down", headers: ["Connection": "close"])

    static let handlerFailedResponse = HTTPResponse.error(
        status: 500, message: "The server failed to produce a response.", type: HTTPErrorType.server)

    // MARK: - Completion

    /// Cancels the request unless it completed, unregisters it and logs it.
    /// This is the body of the daemon's MHD_RequestCompletedCallback.
    func completeRequest(
        _ context: RequestContext, connection: OpaquePointer?, termination: MHD_RequestTerminationCode
    ) {
        let exchange = context.exchange
        // libmicrohttpd has at most shut down its own sending side by now,
        // so the probe still detects whether the client closed or reset.
        let peerHasClosed =
            termination == .REQUEST_TERMINATED_WITH_ERROR && connection.map {
                SocketProbe.peerHasClosed(cmhd_connection_socket($0))
            } ?? false
        exchange.complete(termination, peerHasClosed: peerHasClosed)
        if let connection {
            // libmicrohttpd's own error responses, such as 400 for a
            // malformed chunked body, are not recorded anywhere else.
            exchange.recordLibraryStatus(Int(cmhd_connection_http_status(connection)))
        }
        registry.lock()
        activeExchanges[ObjectIdentifier(exchange)] = nil
        registry.broadcast()
        registry.unlock()
        log(RequestLogLine.format(context: context, summary: exchange.summary, termination: termination))
    }

    // MARK: - Stopping

    var stopping: Bool {
        registry.lock()
        defer { registry.unlock() }
        return isStopping
    }

    /// Makes new requests on open keep-alive connections get 503.
    func beginStopping() {
        registry.lock()
        isStopping = true
        registry.unlock()
    }

    var activeRequestCount: Int {
        registry.lock()
        defer { registry.unlock() }
        return activeExchanges.count
    }

    /// Waits until no request is active or `deadline()` has passed, and
    /// returns the number of requests still active. `deadline` is read again
    /// on every check, so that a later `stop` call can shorten it.
    func waitForActiveRequests(deadline: () -> ContinuousClock.Instant) -> Int {
        registry.lock()
        defer { registry.unlock() }
        while !activeExchanges.isEmpty, ContinuousClock.now < deadline() {
            _ = registry.wait(until: Date(timeIntervalSinceNow: 0.05))
        }
        return activeExchanges.count
    }

    /// Cancels every active request with `HTTPCancellationReason.serverStopping`.
    func cancelActiveRequests() {
        registry.lock()
        let exchanges = Array(activeExchanges.values)
        registry.unlock()
        for exchange in exchanges {
            exchange.cancel(.serverStopping)
        }
    }
}

/// The state that a streamed response's content-reader callback needs,
/// retained by libmicrohttpd until it calls the free callback.
final class StreamSource {
    let exchange: Exchange
    let connection: OpaquePointer
    let socket: Int32
    let idleTimeoutSeconds: UInt32

    init(exchange: Exchange, connection: OpaquePointer, socket: Int32, idleTimeoutSeconds: UInt32) {
        self.exchange = exchange
        self.connection = connection
        self.socket = socket
        self.idleTimeoutSeconds = idleTimeoutSeconds
    }
}
