import CMicroHTTPD
import Foundation

/// The state of one request that its connection thread, its handler thread
/// and any stream producer share: the response head, the buffered stream
/// data, cancellation and the fields of the request's log line.
///
/// Every mutable field is read and written only while `condition` is
/// locked. Cancellation callbacks run after the lock is released, so they
/// may call back into the exchange.
final class Exchange: @unchecked Sendable {
    enum Head {
        case complete(HTTPResponse)
        case stream(status: Int, headers: [String: String])
    }

    private enum StreamEnd {
        case finished
        case aborted
    }

    /// How often a connection thread that waits for the handler or the
    /// stream producer checks whether the client has gone away.
    static let disconnectPollInterval: TimeInterval = 0.1

    let requestID: String
    private let maxStreamBufferBytes: Int
    private let condition = NSCondition()

    private var head: Head?
    private var status = 0
    private var chunks: [Data] = []
    /// Index of the first chunk not yet fully copied out, and the number of
    /// its bytes already copied.
    private var chunkIndex = 0
    private var chunkOffset = 0
    private var bufferedBytes = 0
    private var streamEnd: StreamEnd?
    private var cancellation: HTTPCancellationReason?
    private var cancellationCallbacks: [@Sendable (HTTPCancellationReason) -> Void] = []
    private var completed = false
    private var bodyBytesOut = 0
    private var logFields: [(name: String, value: String)] = []
    private var notes: [String] = []

    init(requestID: String, maxStreamBufferBytes: Int) {
        self.requestID = requestID
        self.maxStreamBufferBytes = maxStreamBufferBytes
    }

