import CMicroHTTPD
import Foundation

/// Builds libmicrohttpd responses and queues them on a connection. Must be
/// called on the connection's thread, from the access handler.
enum ResponseQueue {
    /// The block size that a stream's content reader is asked for at most.
    static let streamBlockSize = 16 * 1024

    static func queue(_ response: HTTPResponse, exchange: Exchange, on connection: OpaquePointer) -> MHD_Result {
        let status = validStatus(response.status, exchange: exchange)
        let body = status == response.status ? response.body : ServerCore.handlerFailedResponse.body
        let headers = status == response.status ? response.headers : ServerCore.handlerFailedResponse.headers
        if status != response.status {
            exchange.recordServerResponse(ServerCore.handlerFailedResponse)
        }

        let created = body.withUnsafeBytes { bytes in
            MHD_create_response_from_buffer(
                bytes.count, UnsafeMutableRawPointer(mutating: bytes.baseAddress), .RESPMEM_MUST_COPY)
        }
        guard let mhdResponse = created else {
            exchange.note("libmicrohttpd could not create a response of \(body.count) bytes")
            return .NO
        }
        defer { MHD_destroy_response(mhdResponse) }
        addHeaders(headers, to: mhdResponse, exchange: exchange)
        return queue(mhdResponse, status: status, exchange: exchange, on: connection)
    }

    /// Queues a response whose body comes from `source` through the
    /// content-reader callback. The body's size is unknown, so libmicrohttpd
    /// uses chunked encoding for HTTP/1.1 and closes the connection after
    /// the body for HTTP/1.0.
    static func queueStream(
        status requestedStatus: Int, headers: [String: String], source: StreamSource, on connection: OpaquePointer
    ) -> MHD_Result {
        let exchange = source.exchange
        let status = validStatus(requestedStatus, exchange: exchange)
        if status != requestedStatus {
            exchange.endStream(aborted: true)
            exchange.cancel(.connectionClosed)
            exchange.recordServerResponse(ServerCore.handlerFailedResponse)
            return queue(ServerCore.handlerFailedResponse, exchange: exchange, on: connection)
        }

        let retained = Unmanaged.passRetained(source)
        guard
            let mhdResponse = MHD_create_response_from_callback(
                UInt64.max, streamBlockSize, streamContentReader, retained.toOpaque(), streamSourceRelease)
        else {
            retained.release()
            exchange.note("libmicrohttpd could not create a streamed response")
            exchange.cancel(.connectionClosed)
            return .NO
        }
        defer { MHD_destroy_response(mhdResponse) }
        addHeaders(headers, to: mhdResponse, exchange: exchange)
        let result = queue(mhdResponse, status: status, exchange: exchange, on: connection)
        if result == .NO {
            exchange.cancel(.connectionClosed)
        }
        return result
    }

    private static func queue(
        _ mhdResponse: OpaquePointer, status: Int, exchange: Exchange, on connection: OpaquePointer
    ) -> MHD_Result {
        guard MHD_add_response_header(mhdResponse, "X-Request-Id", exchange.requestID) == .YES else {
            exchange.note("libmicrohttpd rejected the X-Request-Id header")
            return .NO
        }
        let result = MHD_queue_response(connection, UInt32(status), mhdResponse)
        if result != .YES {
            exchange.note("libmicrohttpd refused to queue the response with status \(status)")
        }
        return result
    }

    /// Returns `status` when it is a final status code (200 to 599) and 500
    /// otherwise, noting the replacement in the log line.
    private static func validStatus(_ status: Int, exchange: Exchange) -> Int {
        if (200...599).contains(status) {
            return status
        }
        exchange.note("replaced invalid status \(status) with 500")
        return 500
    }

    /// Adds the handler's header fields in name order. Skips the fields
    /// that libmicrohttpd or the server set themselves (Content-Length,
    /// Transfer-Encoding, X-Request-Id) and fields with an invalid name or
    /// value, noting each skipped field in the log line.
    private static func addHeaders(_ headers: [String: String], to mhdResponse: OpaquePointer, exchange: Exchange) {
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            switch name.lowercased() {
            case "content-length", "transfer-encoding", "x-request-id":
                continue
            default:
                break
            }
            guard isToken(name), isFieldValue(value) else {
                exchange.note("dropped response header \(name.debugDescription) with an invalid name or value")
                continue
            }
            if MHD_add_response_header(mhdResponse, name, value) != .YES {
                exchange.note("libmicrohttpd rejected response header \(name.debugDescription)")
            }
        }
    }

    /// True for a non-empty HTTP token (RFC 9110, section 5.6.2).
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty
            && text.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "a")...UInt8(ascii: "z"):
                    return true
                default:
                    return "!#$%&'*+-.^_`|~".utf8.contains(byte)
                }
            }
    }

    /// True when `text` contains no CR, LF, NUL or other control character
    /// except horizontal tab.
    static func isFieldValue(_ text: String) -> Bool {
        text.utf8.allSatisfy { byte in byte == 0x09 || (byte >= 0x20 && byte != 0x7f) }
    }
}

/// libmicrohttpd's content reader for streamed responses. It runs on the
/// connection's thread and may block, which thread-per-connection mode
/// allows.
private let streamContentReader: MHD_ContentReaderCallback = { context, _, buffer, capacity in
    guard let context, let buffer else { return Int(CMHD_CONTENT_READER_END_WITH_ERROR) }
    let source = Unmanaged<StreamSource>.fromOpaque(context).takeUnretainedValue()
    return source.exchange.readStream(
        into: buffer, capacity: capacity, socket: source.socket, connection: source.connection,
        idleTimeoutSeconds: source.idleTimeoutSeconds)
}

/// Releases the `StreamSource` that `queueStream` retained for the content
/// reader; libmicrohttpd calls it when it destroys the response.
private let streamSourceRelease: MHD_ContentReaderFreeCallback = { context in
    guard let context else { return }
    Unmanaged<StreamSource>.fromOpaque(context).release()
}
