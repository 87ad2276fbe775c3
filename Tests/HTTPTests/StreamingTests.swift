import Foundation
import HTTP
import Synchronization
import Testing

/// Keeps a stream alive after the handler returns, as a producer would.
final class StreamHolder: Sendable {
    private let stream = Mutex<HTTPStream?>(nil)

    func keep(_ newStream: HTTPStream) {
        stream.withLock { $0 = newStream }
    }

    var current: HTTPStream? { stream.withLock { $0 } }

    func release() {
        stream.withLock { $0 = nil }
    }
}

/// The first cancellation reason that a request reported, and when.
final class CancellationRecord: Sendable {
    private let state = Mutex<(reason: HTTPCancellationReason, time: ContinuousClock.Instant)?>(nil)
    let flag = Flag()

    func record(_ reason: HTTPCancellationReason) {
        let isFirst = state.withLock { current -> Bool in
            guard current == nil else { return false }
            current = (reason, ContinuousClock.now)
            return true
        }
        if isFirst { flag.raise() }
    }

    var reason: HTTPCancellationReason? { state.withLock { $0?.reason } }
    var time: ContinuousClock.Instant? { state.withLock { $0?.time } }
}

struct StreamingTests {
    @Test func streamArrivesChunkByChunk() throws {
        let acknowledgements = (0..<3).map { _ in Flag() }
        let producerErrors = Mutex<[String]>([])
        let server = try startServer { _, responder in
            let stream = responder.startStream(
                headers: ["Content-Type": "text/event-stream", "Cache-Control": "no-cache"])
            Thread.detachNewThread {
                // Each event is written only after the client has read the
                // previous one, so the test fails unless every write reaches
                // the client before the stream ends.
                for index in 0..<3 {
                    do {
                        try stream.write("data: {\"index\": \(index)}\n\n")
                    } catch {
                        producerErrors.withLock { $0.append("\(error)") }
                        return
                    }
                    if !acknowledgements[index].wait(timeout: 10) {
                        producerErrors.withLock { $0.append("no acknowledgement for event \(index)") }
                        stream.abort()
                        return
                    }
                }
                stream.finish()
            }
        }
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.sendRequest(path: "/v1/chat/completions")
        let head = try client.readHead()
        #expect(head.status == 200)
        #expect(head.headers["transfer-encoding"] == "chunked")
        #expect(head.headers["content-type"] == "text/event-stream")
        #expect(head.headers["cache-control"] == "no-cache")
        #expect(head.headers["x-request-id"] != nil)

        for index in 0..<3 {
            let chunk = try #require(try client.readChunk())
            #expect(String(decoding: chunk, as: UTF8.self) == "data: {\"index\": \(index)}\n\n")
            acknowledgements[index].raise()
        }
        #expect(try client.readChunk() == nil)
        #expect(producerErrors.withLock { $0 }.isEmpty)

        // The connection stays usable after a finished stream.
        try client.sendRequest(path: "/again")
        #expect(try client.readHead().status == 200)
    }

    @Test func disconnectCancelsIdleStream() throws {
        let holder = StreamHolder()
        let cancellation = CancellationRecord()
        let server = try startServer { _, responder in
            let stream = responder.startStream(headers: ["Content-Type": "text/event-stream"])
            stream.onCancel { cancellation.record($0) }
            try stream.write("data: first\n\n")
            // The producer now goes quiet, as during a long prefill; only the
            // connection thread's socket check can notice the disconnect.
            holder.keep(stream)
        }
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.sendRequest(path: "/stream")
        #expect(try client.readHead().status == 200)
        #expect(try client.readChunk() == Data("data: first\n\n".utf8))
        client.close()
        let closedAt = ContinuousClock.now

        #expect(cancellation.flag.wait(timeout: 5))
        #expect(cancellation.reason == .clientDisconnected)
        if let time = cancellation.time {
            let delay = seconds(time - closedAt)
            #expect(delay < 1.5, "cancelled \(delay) s after the disconnect")
        }
        let stream = try #require(holder.current)
        #expect(stream.isClosed)
        #expect(throws: HTTPStreamError.cancelled(.clientDisconnected)) { try stream.write("data: late\n\n") }
        holder.release()
    }

    @Test func disconnectMakesWriteThrow() throws {
        let writeError = Mutex<HTTPStreamError?>(nil)
        let failed = Flag()
        let server = try startServer { _, responder in
            let stream = responder.startStream(headers: ["Content-Type": "text/event-stream"])
            Thread.detachNewThread {
                for index in 0..<2000 {
                    do throws(HTTPStreamError) {
                        try stream.write("data: \(index)\n\n")
                    } catch {
                        writeError.withLock { $0 = error }
                        failed.raise()
                        return
                    }
                    Thread.sleep(forTimeInterval: 0.005)
                }
                stream.finish()
            }
        }
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.sendRequest(path: "/stream")
        #expect(try client.readHead().status == 200)
        _ = try client.readChunk()
        client.reset()

        #expect(failed.wait(timeout: 3))
        #expect(writeError.withLock { $0 } == .cancelled(.clientDisconnected))
    }

