#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks a connected socket for a closed or reset peer without consuming
/// any data that the peer sent.
enum SocketProbe {
    #if os(Linux)
    // POLLRDHUP (Linux 2.6.17+) reports a peer that shut down its sending
    // side. Glibc declares it only under _GNU_SOURCE, so the value from
    // <bits/poll.h> is written out here.
    private static let peerHangUpEvents = Int16(POLLIN) | Int16(0x2000)
    #else
    private static let peerHangUpEvents = Int16(POLLIN)
    #endif

    /// Returns true when the peer has closed its side of the connection or
    /// the connection has failed. Returns false while the connection is
    /// open, including when unread data is waiting, and for an invalid
    /// socket.
    static func peerHasClosed(_ socket: Int32) -> Bool {
        guard socket >= 0 else { return false }
        var descriptor = pollfd(fd: socket, events: peerHangUpEvents, revents: 0)
        guard poll(&descriptor, 1, 0) > 0 else { return false }

        let failureEvents = Int16(POLLERR) | Int16(POLLHUP) | Int16(POLLNVAL)
        if descriptor.revents & failureEvents != 0 { return true }
        #if os(Linux)
        if descriptor.revents & Int16(0x2000) != 0 { return true }
        #endif
        guard descriptor.revents & Int16(POLLIN) != 0 else { return false }

        // Readable: a zero-byte peek is the end of the stream, and data
        // means the client is still there (it sent a pipelined request).
        var byte: UInt8 = 0
        let received = recv(socket, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if received == 0 { return true }
        if received < 0 {
            let error = errno
            return error != EAGAIN && error != EWOULDBLOCK && error != EINTR
        }
        return false
    }
}
