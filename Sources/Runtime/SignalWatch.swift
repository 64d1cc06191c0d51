import CSystem

/// A signal turned into events (`xpio.signal`): each delivery is read from
/// a descriptor, so a task waits for it like for input. signalfd on the
/// epoll backend, a self-pipe on the poll backend (signals.c says how each
/// treats the mask and the disposition). Standard signals coalesce: a
/// signal sent again before the first delivery is read counts once, as the
/// kernel keeps one instance pending.
public final class SignalWatch {
    public let number: CInt
    let handle: Descriptor
    /// Closed (or collected): the signal is no longer watched.
    public private(set) var isClosed = false

    private init(number: CInt, fd: CInt) {
        self.number = number
        handle = Descriptor(fd)
    }

    deinit { dispose() }

    /// Starts watching `number`. SIGCHLD is refused: it belongs to
    /// process:wait (and to the fallback's handler where pidfds are missing).
    public static func watch(_ number: CInt) throws(Failure) -> SignalWatch {
        if number == SIGCHLD { throw .xpio("xpio: SIGCHLD belongs to process:wait") }
        switch Sys.signalWatch(number, signalfd: TaskQueue.epollByDefault) {
        case .success(let fd): return SignalWatch(number: number, fd: fd)
        case .failure(.system(EBUSY)): throw .xpio("xpio: the signal is already watched")
        case .failure(let failure): throw failure
        }
    }

    /// The next delivery: the signal's number and the sender's process id
    /// (0 when the kernel sent it); `.retry` until one comes.
    public func next() throws(Failure) -> (CInt, CInt) {
        guard !isClosed else { throw .closed("signal") }
        var pid: CInt = 0
        let got = try Sys.signalNext(number, handle.fd, &pid).get()
        guard got > 0 else { throw .retry }
        return (got, pid)
    }

    public func waitTarget(_ readiness: Readiness) throws(Failure) -> WaitTarget? {
        guard !isClosed else { throw .closed("signal") }
        return WaitTarget(handle, .read)
    }

    /// Stops watching and puts the mask or disposition back.
    public func close() throws(Failure) {
        guard !isClosed else { throw .closed("signal") }
        dispose()
    }

    public func dispose() {
        guard !isClosed else { return }
        isClosed = true
        xpio_signal_unwatch(number)
        _ = try? handle.closeDescriptor()
    }

    /// The signal's number, or `.closed`.
    public func watchedNumber() throws(Failure) -> CInt {
        guard !isClosed else { throw .closed("signal") }
        return number
    }
}
