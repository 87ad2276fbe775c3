import CMicroHTTPD
import Foundation

/// An HTTP/1.1 server that hands complete requests to an `HTTPHandler`.
///
/// ## Why libmicrohttpd
///
/// The server does not parse HTTP itself, because hand-written parsers are
/// a common source of request smuggling and memory bugs. GNU libmicrohttpd
/// (LGPL-2.1+) parses request lines, headers and chunked bodies, enforces
/// the header memory limit, and writes chunked responses. It is a small C
/// library for embedding an HTTP/1.1 server, maintained as part of the GNU
/// project and packaged by Debian (libmicrohttpd-dev) and Homebrew
/// (libmicrohttpd). This module adds body limits, JSON errors, streaming,
/// disconnect detection, graceful shutdown and request logging on top.
///
/// ## Threading model
///
/// libmicrohttpd runs in thread-per-connection mode: every connection gets
/// its own thread, which reads the request and writes the response. Those
/// threads may block in callbacks, which the event-loop modes forbid, and
/// the server relies on that in two places:
///
/// - The handler runs on a new thread for each request, while the
///   connection thread waits for the response head and checks the client's
///   socket every 100 ms. A handler may therefore block for as long as it
///   needs, and a client that disconnects meanwhile cancels the request
///   (`HTTPResponder.onCancel`).
/// - A streamed body is sent by the connection thread, which blocks in
///   libmicrohttpd's content-reader callback until the producer queues data,
///   checking the socket at the same interval. Writes never block the
///   producer. Once the request is cancelled they throw.
///
/// Each active request thus holds two threads. `HTTPLimits.maxConnections`
/// bounds the number of connections, and with it the number of threads.
///
/// ## Errors from the HTTP layer
///
/// Responses that the server produces itself (400 for ambiguous body
/// framing, 413, 431, 500 and 503) have OpenAI's JSON error body (see
/// `HTTPResponse.error`). Requests that libmicrohttpd rejects while parsing
/// get libmicrohttpd 0.9.75's fixed HTML bodies, because that version
/// offers no hook to replace them: 400 for a malformed request line,
/// header or chunked body, 414 or 431 for a header that does not fit the
/// connection's memory pool, and 505 for an unsupported version. Some
/// malformed input, such as a request line with NUL bytes, gets no
/// response, and the connection closes after the idle timeout. Requests
/// rejected before their header is complete never reach the handler and
/// get no request log line, but libmicrohttpd's own message goes to the
/// log.
public final class HTTPServer: Sendable {
    public let host: String
    /// The bound port: the one requested, or the one the system chose when
    /// the server was created with port 0.
    public let port: Int
    public let limits: HTTPLimits

    private let core: ServerCore
    private let lifecycle: Lifecycle

    /// How long `stop` waits for cancelled requests to end before it closes
    /// their connections.
    private static let cancellationWait = Duration.seconds(1)