    private func locked<Result>(_ body: () throws -> Result) rethrows -> Result {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    // MARK: - Handler side

    /// Stores the response head, and `note` for the log line with it.
    /// Returns false, and stores nothing, when a head is already set or the
    /// request was cancelled.
    func setHead(_ newHead: Head, note: String? = nil) -> Bool {
        locked {
            guard head == nil, cancellation == nil else { return false }
            head = newHead
            if let note {
                notes.append(note)
            }
            switch newHead {
            case let .complete(response):
                status = response.status
                bodyBytesOut = response.body.count
            case let .stream(streamStatus, _):
                status = streamStatus
            }
            condition.broadcast()
            return true
        }
    }

    var hasHead: Bool { locked { head != nil } }

    /// Queues stream data for the connection thread to send.
    func appendStreamData(_ data: Data) throws(HTTPStreamError) {
        condition.lock()
        if let reason = cancellation {
            condition.unlock()
            throw .cancelled(reason)
        }
        if streamEnd != nil {
            condition.unlock()
            throw .ended
        }
        if data.isEmpty {
            condition.unlock()
            return
        }
        if bufferedBytes + data.count > maxStreamBufferBytes {
            condition.unlock()
            note("the stream buffer exceeded \(maxStreamBufferBytes) bytes because the client reads too slowly")
            cancel(.streamBufferFull)
            throw .cancelled(.streamBufferFull)
        }
        chunks.append(data)
        bufferedBytes += data.count
        condition.broadcast()
        condition.unlock()
    }

    /// Ends the stream, and stores `note` for the log line with it.
    /// `aborted` ends it without the closing chunk, so the client can tell
    /// that the response is incomplete. Returns false when the stream had
    /// already ended or the request was cancelled.
    @discardableResult
    func endStream(aborted: Bool, note: String? = nil) -> Bool {
        locked {
            guard streamEnd == nil, cancellation == nil else { return false }
            streamEnd = aborted ? .aborted : .finished
            if let note {
                notes.append(note)
            }
            condition.broadcast()
            return true
        }
    }

    var isStreamClosed: Bool { locked { streamEnd != nil || cancellation != nil || completed } }

    var cancellationReason: HTTPCancellationReason? { locked { cancellation } }

    /// Registers `callback` to run once when the request is cancelled. It
    /// runs at once, on the calling thread, if the request already was.
    func onCancel(_ callback: @escaping @Sendable (HTTPCancellationReason) -> Void) {
        let reason: HTTPCancellationReason? = locked {
            if let cancellation { return cancellation }
            cancellationCallbacks.append(callback)
            return nil
        }
        if let reason { callback(reason) }
    }

    func setLogField(_ name: String, _ value: String) {
        locked {
            if let index = logFields.firstIndex(where: { $0.name == name }) {
                logFields[index].value = value
            } else {
                logFields.append((name, value))
            }
        }
    }

    /// Adds a message to the request's log line, for errors that the server
    /// handles without failing the request.
    func note(_ message: String) {
        locked { notes.append(message) }
    }

    // MARK: - Connection side

    /// Cancels the request and runs the cancellation callbacks. Does nothing
    /// when the request was already cancelled or has completed.
    func cancel(_ reason: HTTPCancellationReason) {
        let callbacks: [@Sendable (HTTPCancellationReason) -> Void] = locked {
            guard cancellation == nil, !completed else { return [] }
            cancellation = reason
            chunks.removeAll()
            chunkIndex = 0
            chunkOffset = 0
            bufferedBytes = 0
            let pending = cancellationCallbacks
            cancellationCallbacks.removeAll()
            condition.broadcast()
            return pending
        }
        for callback in callbacks {
            callback(reason)
        }
    }

    /// Blocks until the handler sets the head, and returns it. Returns nil
    /// when the request is cancelled first, including when the client
    /// disconnects while it waits.
    func waitForHead(socket: Int32) -> Head? {
        while true {
            condition.lock()
            if let head {
                condition.unlock()
                return head
            }
            if cancellation != nil {
                condition.unlock()
                return nil
            }
            let signalled = condition.wait(until: Date(timeIntervalSinceNow: Self.disconnectPollInterval))
            condition.unlock()
            if !signalled, SocketProbe.peerHasClosed(socket) {
                cancel(.clientDisconnected)
                return nil
            }
        }
    }

    /// Copies buffered stream data into `buffer`, blocking until there is
    /// some, and returns the number of bytes copied or one of libmicrohttpd's
    /// end-of-response codes. This is the body of the stream's
    /// MHD_ContentReaderCallback.
    ///
    /// libmicrohttpd counts the time that this call blocks as idle time, so
    /// a producer slower than the idle timeout would get the connection
    /// closed. The connection's timeout is therefore switched off while the
    /// call waits, and switched back on (which restarts its timer) before it
    /// returns.
    func readStream(
        into buffer: UnsafeMutablePointer<CChar>, capacity: Int, socket: Int32, connection: OpaquePointer,
        idleTimeoutSeconds: UInt32
    ) -> Int {
        var timeoutSuspended = false
        defer {
            if timeoutSuspended {
                _ = cmhd_set_connection_timeout(connection, idleTimeoutSeconds)
            }
        }

        while true {
            condition.lock()
            if bufferedBytes > 0 {
                let copied = copyBufferedBytes(into: buffer, capacity: capacity)
                condition.unlock()
                return copied
            }
            if cancellation != nil || streamEnd == .aborted {
                condition.unlock()
                return Int(CMHD_CONTENT_READER_END_WITH_ERROR)
            }
            if streamEnd == .finished {
                condition.unlock()
                return Int(CMHD_CONTENT_READER_END_OF_STREAM)
            }
            if !timeoutSuspended {
                condition.unlock()
                timeoutSuspended = true
                _ = cmhd_set_connection_timeout(connection, 0)
                continue
            }
            let signalled = condition.wait(until: Date(timeIntervalSinceNow: Self.disconnectPollInterval))
            condition.unlock()
            if !signalled, SocketProbe.peerHasClosed(socket) {
                cancel(.clientDisconnected)
                return Int(CMHD_CONTENT_READER_END_WITH_ERROR)
            }
        }
    }

    /// Must be called with `condition` locked and `bufferedBytes > 0`.
    private func copyBufferedBytes(into buffer: UnsafeMutablePointer<CChar>, capacity: Int) -> Int {
        var copied = 0
        while copied < capacity, chunkIndex < chunks.count {
            let chunk = chunks[chunkIndex]
            let count = min(chunk.count - chunkOffset, capacity - copied)
            chunk.withUnsafeBytes { bytes in
                guard let base = bytes.baseAddress else { return }
                UnsafeMutableRawPointer(buffer + copied).copyMemory(from: base + chunkOffset, byteCount: count)
            }
            copied += count
            chunkOffset += count
            if chunkOffset == chunk.count {
                chunkIndex += 1
                chunkOffset = 0
            }
        }
        bufferedBytes -= copied
        bodyBytesOut += copied

        // Drop fully sent chunks in batches, so that a long queue of small
        // writes is not shifted once per read.
        if chunkIndex == chunks.count {
            chunks.removeAll(keepingCapacity: true)
            chunkIndex = 0
        } else if chunkIndex >= 64, chunkIndex * 2 >= chunks.count {
            chunks.removeFirst(chunkIndex)
            chunkIndex = 0
        }
        return copied
    }

    /// Records a response that the server queued itself, without a handler.
    func recordServerResponse(_ response: HTTPResponse) {
        locked {
            status = response.status
            bodyBytesOut = response.body.count
        }
    }

    /// Records the status of a response that libmicrohttpd queued itself,
    /// unless the server queued one.
    func recordLibraryStatus(_ libraryStatus: Int) {
        locked {
            if status == 0 {
                status = libraryStatus
            }
        }
    }

    /// Marks the request as finished by libmicrohttpd and cancels it unless
    /// its response was delivered in full. `peerHasClosed` distinguishes a
    /// send error caused by a client that went away from other errors.
    func complete(_ termination: MHD_RequestTerminationCode, peerHasClosed: Bool) {
        // An if chain rather than a switch: libmicrohttpd declares the enum
        // closed, so Swift flags a default case as never executed, and an
        // exhaustive switch would stop compiling if a later version added a
        // code.
        let reason: HTTPCancellationReason?
        if termination == .REQUEST_TERMINATED_COMPLETED_OK {
            // A stream that its producer never ended did not reach the client
            // in full: libmicrohttpd sends no body for HEAD requests.
            reason = locked { head.isStreamHead && streamEnd == nil ? .connectionClosed : nil }
        } else if termination == .REQUEST_TERMINATED_TIMEOUT_REACHED {
            reason = .timedOut
        } else if termination == .REQUEST_TERMINATED_DAEMON_SHUTDOWN {
            reason = .serverStopping
        } else if termination == .REQUEST_TERMINATED_READ_ERROR || termination == .REQUEST_TERMINATED_CLIENT_ABORT {
            reason = .clientDisconnected
        } else if termination == .REQUEST_TERMINATED_WITH_ERROR, peerHasClosed {
            reason = .clientDisconnected
        } else {
            reason = .connectionClosed
        }
        if let reason {
            cancel(reason)
        }
        locked {
            completed = true
            condition.broadcast()
        }
    }

    /// The fields of the request's log line that the exchange tracks.
    struct Summary {
        var status: Int
        var bodyBytesOut: Int
        var cancellation: HTTPCancellationReason?
        var logFields: [(name: String, value: String)]
        var notes: [String]
    }

    var summary: Summary {
        locked {
            Summary(
                status: status, bodyBytesOut: bodyBytesOut, cancellation: cancellation, logFields: logFields,
                notes: notes)
        }
    }
}

extension Optional where Wrapped == Exchange.Head {
    fileprivate var isStreamHead: Bool {
        if case .stream? = self { return true }
        return false
    }
}
