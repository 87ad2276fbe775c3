import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A blocking HTTP/1.1 client on a raw TCP socket, for tests that need byte
/// control: malformed requests, chunked bodies, reading a stream chunk by
/// chunk and disconnecting at a chosen moment.
final class RawHTTPClient {
    struct Response {
        var status: Int
        /// Header fields keyed by lower-cased name.
        var headers: [String: String]
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    enum ClientError: Error, CustomStringConvertible {
        case connectFailed(Int32)
        case sendFailed(Int32)
        case closedByServer
        case timedOut
        case invalidResponse(String)

        var description: String {
            switch self {
            case let .connectFailed(code): return "connect failed: \(String(cString: strerror(code)))"
            case let .sendFailed(code): return "send failed: \(String(cString: strerror(code)))"
            case .closedByServer: return "the server closed the connection"
            case .timedOut: return "timed out waiting for the server"
            case let .invalidResponse(message): return "invalid response: \(message)"
            }
        }
    }

    private(set) var socket: Int32
    private var buffer: [UInt8] = []

    /// Connects to 127.0.0.1:`port`, or to [::1]:`port` when `ipv6` is true.
    /// Reads time out after `receiveTimeout` seconds.
    init(port: Int, ipv6: Bool = false, receiveTimeout: Double = 10) throws {
        let family = ipv6 ? AF_INET6 : AF_INET
        #if canImport(Glibc)
        let descriptor = Glibc.socket(family, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = Darwin.socket(family, SOCK_STREAM, 0)
        var noSignal: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_NOSIGPIPE, &noSignal, socklen_t(MemoryLayout<Int32>.size))
        #endif
        guard descriptor >= 0 else { throw ClientError.connectFailed(errno) }
        socket = descriptor

        let result: Int32
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            address.sin6_addr = in6addr_loopback
            result = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            result = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard result == 0 else {
            let code = errno
            closeSocket(descriptor)
            throw ClientError.connectFailed(code)
        }
        setReceiveTimeout(receiveTimeout)
    }

    deinit {
        close()
    }

    func setReceiveTimeout(_ seconds: Double) {
        var timeout = timeval()
        timeout.tv_sec = .init(seconds.rounded(.down))
        timeout.tv_usec = .init((seconds - seconds.rounded(.down)) * 1_000_000)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func close() {
        if socket >= 0 {
            closeSocket(socket)
            socket = -1
        }
    }

    /// Closes with an RST instead of a FIN (SO_LINGER with a zero timeout).
    func reset() {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(socket, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        close()
    }

    func send(_ text: String) throws {
        try send(Data(text.utf8))
    }

    func send(_ data: Data) throws {
        try data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                #if canImport(Glibc)
                let sent = Glibc.send(socket, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                #else
                let sent = Darwin.send(socket, bytes.baseAddress! + offset, bytes.count - offset, 0)
                #endif
                guard sent > 0 else { throw ClientError.sendFailed(errno) }
                offset += sent
            }
        }
    }

    /// Sends a request with `Content-Length` for a non-empty body.
    func sendRequest(
        method: String = "GET", path: String = "/", headers: [String: String] = [:], body: Data = Data()
    ) throws {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            head += "\(name): \(value)\r\n"
        }
        if !body.isEmpty {
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        try send(Data(head.utf8) + body)
    }

    /// Reads more bytes into the buffer; false at the end of the stream.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let received = recv(socket, &chunk, chunk.count, 0)
        if received > 0 {
            buffer += chunk[0..<received]
            return true
        }
        if received == 0 { return false }
        let code = errno
        if code == EAGAIN || code == EWOULDBLOCK { throw ClientError.timedOut }
        if code == ECONNRESET { return false }
        throw ClientError.invalidResponse("recv failed: \(String(cString: strerror(code)))")
    }

    private func readLine() throws -> String {
        while true {
            if let index = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(buffer[0..<index])
                buffer.removeFirst(index + 1)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard try fill() else { throw ClientError.closedByServer }
        }
    }

    private func readBytes(_ count: Int) throws -> Data {
        while buffer.count < count {
            guard try fill() else { throw ClientError.closedByServer }
        }
        let bytes = Data(buffer[0..<count])
        buffer.removeFirst(count)
        return bytes
    }

