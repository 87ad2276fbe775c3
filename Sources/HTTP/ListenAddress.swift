#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The socket address that the server binds, resolved from a host and port.
struct ListenAddress {
    private var storage = sockaddr_storage()
    let isIPv6: Bool
    /// The address in numeric form, as the start-up log line shows it.
    let displayHost: String

    /// Resolves `host` with getaddrinfo and takes the first IPv4 or IPv6
    /// result. Throws `HTTPServerError.invalidHost` when nothing resolves.
    static func resolve(host: String, port: Int) throws -> ListenAddress {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_NUMERICSERV

        var results: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &results)
        guard status == 0 else {
            throw HTTPServerError.invalidHost(host, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(results) }

        var entry = results
        while let current = entry {
            let family = current.pointee.ai_family
            if let socketAddress = current.pointee.ai_addr, family == AF_INET || family == AF_INET6 {
                return ListenAddress(copying: socketAddress, length: Int(current.pointee.ai_addrlen), isIPv6: family == AF_INET6)
            }
            entry = current.pointee.ai_next
        }
        throw HTTPServerError.invalidHost(host, reason: "it resolves to no IPv4 or IPv6 address")
    }

    private init(copying address: UnsafePointer<sockaddr>, length: Int, isIPv6: Bool) {
        self.isIPv6 = isIPv6
        withUnsafeMutableBytes(of: &storage) { destination in
            destination.copyMemory(from: UnsafeRawBufferPointer(start: address, count: min(length, destination.count)))
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        if isIPv6 {
            var ipv6 = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            _ = inet_ntop(AF_INET6, &ipv6, &text, socklen_t(text.count))
            displayHost = "[" + String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "]"
        } else {
            var ipv4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            _ = inet_ntop(AF_INET, &ipv4, &text, socklen_t(text.count))
            displayHost = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    func withSocketAddress<Result>(_ body: (UnsafePointer<sockaddr>) -> Result) -> Result {
        withUnsafeBytes(of: storage) { bytes in
            body(bytes.baseAddress!.assumingMemoryBound(to: sockaddr.self))
        }
    }
}
