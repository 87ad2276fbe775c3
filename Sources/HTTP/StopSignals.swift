import Foundation

// Stop signals reach the server through a pipe. A process-wide handler
// writes the signal's number into the pipe of the watcher that asked for
// it, and that watcher's thread reads it and calls back in ordinary code.
//
// Dispatch signal sources are not used: on Linux they read a signalfd and
// block the signal only in Dispatch's own thread. The kernel may deliver a
// process signal to any other thread (a connection thread, a compute
// worker), where the ignored disposition drops it. A handler runs on
// whichever thread receives the signal, so none is lost.

/// Write ends of the watchers' pipes, indexed by signal number, or -1 where
/// no watcher listens. It is a raw pointer so that the handler reads it
/// without touching reference counts.
nonisolated(unsafe) private let signalPipes: UnsafeMutablePointer<Int32> = {
    let table = UnsafeMutablePointer<Int32>.allocate(capacity: StopSignalWatcher.signalLimit)
    table.initialize(repeating: -1, count: StopSignalWatcher.signalLimit)
    return table
}()

/// The process-wide handler. It only calls write(2), which is
/// async-signal-safe, and keeps errno as it found it.
private let forwardSignal: @convention(c) (Int32) -> Void = { signalNumber in
    guard signalNumber > 0, Int(signalNumber) < StopSignalWatcher.signalLimit else { return }
    let descriptor = signalPipes[Int(signalNumber)]
    guard descriptor >= 0 else { return }
    let savedError = errno
    var byte = UInt8(truncatingIfNeeded: signalNumber)
    _ = write(descriptor, &byte, 1)
    errno = savedError
}

/// Calls `onSignal` on its own thread for every delivery of `signals` until
/// cancelled. Only one watcher may listen to a signal at a time; a newer
/// watcher takes the signal over. The signals are unblocked in the thread
/// that creates the watcher.
final class StopSignalWatcher: @unchecked Sendable {
    // SAFETY: `readEnd` and `writeEnd` are set in init; `cancel` runs once,
    // guarded by `lock`.
    static let signalLimit = 65

    private let signals: [Int32]
    private let readEnd: Int32
    private let writeEnd: Int32
    private let lock = NSLock()
    private var cancelled = false

    /// Installs the handler for `signals`. Returns nil when no pipe or
    /// thread could be made; the signals then keep their current action.
    init?(signals: [Int32], onSignal: @escaping @Sendable (Int32) -> Void) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return nil }
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        // With O_NONBLOCK a full pipe cannot block the handler: write(2)
        // fails and that signal is dropped, while earlier ones wait unread.
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        readEnd = ends[0]
        writeEnd = ends[1]
        self.signals = signals.filter { $0 > 0 && Int($0) < Self.signalLimit }

        let reader = readEnd
        let started = DetachedThread.start {
            var byte: UInt8 = 0
            while true {
                let count = read(reader, &byte, 1)
                if count == 1 {
                    onSignal(Int32(byte))
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break  // end of file: the watcher was cancelled
                }
            }
            close(reader)
        }
        guard started == 0 else {
            close(readEnd)
            close(writeEnd)
            return nil
        }
        for signalNumber in self.signals {
            signalPipes[Int(signalNumber)] = writeEnd
            signal(signalNumber, forwardSignal)
        }
        // A process may start with signals blocked (a parent's mask survives
        // exec), and then every thread blocks them. The calling thread, which
        // a command-line tool keeps waiting for the server, takes them.
        var watched = sigset_t()
        sigemptyset(&watched)
        for signalNumber in self.signals {
            sigaddset(&watched, signalNumber)
        }
        pthread_sigmask(SIG_UNBLOCK, &watched, nil)
    }

    /// Restores the signals' default action and ends the thread.
    func cancel() {
        lock.lock()
        let wasCancelled = cancelled
        cancelled = true
        lock.unlock()
        guard !wasCancelled else { return }
        for signalNumber in signals where signalPipes[Int(signalNumber)] == writeEnd {
            signal(signalNumber, SIG_DFL)
            signalPipes[Int(signalNumber)] = -1
        }
        // NOTE: a handler that read the descriptor just before this can still
        // write one byte after the close, to whatever file reuses the number.
        close(writeEnd)
    }

    deinit { cancel() }
}
