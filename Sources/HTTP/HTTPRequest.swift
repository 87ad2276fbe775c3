import Foundation

/// A complete HTTP request as received by `HTTPServer`: the request line,
/// the headers and the whole body.
public struct HTTPRequest: Sendable {
    /// Identifier for logs: the client's `X-Request-Id` when it is 1 to 128
    /// characters of `A-Z a-z 0-9 . _ : -`, otherwise one that the server
    /// generates. The server echoes it in the `X-Request-Id` response header.
    public let id: String
    /// The method as sent, for example `GET` or `POST`.
    public let method: String
    /// The path without the query string, percent-decoded by libmicrohttpd.
    public let path: String
    /// Percent-decoded query arguments. A repeated name keeps its last value
    /// and a name without `=` maps to "".
    public let query: [String: String]
    /// Header fields keyed by lower-cased name. Repeated fields are joined
    /// with ", " in the order received.
    public let headers: [String: String]
    public let body: Data
    /// The client's IP address, for example `127.0.0.1` or `::1`.
    public let remoteAddress: String
    /// The protocol version from the request line, for example `HTTP/1.1`.
    public let version: String

    public init(
        id: String, method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:],
        body: Data = Data(), remoteAddress: String = "127.0.0.1", version: String = "HTTP/1.1"
    ) {
        self.id = id
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
        self.version = version
    }

    /// Returns the value of a header field, matching `name` case-insensitively.
    public func header(_ name: String) -> String? {
        headers[name.lowercased()]
    }
}