    /// Starts listening on `host` and `port`. The host is a numeric IPv4 or
    /// IPv6 address or a name such as `localhost`, which binds the first
    /// address it resolves to. Port 0 picks a free port. `log` receives one
    /// line per request and the server's start, stop and error messages,
    /// from any thread.
    public init(
        host: String = "127.0.0.1", port: Int, limits: HTTPLimits = HTTPLimits(), handler: any HTTPHandler,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        try limits.validate()
        guard (0...65535).contains(port) else {
            throw HTTPServerError.invalidPort(port)
        }
        let address = try ListenAddress.resolve(host: host, port: port)
        let core = ServerCore(handler: handler, limits: limits, log: log)

        var flags = MHD_USE_THREAD_PER_CONNECTION.rawValue | MHD_USE_INTERNAL_POLLING_THREAD.rawValue
            | MHD_USE_ITC.rawValue | MHD_USE_ERROR_LOG.rawValue | MHD_USE_AUTO.rawValue
        if address.isIPv6 {
            flags |= MHD_USE_IPv6.rawValue
        }
        let corePointer = Unmanaged.passRetained(core)
        let daemon = address.withSocketAddress { socketAddress in
            var settings = CMHDDaemonSettings(
                flags: flags, port: UInt16(port), address: socketAddress, connection_limit: UInt32(limits.maxConnections),
                per_address_connection_limit: UInt32(limits.maxConnectionsPerAddress),
                connection_timeout: UInt32(limits.idleTimeoutSeconds),
                connection_memory_limit: limits.connectionMemoryBytes, access_handler: accessHandler,
                completed_handler: requestCompleted, logger: libraryLogger, context: corePointer.toOpaque())
            return cmhd_start_daemon(&settings)
        }
        guard let daemon else {
            corePointer.release()
            throw HTTPServerError.startFailed(
                host: host, port: port, reason: core.libraryLog.latest ?? "libmicrohttpd reported no reason")
        }
        core.libraryLog.daemonStarted()

        self.host = host
        self.port = Int(cmhd_daemon_port(daemon))
        self.limits = limits
        self.core = core
        self.lifecycle = Lifecycle(daemon: daemon, core: corePointer)
        log(
            "http server listening on \(address.displayHost):\(self.port) max_connections=\(limits.maxConnections)"
                + " max_body_bytes=\(limits.maxBodyBytes) idle_timeout_s=\(limits.idleTimeoutSeconds)")
    }

    /// Starts a server whose handler is `handle`.
    public convenience init(
        host: String = "127.0.0.1", port: Int, limits: HTTPLimits = HTTPLimits(),
        log: @escaping @Sendable (String) -> Void = { _ in },
        handle: @escaping @Sendable (HTTPRequest, HTTPResponder) throws -> Void
    ) throws {
        try self.init(host: host, port: port, limits: limits, handler: ClosureHandler(handle: handle), log: log)
    }

    deinit {
        stop(gracePeriod: 0)
    }

    /// Stops the server. It stops accepting connections at once and responds
    /// to new requests on open keep-alive connections with 503. It lets
    /// requests in progress finish for up to `gracePeriod` seconds, then
    /// cancels the rest (`HTTPCancellationReason.serverStopping`): a
    /// request whose handler has not responded gets a 503, and a stream is
    /// cut off. After waiting up to one more second for those, it closes
    /// every connection.
    ///
    /// Returns when the server has stopped. A call while another is in
    /// progress shortens the grace period to the smaller of the two and
    /// waits for the first call to finish.
    ///
    /// NOTE: a handler thread that ignores cancellation keeps running after
    /// `stop` returns, and its response is dropped.
    public func stop(gracePeriod: Double = 10) {
        let graceSeconds = gracePeriod.isNaN ? 0 : max(0, min(gracePeriod, 86_400))
        let deadline = ContinuousClock.now + .milliseconds(Int64(graceSeconds * 1000))
        guard let daemon = lifecycle.beginStopping(deadline: deadline) else {
            lifecycle.waitUntilStopped()
            return
        }

        core.beginStopping()
        let listenSocket = MHD_quiesce_daemon(daemon)
        if listenSocket != MHD_INVALID_SOCKET {
            // libmicrohttpd stops calling accept, but the kernel would keep
            // completing handshakes into the backlog, so clients would hang
            // until the socket closes. On Linux, shutting down a listening
            // socket makes new connections fail at once; elsewhere it may do
            // nothing. The descriptor itself stays open until
            // MHD_stop_daemon has returned, as libmicrohttpd requires.
            _ = shutdown(listenSocket, Int32(SHUT_RDWR))
        }
        core.log(
            "http server stopping: stopped accepting connections, \(core.activeRequestCount) requests in progress,"
                + " grace period \(String(format: "%.1f", graceSeconds)) s")

        let remaining = core.waitForActiveRequests(deadline: { lifecycle.deadline })
        if remaining > 0 {
            core.log("http server stopping: cancelling \(remaining) requests still in progress")
            core.cancelActiveRequests()
            // Cancelled requests end within a poll interval, sending a 503
            // when their handler had not responded yet. Only requests whose
            // body is still arriving can outlast this wait.
            let cancelDeadline = ContinuousClock.now + Self.cancellationWait
            _ = core.waitForActiveRequests(deadline: { cancelDeadline })
        }
        MHD_stop_daemon(daemon)
        if listenSocket != MHD_INVALID_SOCKET {
            close(listenSocket)
        }
        lifecycle.finishStopping()
        core.log("http server stopped")
    }

