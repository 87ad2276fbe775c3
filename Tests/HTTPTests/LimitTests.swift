import Foundation
import HTTP
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct LimitTests {
    @Test func declaredOversizedBodyGets413() throws {
        let log = LogRecorder()
        let calls = Atomic<Int>(0)
        let server = try startServer(limits: HTTPLimits(maxBodyBytes: 1000), log: log) { request, responder in
            calls.add(1, ordering: .relaxed)
            try echoRequest(request, responder: responder)
        }
        defer { server.stop(gracePeriod: 0) }

        // Only the header is sent, so the server must respond without
        // waiting for the 1 MB body.
        let client = try RawHTTPClient(port: server.port, receiveTimeout: 5)
        try client.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 413)
        let error = try #require(errorObject(response.body))
        #expect(error["code"] as? String == "request_too_large")
        #expect(error["type"] as? String == "invalid_request_error")
        #expect(error["message"] as? String == "The request body has 1000000 bytes, more than the limit of 1000 bytes.")
        #expect(client.waitForServerClose(timeout: 5))
        #expect(calls.load(ordering: .relaxed) == 0)

        let line = try #require(log.requestLine(containing: "status=413"))
        #expect(line.contains("bytes_in=0"))

        let next = try RawHTTPClient.request(port: server.port, method: "POST", body: Data(count: 1000))
        #expect(next.status == 200)
    }

    @Test func oversizedBodyWithExpectContinueGets413() throws {
        let server = try startServer(limits: HTTPLimits(maxBodyBytes: 10), handle: echoRequest)
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.send(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 413)
    }

    @Test func chunkedOversizedBodyGets413() throws {
        let calls = Atomic<Int>(0)
        let server = try startServer(limits: HTTPLimits(maxBodyBytes: 100)) { request, responder in
            calls.add(1, ordering: .relaxed)
            try echoRequest(request, responder: responder)
        }
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        let chunk = String(repeating: "a", count: 60)
        try client.send(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "3c\r\n\(chunk)\r\n3c\r\n\(chunk)\r\n0\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 413)
        #expect(errorObject(response.body)?["message"] as? String
            == "The request body is larger than the limit of 100 bytes.")
        #expect(calls.load(ordering: .relaxed) == 0)

        let next = try RawHTTPClient.request(port: server.port, method: "POST", body: Data(count: 100))
        #expect(next.status == 200)
    }

    @Test func endlessChunkedBodyIsCutOff() throws {
        let server = try startServer(limits: HTTPLimits(maxBodyBytes: 1000), handle: echoRequest)
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.send("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = "3e8\r\n" + String(repeating: "b", count: 1000) + "\r\n"
        var sendFailed = false
        for _ in 0..<20 {
            do {
                try client.send(chunk)
            } catch {
                sendFailed = true
                break
            }
        }
        // The server closes once the body passes twice the limit, so either
        // a later send fails or the connection ends without a response.
        #expect(sendFailed || client.waitForServerClose(timeout: 5))

        let next = try RawHTTPClient.request(port: server.port)
        #expect(next.status == 200)
    }

    @Test func oversizedHeaderGets431() throws {
        let calls = Atomic<Int>(0)
        let limits = HTTPLimits(maxHeaderBytes: 2048)
        let server = try startServer(limits: limits) { request, responder in
            calls.add(1, ordering: .relaxed)
            try echoRequest(request, responder: responder)
        }
        defer { server.stop(gracePeriod: 0) }

        let response = try RawHTTPClient.request(
            port: server.port, headers: ["X-Padding": String(repeating: "p", count: 3000)])
        #expect(response.status == 431)
        let error = try #require(errorObject(response.body))
        #expect(error["code"] as? String == "request_header_fields_too_large")
        #expect(calls.load(ordering: .relaxed) == 0)

        let fits = try RawHTTPClient.request(port: server.port, headers: ["X-Padding": String(repeating: "p", count: 1500)])
        #expect(fits.status == 200)
    }

    @Test func headerBeyondMemoryPoolIsRejected() throws {
        let limits = HTTPLimits(maxHeaderBytes: 2048)
        let server = try startServer(limits: limits, handle: echoRequest)
        defer { server.stop(gracePeriod: 0) }

        // Far over the pool of 2 * 2048 + 32 KiB: libmicrohttpd rejects the
        // request itself, with a 431 or 414 of its own or by closing.
        let client = try RawHTTPClient(port: server.port)
        var rejectedWhileSending = false
        do {
            try client.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for index in 0..<100 {
                try client.send("X-Field-\(index): " + String(repeating: "q", count: 1000) + "\r\n")
            }
            try client.send("\r\n")
        } catch {
            rejectedWhileSending = true
        }
        if !rejectedWhileSending {
            do {
                let response = try client.readResponse()
                #expect([414, 431].contains(response.status))
            } catch RawHTTPClient.ClientError.closedByServer {
                // Closing without a response is also a rejection.
            }
        }

        let next = try RawHTTPClient.request(port: server.port)
        #expect(next.status == 200)
    }

    @Test(arguments: [
        "GARBAGE\r\n\r\n",
        "GET\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        "\u{0}\u{1}\u{2}\u{ff}binary\r\n\r\n",
    ])
    func malformedRequestIsRejected(raw: String) throws {
        let calls = Atomic<Int>(0)
        // libmicrohttpd 0.9.75 waits for more input after some garbage (a
        // request line with NUL bytes), so the idle timeout closes those.
        let server = try startServer(limits: HTTPLimits(idleTimeoutSeconds: 2)) { request, responder in
            calls.add(1, ordering: .relaxed)
            try echoRequest(request, responder: responder)
        }
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port, receiveTimeout: 6)
        try client.send(raw)
        do {
            let response = try client.readResponse()
            #expect((400...599).contains(response.status), "status \(response.status) for \(raw.debugDescription)")
        } catch RawHTTPClient.ClientError.closedByServer {
            // Closing without a response is also a rejection.
        }
        #expect(calls.load(ordering: .relaxed) == 0)

        let next = try RawHTTPClient.request(port: server.port)
        #expect(next.status == 200)
    }

    @Test func malformedChunkedBodyIsLogged() throws {
        let log = LogRecorder()
        let server = try startServer(log: log, handle: echoRequest)
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.send(
            "POST /broken HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
        #expect(try client.readResponse().status == 400)

        let line = try #require(log.requestLine(containing: "path=/broken"))
        #expect(line.contains("status=400"))
        #expect(log.all.contains { $0.hasPrefix("libmicrohttpd: ") && $0.contains("chunked encoding") })
    }

    @Test func slowClientIsTimedOut() throws {
        let limits = HTTPLimits(idleTimeoutSeconds: 1)
        let server = try startServer(limits: limits, handle: echoRequest)
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        let start = ContinuousClock.now
        #expect(client.waitForServerClose(timeout: 5))
        let elapsed = secondsSince(start)
        #expect(elapsed >= 0.5, "closed after \(elapsed) s")
        #expect(elapsed < 4, "closed after \(elapsed) s")

        let idle = try RawHTTPClient(port: server.port)
        try idle.sendRequest()
        #expect(try idle.readResponse().status == 200)
        #expect(idle.waitForServerClose(timeout: 5))
    }

    @Test func slowHandlerIsNotTimedOut() throws {
        let server = try startServer(limits: HTTPLimits(idleTimeoutSeconds: 1)) { _, responder in
            Thread.sleep(forTimeInterval: 2.5)
            responder.respond(status: 200, body: Data("slow".utf8))
        }
        defer { server.stop(gracePeriod: 0) }

        let response = try RawHTTPClient.request(port: server.port)
        #expect(response.status == 200)
        #expect(response.text == "slow")
    }

    @Test func concurrentClientsAreAllServed() throws {
        let clientCount = 20
        let arrived = Atomic<Int>(0)
        let allArrived = Flag()
        let server = try startServer { request, responder in
            // Every handler waits until all have started, which proves that
            // the 20 requests are in progress at the same time.
            if arrived.add(1, ordering: .relaxed).newValue == clientCount {
                for _ in 0..<clientCount { allArrived.raise() }
            }
            let together = allArrived.wait(timeout: 10)
            responder.respond(status: together ? 200 : 504, body: Data(request.path.utf8))
        }
        defer { server.stop(gracePeriod: 0) }

        let statuses = Mutex<[String: Int]>([:])
        let group = DispatchGroup()
        for index in 0..<clientCount {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                let path = "/client/\(index)"
                let status = (try? RawHTTPClient.request(port: server.port, path: path))
                    .map { $0.text == path ? $0.status : -1 } ?? 0
                statuses.withLock { $0[path] = status }
            }
        }
        #expect(group.wait(timeout: .now() + 30) == .success)
        let results = statuses.withLock { $0 }
        #expect(results.count == clientCount)
        #expect(results.values.allSatisfy { $0 == 200 }, "\(results)")
    }

    @Test func connectionsOverLimitAreRefused() throws {
        let limits = HTTPLimits(maxConnections: 2)
        let server = try startServer(limits: limits, handle: echoRequest)
        defer { server.stop(gracePeriod: 0) }

        let first = try RawHTTPClient(port: server.port)
        let second = try RawHTTPClient(port: server.port)
        try first.sendRequest()
        #expect(try first.readResponse().status == 200)
        try second.sendRequest()
        #expect(try second.readResponse().status == 200)

        // Both connections stay open (keep-alive), so a third one is over
        // the limit: libmicrohttpd accepts it and closes it at once.
        let third = try RawHTTPClient(port: server.port)
        #expect(third.waitForServerClose(timeout: 3))

        first.close()
        second.close()
        var servedAfterClose = false
        for _ in 0..<50 where !servedAfterClose {
            servedAfterClose = (try? RawHTTPClient.request(port: server.port).status) == 200
            if !servedAfterClose { usleep(50_000) }
        }
        #expect(servedAfterClose)
    }
}
