/// Resource limits that `HTTPServer` enforces on every connection.
///
/// The defaults suit an API server that takes JSON requests of up to a few
/// megabytes. They are policy choices, not measurements.
public struct HTTPLimits: Sendable, Equatable {
    /// Maximum size of the request line plus headers. A larger request gets
    /// 431 with a JSON error body. A header that does not fit
    /// libmicrohttpd's per-connection memory pool (`connectionMemoryBytes`)
    /// gets libmicrohttpd's own 431 or 414, whose body is HTML. That
    /// happens far above the limit, or sooner for a header of many small
    /// fields, because libmicrohttpd stores each field with some dozens of
    /// bytes of bookkeeping.
    public var maxHeaderBytes: Int = 16 * 1024
    /// Maximum size of a request body. A request that declares a larger
    /// `Content-Length` gets 413 before its body is read, and the
    /// connection is closed. A chunked body that grows past the limit is
    /// discarded as it arrives, and the request gets 413 when it ends,
    /// unless it grows past twice the limit, in which case the connection
    /// is closed without a response.
    public var maxBodyBytes: Int = 4 * 1024 * 1024
    /// Seconds a connection may go without sending or receiving a byte
    /// while the server reads a request or writes a response. After that
    /// the server closes it, and idle keep-alive connections close after
    /// the same time. The clock stops while the handler works on a request
    /// and while a stream waits for its producer. libmicrohttpd counts
    /// whole seconds.
    ///
    /// NOTE: nothing limits the total time to receive a request, so a client
    /// that sends a byte within every timeout keeps its connection for as
    /// long as it likes. `maxConnections` and `maxConnectionsPerAddress`
    /// bound how many such clients fit.
    public var idleTimeoutSeconds: Int = 30
    /// Maximum number of open connections. Each connection has its own
    /// thread. libmicrohttpd closes connections beyond the limit as soon as
    /// it accepts them, without a response.
    public var maxConnections: Int = 64
    /// Maximum number of open connections from one IP address; 0 for no
    /// limit beyond `maxConnections`.
    public var maxConnectionsPerAddress: Int = 0
    /// Maximum number of bytes a stream buffers for a client that reads more
    /// slowly than the producer writes. A write beyond it cancels the
    /// request with `HTTPCancellationReason.streamBufferFull`.
    public var maxStreamBufferBytes: Int = 4 * 1024 * 1024

    public init() {}

    public init(
        maxHeaderBytes: Int = 16 * 1024, maxBodyBytes: Int = 4 * 1024 * 1024, idleTimeoutSeconds: Int = 30,
        maxConnections: Int = 64, maxConnectionsPerAddress: Int = 0, maxStreamBufferBytes: Int = 4 * 1024 * 1024
    ) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.maxConnections = maxConnections
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
        self.maxStreamBufferBytes = maxStreamBufferBytes
    }

    /// The size of libmicrohttpd's per-connection memory pool. It contains the
    /// received request header, the parsed header fields and the send
    /// buffer, so it is sized at twice `maxHeaderBytes` plus 32 KiB. That
    /// keeps requests just over `maxHeaderBytes` inside the pool, where the
    /// server can reject them with a JSON 431.
    var connectionMemoryBytes: Int {
        2 * maxHeaderBytes + 32 * 1024
    }

    /// Throws `HTTPServerError.invalidLimits` naming the first field that is
    /// out of range.
    func validate() throws {
        let checks: [(name: String, value: Int, range: ClosedRange<Int>)] = [
            ("maxHeaderBytes", maxHeaderBytes, 1024...(64 * 1024 * 1024)),
            ("maxBodyBytes", maxBodyBytes, 0...(Int.max / 4)),
            ("idleTimeoutSeconds", idleTimeoutSeconds, 1...(24 * 3600)),
            ("maxConnections", maxConnections, 1...65536),
            ("maxConnectionsPerAddress", maxConnectionsPerAddress, 0...65536),
            ("maxStreamBufferBytes", maxStreamBufferBytes, 1...(Int.max / 4)),
        ]
        for check in checks where !check.range.contains(check.value) {
            throw HTTPServerError.invalidLimits(
                "\(check.name) is \(check.value); it must be in \(check.range.lowerBound)...\(check.range.upperBound)")
        }
    }
}