    /// Blocks the calling thread until the server has stopped.
    public func waitUntilStopped() {
        lifecycle.waitUntilStopped()
    }

    /// True until `stop` begins.
    public var isRunning: Bool {
        lifecycle.isRunning
    }

    /// Number of requests between the arrival of their header and the end
    /// of their response.
    public var activeRequestCount: Int {
        core.activeRequestCount
    }

    /// Stops the server when the process receives one of `signals`: the
    /// first signal calls `stop(gracePeriod:)` on a new thread, and a
    /// further one shortens the grace period to zero. From this call on the
    /// signals no longer end the process. Their default action is restored
    /// once the server has stopped, so a later signal ends the process as
    /// usual.
    ///
    /// A command-line tool calls this and then `waitUntilStopped()` on its
    /// main thread.
    ///
    /// The signals are caught by a process-wide handler (see
    /// StopSignals.swift), whichever thread they reach, and unblocked in
    /// the calling thread in case the process inherited them blocked.
    public func stopOnSignals(_ signals: [Int32] = [SIGINT, SIGTERM], gracePeriod: Double = 10) {
        let weakServer = WeakServer(self)
        guard let watcher = StopSignalWatcher(signals: signals, onSignal: { signalNumber in
            weakServer.server?.handleStopSignal(signalNumber, gracePeriod: gracePeriod)
        }) else {
            core.log("http server: could not watch signals \(signals) (no pipe or thread); they keep their default action")
            return
        }
        lifecycle.addSignalWatcher(watcher)
    }

    private func handleStopSignal(_ signalNumber: Int32, gracePeriod: Double) {
        let isFirst = lifecycle.recordStopSignal()
        let grace = isFirst ? gracePeriod : 0
        core.log(
            isFirst
                ? "http server received signal \(signalNumber), stopping"
                : "http server received signal \(signalNumber) again, cancelling requests in progress")
        let startError = DetachedThread.start { [self] in
            stop(gracePeriod: grace)
        }
        if startError != 0 {
            core.log("http server could not start a thread to stop: \(String(cString: strerror(startError)))")
        }
    }
}

/// Errors from `HTTPServer.init`.
public enum HTTPServerError: Error, Equatable, CustomStringConvertible {
    case invalidLimits(String)
    case invalidPort(Int)
    case invalidHost(String, reason: String)
    case startFailed(host: String, port: Int, reason: String)

    public var description: String {
        switch self {
        case let .invalidLimits(message):
            return "invalid HTTP limits: \(message)"
        case let .invalidPort(port):
            return "invalid port \(port); use 0 to 65535"
        case let .invalidHost(host, reason):
            return "invalid listen host \(host.debugDescription): \(reason)"
        case let .startFailed(host, port, reason):
            return "could not start the HTTP server on \(host):\(port): \(reason)"
        }
    }
}

private struct ClosureHandler: HTTPHandler {
    let handle: @Sendable (HTTPRequest, HTTPResponder) throws -> Void

    func handle(_ request: HTTPRequest, responder: HTTPResponder) throws {
        try handle(request, responder)
    }
}

private final class WeakServer: Sendable {
    // `weak let` needs Swift 6.1 language features; a `nonisolated(unsafe)
    // weak var` that is written only in `init` is equivalent.
    nonisolated(unsafe) weak var server: HTTPServer?

    init(_ server: HTTPServer) {
        self.server = server
    }
}

/// The daemon handle and the stop state of an `HTTPServer`. Every field is
/// read and written only while `condition` is locked.
private final class Lifecycle: @unchecked Sendable {
    private enum State {
        case running
        case stopping
        case stopped
    }