    @Test func disconnectCancelsBusyHandler() throws {
        let log = LogRecorder()
        let cancellation = CancellationRecord()
        let server = try startServer(log: log) { _, responder in
            responder.onCancel { cancellation.record($0) }
            // Works until cancelled, like a non-streaming generation.
            _ = cancellation.flag.wait(timeout: 10)
            responder.respond(status: 200, body: Data("too late".utf8))
        }
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.sendRequest(path: "/busy")
        Thread.sleep(forTimeInterval: 0.2)
        client.close()

        let line = try #require(log.requestLine(containing: "path=/busy"))
        #expect(cancellation.reason == .clientDisconnected)
        #expect(line.contains("status=0"))
        #expect(line.contains("cancelled=client_disconnected"))
        // A client that leaves is normal: only the request line reports it.
        #expect(!log.all.contains { $0.hasPrefix("libmicrohttpd: ") }, "\(log.all)")
    }

    @Test func slowProducerIsNotTimedOut() throws {
        let server = try startServer(limits: HTTPLimits(idleTimeoutSeconds: 1)) { _, responder in
            let stream = responder.startStream()
            Thread.detachNewThread {
                // Gaps longer than the idle timeout, as while a model
                // processes a long prompt.
                try? stream.write("first")
                Thread.sleep(forTimeInterval: 2.5)
                try? stream.write("second")
                stream.finish()
            }
        }
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.sendRequest()
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(response.text == "firstsecond")

        // The idle timeout applies again once the stream has ended.
        let start = ContinuousClock.now
        #expect(client.waitForServerClose(timeout: 5))
        #expect(secondsSince(start) < 4)
    }

    @Test func abortedStreamEndsWithoutFinalChunk() throws {
        let writeError = Mutex<HTTPStreamError?>(nil)
        let handlerDone = Flag()
        let server = try startServer { _, responder in
            let stream = responder.startStream()
            try stream.write("partial")
            stream.abort()
            do throws(HTTPStreamError) {
                try stream.write("more")
            } catch {
                writeError.withLock { $0 = error }
            }
            handlerDone.raise()
        }
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.sendRequest()
        #expect(try client.readHead().status == 200)
        #expect(try client.readChunk() == Data("partial".utf8))
        #expect(throws: RawHTTPClient.ClientError.self) { try client.readChunk() }
        #expect(handlerDone.wait(timeout: 5))
        #expect(writeError.withLock { $0 } == .ended)
    }

    @Test func releasedStreamIsAborted() throws {
        let log = LogRecorder()
        let server = try startServer(log: log) { _, responder in
            let stream = responder.startStream()
            try stream.write("only")
        }
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.sendRequest(path: "/forgotten")
        #expect(try client.readHead().status == 200)
        #expect(try client.readChunk() == Data("only".utf8))
        #expect(throws: RawHTTPClient.ClientError.self) { try client.readChunk() }
        let line = try #require(log.requestLine(containing: "path=/forgotten"))
        #expect(line.contains("released without finish()"))
    }

    @Test func handlerThrowingMidStreamAbortsIt() throws {
        struct Failure: Error {}
        let server = try startServer { _, responder in
            let stream = responder.startStream()
            try stream.write("before")
            throw Failure()
        }
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.sendRequest()
        #expect(try client.readHead().status == 200)
        #expect(try client.readChunk() == Data("before".utf8))
        #expect(throws: RawHTTPClient.ClientError.self) { try client.readChunk() }
    }

    @Test func slowReaderFillsStreamBuffer() throws {
        let writeError = Mutex<HTTPStreamError?>(nil)
        let failed = Flag()
        let limits = HTTPLimits(maxStreamBufferBytes: 64 * 1024)
        let server = try startServer(limits: limits) { _, responder in
            let stream = responder.startStream()
            let piece = Data(count: 16 * 1024)
            // Bounded, in case the socket buffers are larger than expected.
            for _ in 0..<16384 {
                do throws(HTTPStreamError) {
                    try stream.write(piece)
                } catch {
                    writeError.withLock { $0 = error }
                    failed.raise()
                    return
                }
            }
            stream.finish()
        }
        defer { server.stop(gracePeriod: 0) }

        // The client never reads, so the socket buffers fill and then the
        // stream's buffer does.
        let client = try RawHTTPClient(port: server.port)
        try client.sendRequest()
        #expect(failed.wait(timeout: 20))
        #expect(writeError.withLock { $0 } == .cancelled(.streamBufferFull))
    }

    @Test func streamToHTTP10ClientEndsWithClose() throws {
        let server = try startServer { _, responder in
            let stream = responder.startStream()
            try stream.write("one ")
            try stream.write("two")
            stream.finish()
        }
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.send("GET / HTTP/1.0\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 200)
        #expect(response.headers["transfer-encoding"] == nil)
        #expect(response.text == "one two")
    }

    @Test func headRequestEndsStream() throws {
        let cancellation = CancellationRecord()
        let holder = StreamHolder()
        let server = try startServer { _, responder in
            let stream = responder.startStream(headers: ["Content-Type": "text/event-stream"])
            stream.onCancel { cancellation.record($0) }
            holder.keep(stream)
        }
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.sendRequest(method: "HEAD")
        let response = try client.readResponse(method: "HEAD")
        #expect(response.status == 200)
        #expect(cancellation.flag.wait(timeout: 5))
        #expect(cancellation.reason == .connectionClosed)
        holder.release()
    }
}
