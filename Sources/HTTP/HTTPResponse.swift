import Foundation

/// A complete response: status, header fields and body.
///
/// libmicrohttpd adds `Content-Length` (a `Content-Length` set here is
/// dropped), `Date` and, when needed, `Connection`. Setting
/// `Connection: close` closes the connection after the response.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header fields by name. Names must be HTTP tokens and values must not
    /// contain CR, LF or NUL; the server drops and logs fields that break
    /// either rule.
    public var headers: [String: String]
    public var body: Data

    public init(status: Int = 200, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Creates a response with `Content-Type: application/json` and the given body.
    public static func json(status: Int = 200, body: Data, headers: [String: String] = [:]) -> HTTPResponse {
        var allHeaders = headers
        allHeaders["Content-Type"] = "application/json"
        return HTTPResponse(status: status, headers: allHeaders, body: body)
    }

    /// Creates a JSON error response in OpenAI's shape:
    /// `{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}`,
    /// where `param` and `code` are strings or null.
    public static func error(
        status: Int, message: String, type: String, param: String? = nil, code: String? = nil,
        headers: [String: String] = [:]
    ) -> HTTPResponse {
        let envelope = ErrorEnvelope(error: ErrorBody(message: message, type: type, param: param, code: code))
        return json(status: status, body: encodeErrorEnvelope(envelope), headers: headers)
    }
}

/// The `type` values that the server's own error responses use, as in
/// OpenAI's API.
public enum HTTPErrorType {
    public static let invalidRequest = "invalid_request_error"
    public static let server = "server_error"
}

private struct ErrorEnvelope: Encodable {
    let error: ErrorBody
}

private struct ErrorBody: Encodable {
    let message: String
    let type: String
    let param: String?
    let code: String?

    enum CodingKeys: String, CodingKey {
        case message, type, param, code
    }

    // Encodes nil `param` and `code` as null instead of leaving them out.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(message, forKey: .message)
        try container.encode(type, forKey: .type)
        try container.encode(param, forKey: .param)
        try container.encode(code, forKey: .code)
    }
}

private func encodeErrorEnvelope(_ envelope: ErrorEnvelope) -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    // JSONEncoder fails only on values that JSON cannot represent, such as
    // NaN, and the envelope contains strings and nulls. The fallback keeps
    // the response well-formed all the same.
    return (try? encoder.encode(envelope))
        ?? Data(#"{"error":{"code":null,"message":"internal error","param":null,"type":"server_error"}}"#.utf8)
}
