import Foundation


/// An error answered to an API client: HTTP status and OpenAI's error shape
/// `{"error": {"message", "type", "param", "code"}}`.
public struct APIError: Error, CustomStringConvertible, Equatable {
    public let status: Int
    public let type: String
    public let message: String
    public let param: String?
    public let code: String?
    /// Seconds a client should wait before retrying (sent as Retry-After).
    public let retryAfter: Int?

    public init(status: Int, type: String, message: String, param: String? = nil, code: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public var description: String { message }

    public static func invalidRequest(_ message: String, param: String? = nil) -> APIError {
        APIError(status: 400, type: "invalid_request_error", message: message, param: param)
    }

    public static func notFound(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: 404, type: "not_found_error", message: message, param: param, code: code)
    }

    public static func conflict(_ message: String, param: String? = nil) -> APIError {
        APIError(status: 409, type: "conflict_error", message: message, param: param)
    }

    public static func overloaded(_ message: String, retryAfter: Int) -> APIError {
        APIError(status: 429, type: "rate_limit_error", message: message, code: "overloaded", retryAfter: retryAfter)
    }

    public static func unavailable(_ message: String) -> APIError {
        APIError(status: 503, type: "server_error", message: message, retryAfter: 5)
    }

    public static func internalError(_ message: String) -> APIError {
        APIError(status: 500, type: "server_error", message: message)
    }

    /// The JSON body.
    public var body: [String: Any] {
        ["error": [
            "message": message,
            "type": type,
            "param": param.map { $0 as Any } ?? NSNull(),
            "code": code.map { $0 as Any } ?? NSNull(),
        ] as [String: Any]]
    }
}