    /// Reads a status line and header fields.
    func readHead() throws -> (status: Int, headers: [String: String]) {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw ClientError.invalidResponse("status line \(statusLine.debugDescription)")
        }
        var headers: [String: String] = [:]
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else {
                throw ClientError.invalidResponse("header line \(line.debugDescription)")
            }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = value
        }
        return (status, headers)
    }

    /// Reads the next chunk of a chunked body; nil after the final
    /// zero-length chunk and its trailer.
    func readChunk() throws -> Data? {
        let sizeLine = try readLine()
        let sizeText = sizeLine.split(separator: ";").first.map(String.init) ?? ""
        guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
            throw ClientError.invalidResponse("chunk size line \(sizeLine.debugDescription)")
        }
        if size == 0 {
            while try !readLine().isEmpty {}
            return nil
        }
        let chunk = try readBytes(size)
        guard try readLine().isEmpty else { throw ClientError.invalidResponse("missing CRLF after a chunk") }
        return chunk
    }

    /// Reads a whole response: chunked, with Content-Length, or up to the
    /// end of the connection.
    func readResponse(method: String = "GET") throws -> Response {
        let (status, headers) = try readHead()
        var body = Data()
        if method == "HEAD" || status == 204 || status == 304 {
            return Response(status: status, headers: headers, body: body)
        }
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while let chunk = try readChunk() {
                body += chunk
            }
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            body = try readBytes(length)
        } else {
            while try fill() {}
            body = Data(buffer)
            buffer.removeAll()
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// Waits until the server closes the connection and returns true, or
    /// returns false when it sends data or stays open for `timeout` seconds.
    func waitForServerClose(timeout: Double) -> Bool {
        guard buffer.isEmpty else { return false }
        setReceiveTimeout(timeout)
        var byte: UInt8 = 0
        let received = recv(socket, &byte, 1, 0)
        if received == 0 { return true }
        if received < 0 { return errno == ECONNRESET }
        return false
    }

    /// Sends one request on a new connection and reads the response.
    static func request(
        port: Int, method: String = "GET", path: String = "/", headers: [String: String] = [:], body: Data = Data()
    ) throws -> Response {
        let client = try RawHTTPClient(port: port)
        try client.sendRequest(method: method, path: path, headers: headers, body: body)
        return try client.readResponse(method: method)
    }
}

private func closeSocket(_ descriptor: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(descriptor)
    #else
    _ = Darwin.close(descriptor)
    #endif
}

/// Collects the lines that a server logs.
final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])

    var log: @Sendable (String) -> Void {
        { [self] line in lines.withLock { $0.append(line) } }
    }

    var all: [String] { lines.withLock { $0 } }

    /// Returns the first request log line that contains `text`. It waits up
    /// to `timeout` seconds, because the server logs a request after its
    /// response is sent.
    func requestLine(containing text: String, timeout: Double = 5) -> String? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            if let line = all.first(where: { $0.hasPrefix("request_id=") && $0.contains(text) }) {
                return line
            }
            usleep(10_000)
        }
        return nil
    }
}

/// A one-shot signal between threads with a timeout.
final class Flag: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)

    func raise() {
        semaphore.signal()
    }

    /// True when `raise` was called within `timeout` seconds.
    func wait(timeout: Double) -> Bool {
        semaphore.wait(timeout: .now() + timeout) == .success
    }
}

/// Returns true when a socket can bind to the IPv6 loopback address ::1.
func ipv6LoopbackIsAvailable() -> Bool {
    #if canImport(Glibc)
    let descriptor = Glibc.socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let descriptor = Darwin.socket(AF_INET6, SOCK_STREAM, 0)
    #endif
    guard descriptor >= 0 else { return false }
    defer { closeSocket(descriptor) }
    var address = sockaddr_in6()
    address.sin6_family = sa_family_t(AF_INET6)
    address.sin6_addr = in6addr_loopback
    let result = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
    }
    return result == 0
}

/// Decodes an OpenAI-style error body into its `error` object.
func errorObject(_ body: Data) -> [String: Any]? {
    guard let root = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return nil }
    return root["error"] as? [String: Any]
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func secondsSince(_ start: ContinuousClock.Instant) -> Double {
    seconds(ContinuousClock.now - start)
}
