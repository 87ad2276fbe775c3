import Foundation
import HTTP
import Synchronization
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Starts a server on 127.0.0.1 with a free port.
func startServer(
    limits: HTTPLimits = HTTPLimits(), log: LogRecorder? = nil,
    handle: @escaping @Sendable (HTTPRequest, HTTPResponder) throws -> Void
) throws -> HTTPServer {
    let recorder = log ?? LogRecorder()
    return try HTTPServer(host: "127.0.0.1", port: 0, limits: limits, log: recorder.log, handle: handle)
}

/// Responds with a JSON description of the request.
@Sendable func echoRequest(_ request: HTTPRequest, responder: HTTPResponder) throws {
    let description: [String: Any] = [
        "id": request.id,
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": request.headers,
        "body": String(decoding: request.body, as: UTF8.self),
        "remote": request.remoteAddress,
        "version": request.version,
    ]
    let body = try JSONSerialization.data(withJSONObject: description, options: [.sortedKeys])
    responder.respond(.json(body: body))
}

/// Routes like an API server: GET /v1/models, 405 for other methods on it,
/// 404 elsewhere.
struct ModelsRouteHandler: HTTPHandler {
    func handle(_ request: HTTPRequest, responder: HTTPResponder) throws {
        switch (request.method, request.path) {
        case ("GET", "/v1/models"):
            responder.respond(.json(body: Data(#"{"object":"list","data":[]}"#.utf8)))
        case (_, "/v1/models"):
            responder.respond(
                .error(
                    status: 405, message: "Method \(request.method) is not allowed on /v1/models; use GET.",
                    type: HTTPErrorType.invalidRequest, code: "method_not_allowed", headers: ["Allow": "GET"]))
        default:
            responder.respond(
                .error(
                    status: 404, message: "No route for \(request.path).", type: HTTPErrorType.invalidRequest,
                    code: "not_found"))
        }
    }
}

struct RoundTripTests {
    @Test func getWithQueryRoundTrip() throws {
        let server = try startServer(handle: echoRequest)
        defer { server.stop(gracePeriod: 0) }

        let response = try RawHTTPClient.request(
            port: server.port, path: "/v1/items?name=caf%C3%A9&flag&n=1&n=2", headers: ["X-Custom": "Value"])
        #expect(response.status == 200)
        #expect(response.headers["content-type"] == "application/json")
        let echoed = try #require(try JSONSerialization.jsonObject(with: response.body) as? [String: Any])
        #expect(echoed["method"] as? String == "GET")
        #expect(echoed["path"] as? String == "/v1/items")
        #expect(echoed["query"] as? [String: String] == ["name": "café", "flag": "", "n": "2"])
        let headers = try #require(echoed["headers"] as? [String: String])
        #expect(headers["x-custom"] == "Value")
        #expect(headers["host"] == "127.0.0.1")
        #expect(echoed["remote"] as? String == "127.0.0.1")
        #expect(echoed["version"] as? String == "HTTP/1.1")
        #expect(response.headers["x-request-id"] == echoed["id"] as? String)
    }

    @Test func postJSONWithURLSession() async throws {
        let server = try startServer { request, responder in
            guard request.header("Content-Type") == "application/json" else {
                responder.respond(.error(status: 415, message: "Expected JSON.", type: HTTPErrorType.invalidRequest))
                return
            }
            let object = try JSONSerialization.jsonObject(with: request.body) as? [String: Any]
            let reply: [String: Any] = ["received": object?["prompt"] as? String ?? "", "bytes": request.body.count]
            responder.respond(.json(body: try JSONSerialization.data(withJSONObject: reply)))
        }
        defer { server.stop(gracePeriod: 0) }

        var urlRequest = URLRequest(url: try #require(URL(string: "http://127.0.0.1:\(server.port)/v1/completions")))
        urlRequest.httpMethod = "POST"
        urlRequest.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let sent = Data(#"{"prompt": "Where is the treasure?", "max_tokens": 8}"#.utf8)
        urlRequest.httpBody = sent
        let (data, urlResponse) = try await URLSession.shared.data(for: urlRequest)

        let httpResponse = try #require(urlResponse as? HTTPURLResponse)
        #expect(httpResponse.statusCode == 200)
        let reply = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(reply["received"] as? String == "Where is the treasure?")
        #expect(reply["bytes"] as? Int == sent.count)
    }

    @Test(.enabled(if: ipv6LoopbackIsAvailable(), "this machine has no IPv6 loopback address"))
    func ipv6LoopbackRoundTrip() throws {
        let server = try HTTPServer(host: "::1", port: 0, handle: echoRequest)
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port, ipv6: true)
        try client.sendRequest(path: "/v6")
        let response = try client.readResponse()
        #expect(response.status == 200)
        let echoed = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
        #expect(echoed?["remote"] as? String == "::1")
        #expect(echoed?["path"] as? String == "/v6")
    }

    @Test func chunkedRequestBodyIsAssembled() throws {
        let server = try startServer(handle: echoRequest)
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.send(
            "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 200)
        let echoed = try #require(try JSONSerialization.jsonObject(with: response.body) as? [String: Any])
        #expect(echoed["body"] as? String == "hello world")
    }

    @Test func expectContinueGets100First() throws {
        let server = try startServer(handle: echoRequest)
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        try client.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        let interim = try client.readHead()
        #expect(interim.status == 100)

        try client.send("hello")
        let response = try client.readResponse()
        #expect(response.status == 200)
        let echoed = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
        #expect(echoed?["body"] as? String == "hello")
    }

    @Test func routeErrorsUseOpenAIShape() throws {
        let server = try HTTPServer(port: 0, handler: ModelsRouteHandler())
        defer { server.stop(gracePeriod: 0) }

        let found = try RawHTTPClient.request(port: server.port, path: "/v1/models")
        #expect(found.status == 200)

        let missing = try RawHTTPClient.request(port: server.port, path: "/v1/nothing")
        #expect(missing.status == 404)
        #expect(missing.headers["content-type"] == "application/json")
        let notFound = try #require(errorObject(missing.body))
        #expect(notFound["message"] as? String == "No route for /v1/nothing.")
        #expect(notFound["type"] as? String == "invalid_request_error")
        #expect(notFound["code"] as? String == "not_found")
        #expect(notFound["param"] is NSNull)

        let wrongMethod = try RawHTTPClient.request(port: server.port, method: "DELETE", path: "/v1/models")
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.headers["allow"] == "GET")
        #expect(errorObject(wrongMethod.body)?["code"] as? String == "method_not_allowed")
    }

    @Test func keepAliveServesSequentialRequests() throws {
        let server = try startServer(handle: echoRequest)
        defer { server.stop(gracePeriod: 0) }

        let client = try RawHTTPClient(port: server.port)
        for index in 0..<3 {
            try client.sendRequest(method: "POST", path: "/n/\(index)", body: Data("body \(index)".utf8))
            let response = try client.readResponse()
            #expect(response.status == 200)
            let echoed = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
            #expect(echoed?["path"] as? String == "/n/\(index)")
            #expect(echoed?["body"] as? String == "body \(index)")
        }
    }

    @Test func clientRequestIDIsKeptAndEchoed() throws {
        let server = try startServer(handle: echoRequest)
        defer { server.stop(gracePeriod: 0) }

        let validID = try RawHTTPClient.request(port: server.port, headers: ["X-Request-Id": "client-42.a:b_c"])
        #expect(validID.headers["x-request-id"] == "client-42.a:b_c")

        let invalidID = try RawHTTPClient.request(port: server.port, headers: ["X-Request-Id": "has space"])
        let generated = try #require(invalidID.headers["x-request-id"])
        #expect(generated.hasPrefix("req-"))

        let withoutID = try RawHTTPClient.request(port: server.port)
        #expect(withoutID.headers["x-request-id"]?.hasPrefix("req-") == true)
        #expect(withoutID.headers["x-request-id"] != generated)
    }

    @Test func handlerThrowingGets500() throws {
        struct Failure: Error {}
        let log = LogRecorder()
        let server = try startServer(log: log) { _, _ in throw Failure() }
        defer { server.stop(gracePeriod: 0) }

        let response = try RawHTTPClient.request(port: server.port, path: "/throws")
        #expect(response.status == 500)
        let error = try #require(errorObject(response.body))
        #expect(error["type"] as? String == "server_error")
        #expect(error["message"] as? String == "The server failed to produce a response.")
        let line = try #require(log.requestLine(containing: "path=/throws"))
        #expect(line.contains("status=500"))
        #expect(line.contains("handler threw: Failure()"))
    }

    @Test func handlerWithoutResponseGets500() throws {
        let log = LogRecorder()
        let server = try startServer(log: log) { _, _ in }
        defer { server.stop(gracePeriod: 0) }

        let response = try RawHTTPClient.request(port: server.port, path: "/silent")
        #expect(response.status == 500)
        #expect(errorObject(response.body)?["type"] as? String == "server_error")
        let line = try #require(log.requestLine(containing: "path=/silent"))
        #expect(line.contains("released the responder without responding"))
    }

    @Test func responseFromAnotherThread() throws {
        let server = try startServer { request, responder in
            DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) {
                responder.respond(status: 202, headers: ["Content-Type": "text/plain"], body: Data("later".utf8))
            }
        }
        defer { server.stop(gracePeriod: 0) }

        let response = try RawHTTPClient.request(port: server.port)
        #expect(response.status == 202)
        #expect(response.text == "later")
    }

    @Test func secondResponseIsDropped() throws {
        let results = Mutex<[Bool]>([])
        let writeError = Mutex<HTTPStreamError?>(nil)
        let handlerDone = Flag()
        let server = try startServer { _, responder in
            let first = responder.respond(status: 200, body: Data("first".utf8))
            let second = responder.respond(status: 201, body: Data("second".utf8))
            let stream = responder.startStream()
            do throws(HTTPStreamError) {
                try stream.write("x")
            } catch {
                writeError.withLock { $0 = error }
            }
            results.withLock { $0 = [first, second, stream.isClosed] }
            handlerDone.raise()
        }
        defer { server.stop(gracePeriod: 0) }

        let response = try RawHTTPClient.request(port: server.port)
        #expect(response.status == 200)
        #expect(response.text == "first")
        #expect(handlerDone.wait(timeout: 5))
        #expect(results.withLock { $0 } == [true, false, true])
        #expect(writeError.withLock { $0 } == .notStarted)
    }

    @Test func invalidResponseHeadersAreDropped() throws {
        let log = LogRecorder()
        let server = try startServer(log: log) { _, responder in
            responder.respond(
                status: 200,
                headers: [
                    "X-Good": "yes", "X-Bad": "a\r\nInjected: 1", "Bad Name": "x", "Content-Length": "999",
                ], body: Data("ok".utf8))
        }
        defer { server.stop(gracePeriod: 0) }

        let response = try RawHTTPClient.request(port: server.port, path: "/headers")
        #expect(response.status == 200)
        #expect(response.text == "ok")
        #expect(response.headers["x-good"] == "yes")
        #expect(response.headers["x-bad"] == nil)
        #expect(response.headers["injected"] == nil)
        #expect(response.headers["content-length"] == "2")
        let line = try #require(log.requestLine(containing: "path=/headers"))
        #expect(line.contains("dropped response header"))
    }

    @Test func invalidStatusBecomes500() throws {
        let server = try startServer { _, responder in
            responder.respond(status: 42)
        }
        defer { server.stop(gracePeriod: 0) }

        let response = try RawHTTPClient.request(port: server.port)
        #expect(response.status == 500)
    }

    @Test func requestLogLineHasHandlerFields() throws {
        let log = LogRecorder()
        let server = try startServer(log: log) { request, responder in
            responder.setLogField("blend", "pirate=0.7,brief=0.3")
            responder.setLogField("completion_tokens", "12")
            responder.setLogField("bad name=", "x")
            responder.respond(status: 201, body: Data("created".utf8))
        }
        defer { server.stop(gracePeriod: 0) }

        _ = try RawHTTPClient.request(
            port: server.port, method: "POST", path: "/v1/chat/completions", headers: ["X-Request-Id": "log-1"],
            body: Data("0123456789".utf8))
        let line = try #require(log.requestLine(containing: "request_id=log-1"))
        #expect(line.hasPrefix("request_id=log-1 method=POST path=/v1/chat/completions status=201 duration_ms="))
        #expect(line.contains(" bytes_in=10 bytes_out=7 remote=127.0.0.1"))
        #expect(line.contains(#" blend="pirate=0.7,brief=0.3""#))
        #expect(line.contains(" completion_tokens=12"))
        #expect(line.contains(" bad_name_=x"))
        #expect(!line.contains("cancelled="))
    }

    @Test func startFailsOnUsedPort() throws {
        let first = try startServer(handle: echoRequest)
        defer { first.stop(gracePeriod: 0) }

        #expect(throws: HTTPServerError.self) {
            _ = try HTTPServer(port: first.port, handler: ModelsRouteHandler())
        }
    }

    @Test func invalidSettingsAreRejected() {
        #expect(throws: HTTPServerError.invalidPort(70000)) {
            _ = try HTTPServer(port: 70000, handler: ModelsRouteHandler())
        }
        #expect(throws: HTTPServerError.self) {
            _ = try HTTPServer(port: 0, limits: HTTPLimits(maxConnections: 0), handler: ModelsRouteHandler())
        }
        #expect(throws: HTTPServerError.self) {
            _ = try HTTPServer(host: "not a host name", port: 0, handler: ModelsRouteHandler())
        }
    }
}
