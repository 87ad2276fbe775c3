#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts detached POSIX threads. Unlike Foundation's `Thread`, it reports
/// a failed `pthread_create`, so the server can respond with 503 instead of
/// waiting for a handler that never runs.
enum DetachedThread {
    /// Stack size of handler threads. It is set explicitly because the
    /// platform defaults differ (8 MiB on Linux, 512 KiB for secondary
    /// threads on macOS) and handlers may parse deeply nested JSON.
    static let stackSize = 4 * 1024 * 1024

    private final class Body {
        let run: @Sendable () -> Void

        init(_ run: @escaping @Sendable () -> Void) {
            self.run = run
        }
    }

    /// Runs `body` on a new detached thread. Returns 0, or the error code
    /// from `pthread_create` when no thread could be started, in which case
    /// `body` never runs.
    static func start(_ body: @escaping @Sendable () -> Void) -> Int32 {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, stackSize)

        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        #if canImport(Darwin)
        var thread: pthread_t? = nil
        #else
        var thread = pthread_t()
        #endif
        let result = pthread_create(
            &thread, &attributes,
            { argument in
                // The parameter is optional on Linux and non-optional on Darwin.
                let pointer: UnsafeMutableRawPointer? = argument
                if let pointer {
                    Unmanaged<Body>.fromOpaque(pointer).takeRetainedValue().run()
                }
                return nil
            }, context)
        if result != 0 {
            Unmanaged<Body>.fromOpaque(context).release()
        }
        return result
    }
}