    private let condition = NSCondition()
    private var state = State.running
    private var daemon: OpaquePointer?
    private var core: Unmanaged<ServerCore>?
    private var stopDeadline = ContinuousClock.now
    private var stopSignalCount = 0
    private var signalWatchers: [StopSignalWatcher] = []

    init(daemon: OpaquePointer, core: Unmanaged<ServerCore>) {
        self.daemon = daemon
        self.core = core
    }

    /// Moves from running to stopping and returns the daemon. When the
    /// server is already stopping, moves its deadline earlier if `deadline`
    /// is, and returns nil; when it has stopped, returns nil.
    func beginStopping(deadline: ContinuousClock.Instant) -> OpaquePointer? {
        condition.lock()
        defer { condition.unlock() }
        switch state {
        case .running:
            state = .stopping
            stopDeadline = deadline
            return daemon
        case .stopping:
            stopDeadline = min(stopDeadline, deadline)
            return nil
        case .stopped:
            return nil
        }
    }

    var deadline: ContinuousClock.Instant {
        condition.lock()
        defer { condition.unlock() }
        return stopDeadline
    }

    var isRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        return state == .running
    }

    /// Marks the server stopped, releases the callback context, cancels the
    /// signal watchers and restores the signals' default action.
    func finishStopping() {
        condition.lock()
        state = .stopped
        daemon = nil
        let retainedCore = core
        core = nil
        let watchers = signalWatchers
        signalWatchers = []
        condition.broadcast()
        condition.unlock()

        // libmicrohttpd has joined its threads, so no callback can still use
        // the context.
        retainedCore?.release()
        for watcher in watchers {
            watcher.cancel()
        }
    }

    func waitUntilStopped() {
        condition.lock()
        while state != .stopped {
            condition.wait()
        }
        condition.unlock()
    }

    /// Counts a stop signal and returns true for the first one.
    func recordStopSignal() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        stopSignalCount += 1
        return stopSignalCount == 1
    }

    func addSignalWatcher(_ watcher: StopSignalWatcher) {
        condition.lock()
        let isStopped = state == .stopped
        if !isStopped {
            signalWatchers.append(watcher)
        }
        condition.unlock()
        if isStopped {
            watcher.cancel()
        }
    }
}

// MARK: - libmicrohttpd callbacks

/// The daemon's MHD_AccessHandlerCallback; the closure argument is the
/// retained `ServerCore`.
private let accessHandler: MHD_AccessHandlerCallback = {
    context, connection, url, method, version, uploadData, uploadDataSize, requestSlot in
    guard let context, let connection, let uploadDataSize, let requestSlot else { return .NO }
    let core = Unmanaged<ServerCore>.fromOpaque(context).takeUnretainedValue()
    return core.handleAccess(
        connection: connection, url: url, method: method, version: version, uploadData: uploadData,
        uploadDataSize: uploadDataSize, requestSlot: requestSlot)
}

/// The daemon's MHD_RequestCompletedCallback. It takes back the reference
/// to the request's context that the first access-handler call stored.
private let requestCompleted: MHD_RequestCompletedCallback = { context, connection, requestSlot, termination in
    guard let context, let requestSlot, let pointer = requestSlot.pointee else { return }
    requestSlot.pointee = nil
    let core = Unmanaged<ServerCore>.fromOpaque(context).takeUnretainedValue()
    let requestContext = Unmanaged<RequestContext>.fromOpaque(pointer).takeRetainedValue()
    core.completeRequest(requestContext, connection: connection, termination: termination)
}

/// The daemon's MHD_LogCallback; formats libmicrohttpd's printf-style
/// message and passes it to the rate-limited library log.
private let libraryLogger: MHD_LogCallback = { context, format, arguments in
    guard let context, let format, let arguments else { return }
    var buffer = [CChar](repeating: 0, count: 1024)
    _ = vsnprintf(&buffer, buffer.count, format, arguments)
    let core = Unmanaged<ServerCore>.fromOpaque(context).takeUnretainedValue()
    core.libraryLog.record(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
}
