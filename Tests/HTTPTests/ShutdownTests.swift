import Foundation
import HTTP
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` on a new thread and returns a flag raised when it returns.
func runInBackground(_ body: @escaping @Sendable () -> Void) -> Flag {
    let done = Flag()
    Thread.detachNewThread {
        body()
        done.raise()
    }
    return done
}

struct ShutdownTests {
    @Test func stopLetsRequestInProgressFinish() throws {
        let log = LogRecorder()
        let started = Flag()
        let server = try startServer(log: log) { _, responder in
            started.raise()
            Thread.sleep(forTimeInterval: 0.5)
            responder.respond(status: 200, body: Data("finished".utf8))
        }
        let port = server.port

        let response = Mutex<RawHTTPClient.Response?>(nil)
        let clientDone = runInBackground {
            let result = try? RawHTTPClient.request(port: port, path: "/slow")
            response.withLock { $0 = result }
        }
        #expect(started.wait(timeout: 5))

        let stopStart = ContinuousClock.now
        server.stop(gracePeriod: 5)
        let stopSeconds = secondsSince(stopStart)

        #expect(clientDone.wait(timeout: 5))
        #expect(response.withLock { $0?.status } == 200)
        #expect(response.withLock { $0?.text } == "finished")
        #expect(stopSeconds > 0.2, "stop returned after \(stopSeconds) s")
        #expect(stopSeconds < 4, "stop returned after \(stopSeconds) s")
        #expect(!server.isRunning)
        #expect(server.activeRequestCount == 0)
        #expect(throws: RawHTTPClient.ClientError.self) { _ = try RawHTTPClient(port: port) }

        let lines = log.all
        #expect(lines.contains { $0.hasPrefix("http server stopping: stopped accepting connections, 1 requests") })
        #expect(lines.last == "http server stopped")
        #expect(!lines.contains { $0.contains("cancelling") })
    }

    @Test func stopCancelsStreamAfterGracePeriod() throws {
        let holder = StreamHolder()
        let cancellation = CancellationRecord()
        let server = try startServer { _, responder in
            let stream = responder.startStream(headers: ["Content-Type": "text/event-stream"])
            stream.onCancel { cancellation.record($0) }
            try stream.write("data: first\n\n")
            holder.keep(stream)
        }

        let client = try RawHTTPClient(port: server.port)
        try client.sendRequest(path: "/endless")
        #expect(try client.readHead().status == 200)
        #expect(try client.readChunk() == Data("data: first\n\n".utf8))

        let stopStart = ContinuousClock.now
        server.stop(gracePeriod: 0.3)
        let stopSeconds = secondsSince(stopStart)

        #expect(stopSeconds < 3, "stop returned after \(stopSeconds) s")
        #expect(cancellation.reason == .serverStopping)
        #expect(throws: RawHTTPClient.ClientError.self) { try client.readChunk() }
        holder.release()
    }

    @Test func stopCancelsBusyHandlerWith503() throws {
        let cancellation = CancellationRecord()
        let server = try startServer { _, responder in
            responder.onCancel { cancellation.record($0) }
            _ = cancellation.flag.wait(timeout: 10)
        }

        let client = try RawHTTPClient(port: server.port)
        try client.sendRequest(path: "/forever")
        Thread.sleep(forTimeInterval: 0.2)
        server.stop(gracePeriod: 0.2)

        let response = try client.readResponse()
        #expect(response.status == 503)
        #expect(errorObject(response.body)?["code"] as? String == "server_shutting_down")
        #expect(cancellation.reason == .serverStopping)
    }

    @Test func stoppingServerAnswers503OnKeepAlive() throws {
        let slowStarted = Flag()
        let releaseSlow = Flag()
        let server = try startServer { request, responder in
            if request.path == "/slow" {
                slowStarted.raise()
                _ = releaseSlow.wait(timeout: 10)
            }
            responder.respond(status: 200, body: Data(request.path.utf8))
        }
        let port = server.port

        let keepAlive = try RawHTTPClient(port: port)
        try keepAlive.sendRequest(path: "/first")
        #expect(try keepAlive.readResponse().status == 200)

        let slowResponse = Mutex<Int?>(nil)
        let slowDone = runInBackground {
            let status = try? RawHTTPClient.request(port: port, path: "/slow").status
            slowResponse.withLock { $0 = status }
        }
        #expect(slowStarted.wait(timeout: 5))

        let stopDone = runInBackground { server.stop(gracePeriod: 10) }
        while server.isRunning { usleep(10_000) }

        try keepAlive.sendRequest(path: "/second")
        let rejected = try keepAlive.readResponse()
        #expect(rejected.status == 503)
        #expect(rejected.headers["connection"]?.lowercased() == "close")
        #expect(errorObject(rejected.body)?["code"] as? String == "server_shutting_down")

        // New connections are not served while the server stops. Linux
        // refuses them; other systems may leave them unanswered.
        #if os(Linux)
        #expect(throws: RawHTTPClient.ClientError.self) { _ = try RawHTTPClient(port: port) }
        #else
        let late = try? RawHTTPClient(port: port, receiveTimeout: 1)
        try? late?.sendRequest()
        #expect((try? late?.readResponse()) == nil)
        #endif

        releaseSlow.raise()
        #expect(slowDone.wait(timeout: 5))
        #expect(slowResponse.withLock { $0 } == 200)
        #expect(stopDone.wait(timeout: 5))
    }

    @Test func secondStopShortensGracePeriod() throws {
        let holder = StreamHolder()
        let server = try startServer { _, responder in
            let stream = responder.startStream()
            try stream.write("x")
            holder.keep(stream)
        }

        let client = try RawHTTPClient(port: server.port)
        try client.sendRequest()
        #expect(try client.readHead().status == 200)

        let firstStop = runInBackground { server.stop(gracePeriod: 60) }
        while server.isRunning { usleep(10_000) }
        let start = ContinuousClock.now
        server.stop(gracePeriod: 0)
        #expect(secondsSince(start) < 3)
        #expect(firstStop.wait(timeout: 3))
        holder.release()
    }

    @Test func signalStopsServer() throws {
        let server = try startServer(handle: echoRequest)
        server.stopOnSignals([SIGUSR2], gracePeriod: 1)
        let stopped = runInBackground { server.waitUntilStopped() }

        kill(getpid(), SIGUSR2)

        #expect(stopped.wait(timeout: 5))
        #expect(!server.isRunning)
    }

    /// A signal that reaches a thread other than the one watching it, as a
    /// signal to the process may, still stops the server. (Dispatch signal
    /// sources lost such signals on Linux.)
    /// (SIGUSR1, because one signal has one watcher and the test above runs
    /// in parallel.)
    @Test func signalToAnotherThreadStopsServer() throws {
        let server = try startServer(handle: echoRequest)
        server.stopOnSignals([SIGUSR1], gracePeriod: 1)
        let stopped = runInBackground { server.waitUntilStopped() }

        // Test threads inherit Dispatch's mask, which blocks signals; the
        // sender unblocks SIGUSR1 as a thread of a command-line tool has it.
        let sender = Thread {
            var unblocked = sigset_t()
            sigemptyset(&unblocked)
            sigaddset(&unblocked, SIGUSR1)
            pthread_sigmask(SIG_UNBLOCK, &unblocked, nil)
            raise(SIGUSR1)
        }
        sender.start()

        #expect(stopped.wait(timeout: 5))
        #expect(!server.isRunning)
    }

    @Test func releasingServerStopsIt() throws {
        var server: HTTPServer? = try startServer(handle: echoRequest)
        let port = try #require(server?.port)
        #expect(try RawHTTPClient.request(port: port).status == 200)

        server = nil

        #expect(throws: RawHTTPClient.ClientError.self) { _ = try RawHTTPClient(port: port) }
    }
}
