// Non-variadic wrappers around the libmicrohttpd calls that the HTTP module
// uses. Swift cannot call C variadic functions, and MHD_start_daemon,
// MHD_get_connection_info, MHD_get_daemon_info and MHD_set_connection_option
// are all variadic.
#ifndef CMICROHTTPD_H
#define CMICROHTTPD_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

/// Return values of an MHD_ContentReaderCallback that end the response.
static const ssize_t CMHD_CONTENT_READER_END_OF_STREAM = MHD_CONTENT_READER_END_OF_STREAM;
static const ssize_t CMHD_CONTENT_READER_END_WITH_ERROR = MHD_CONTENT_READER_END_WITH_ERROR;

/// Daemon options passed to MHD_start_daemon by cmhd_start_daemon.
struct CMHDDaemonSettings {
    /// A combination of MHD_FLAG values.
    unsigned int flags;
    /// The port of `address`. libmicrohttpd binds `address` and uses this
    /// number only in its log messages.
    uint16_t port;
    /// The address to bind: a sockaddr_in, or a sockaddr_in6 when flags
    /// contain MHD_USE_IPv6.
    const struct sockaddr *address;
    /// MHD_OPTION_CONNECTION_LIMIT.
    unsigned int connection_limit;
    /// MHD_OPTION_PER_IP_CONNECTION_LIMIT; 0 for no limit.
    unsigned int per_address_connection_limit;
    /// MHD_OPTION_CONNECTION_TIMEOUT in seconds; 0 for no timeout.
    unsigned int connection_timeout;
    /// MHD_OPTION_CONNECTION_MEMORY_LIMIT in bytes: the per-connection pool
    /// that contains the request header and the I/O buffers.
    size_t connection_memory_limit;
    MHD_AccessHandlerCallback access_handler;
    MHD_RequestCompletedCallback completed_handler;
    MHD_LogCallback logger;
    /// The closure argument of all three callbacks.
    void *context;
};

/// Starts a daemon with the given settings. Returns NULL when MHD rejects
/// the options or cannot bind the address; MHD reports the reason through
/// the logger.
static inline struct MHD_Daemon *cmhd_start_daemon(const struct CMHDDaemonSettings *settings) {
    // The logger must come first so that MHD reports start-up errors through it.
    return MHD_start_daemon(settings->flags, settings->port, NULL, NULL,
                            settings->access_handler, settings->context,
                            MHD_OPTION_EXTERNAL_LOGGER, settings->logger, settings->context,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *) settings->address,
                            MHD_OPTION_CONNECTION_LIMIT, settings->connection_limit,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, settings->per_address_connection_limit,
                            MHD_OPTION_CONNECTION_TIMEOUT, settings->connection_timeout,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, settings->connection_memory_limit,
                            MHD_OPTION_NOTIFY_COMPLETED, settings->completed_handler, settings->context,
                            MHD_OPTION_END);
}

/// Returns the port that the daemon's listening socket is bound to, or 0
/// when it is unknown.
static inline uint16_t cmhd_daemon_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info == NULL ? 0 : info->port;
}

/// Returns the connection's socket, or MHD_INVALID_SOCKET when it is unknown.
static inline MHD_socket cmhd_connection_socket(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? MHD_INVALID_SOCKET : info->connect_fd;
}

/// Returns the client's address, or NULL when it is unknown.
static inline const struct sockaddr *cmhd_connection_client_address(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info == NULL ? NULL : info->client_addr;
}

/// Returns the size in bytes of the request line and headers as received,
/// or 0 when it is unknown.
static inline size_t cmhd_connection_header_size(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    return info == NULL ? 0 : info->header_size;
}

/// Returns the status of the response queued on the connection, or 0 when
/// none is queued.
static inline unsigned int cmhd_connection_http_status(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_HTTP_STATUS);
    return info == NULL ? 0 : info->http_status;
}

/// Sets the connection's idle timeout in seconds (0 for none). Setting a
/// non-zero value after 0 restarts the timeout timer.
static inline enum MHD_Result cmhd_set_connection_timeout(struct MHD_Connection *connection, unsigned int seconds) {
    return MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, seconds);
}

#endif
