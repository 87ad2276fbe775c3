import CMicroHTTPD
import Foundation

/// Per-request state that only the request's connection thread touches.
/// libmicrohttpd keeps a retained pointer to it in the request's `con_cls`
/// slot from the first access-handler call until the request-completed
/// callback.
final class RequestContext {
    let exchange: Exchange
    let startTime = ContinuousClock.now
    let method: String
    let path: String
    let version: String
    let headers: [String: String]
    let remoteAddress: String

    var body = Data()
    /// Body bytes received, including those discarded after the body grew
    /// past the limit.
    var bodyBytesReceived = 0
    var bodyTooLarge = false
    /// True once a response is queued, after which libmicrohttpd does not
    /// call the access handler again for this request.
    var responseQueued = false

    init(exchange: Exchange, method: String, path: String, version: String, headers: [String: String], remoteAddress: String) {
        self.exchange = exchange
        self.method = method
        self.path = path
        self.version = version
        self.headers = headers
        self.remoteAddress = remoteAddress
    }
}

/// Readers for the parts of a request that libmicrohttpd has parsed.
enum ConnectionValues {
    /// Header fields keyed by lower-cased name; repeated fields are joined
    /// with ", ".
    static func headers(of connection: OpaquePointer) -> [String: String] {
        let collector = FieldCollector(joinRepeated: true)
        collect(kind: .HEADER_KIND, of: connection, into: collector)
        return collector.fields
    }

    /// Query arguments, percent-decoded; a repeated name keeps its last value.
    static func queryArguments(of connection: OpaquePointer) -> [String: String] {
        let collector = FieldCollector(joinRepeated: false)
        collect(kind: .GET_ARGUMENT_KIND, of: connection, into: collector)
        return collector.fields
    }

    /// Returns the client's IP address as text, or "unknown" when
    /// libmicrohttpd does not report one.
    static func remoteAddress(of connection: OpaquePointer) -> String {
        guard let address = cmhd_connection_client_address(connection) else { return "unknown" }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            var ipv4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            guard inet_ntop(AF_INET, &ipv4, &text, socklen_t(text.count)) != nil else { return "unknown" }
        case AF_INET6:
            var ipv6 = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            guard inet_ntop(AF_INET6, &ipv6, &text, socklen_t(text.count)) != nil else { return "unknown" }
        default:
            return "unknown"
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private final class FieldCollector {
        let joinRepeated: Bool
        var fields: [String: String] = [:]

        init(joinRepeated: Bool) {
            self.joinRepeated = joinRepeated
        }
    }

    private static func collect(kind: MHD_ValueKind, of connection: OpaquePointer, into collector: FieldCollector) {
        withExtendedLifetime(collector) {
            _ = MHD_get_connection_values_n(
                connection, kind,
                { context, _, key, keySize, value, valueSize in
                    guard let context, let key else { return .YES }
                    let collector = Unmanaged<FieldCollector>.fromOpaque(context).takeUnretainedValue()
                    let name = ConnectionValues.decodeText(key, count: keySize)
                    let text = value.map { ConnectionValues.decodeText($0, count: valueSize) } ?? ""
                    if collector.joinRepeated {
                        let lowered = name.lowercased()
                        if let earlier = collector.fields[lowered] {
                            collector.fields[lowered] = earlier + ", " + text
                        } else {
                            collector.fields[lowered] = text
                        }
                    } else {
                        collector.fields[name] = text
                    }
                    return .YES
                },
                Unmanaged.passUnretained(collector).toOpaque())
        }
    }

    /// Decodes bytes as UTF-8, replacing invalid sequences with U+FFFD.
    static func decodeText(_ pointer: UnsafePointer<CChar>, count: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(start: pointer, count: count), as: UTF8.self)
    }
}
