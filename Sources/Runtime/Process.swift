import CSystem

/// How a child ended.
public enum ExitStatus {
    case exited(CInt)
    case signaled(CInt)
}

/// A child started by `Spawn`. Readiness comes from a pidfd (readable once
/// the child has exited), so no SIGCHLD handler is installed and no
/// `waitpid(-1)` can take another library's children. The child is reaped
/// by `wait`, `kill` or, for a dropped object, `abandon`.
public final class Process {
    public let pid: pid_t
    /// Readable when the child exits; nil once it is reaped, or where
    /// pidfd_open is unavailable (then `wait` is polled: see `readiness`).
    public private(set) var pidfd: Socket?
    public private(set) var status: ExitStatus?

    init(pid: pid_t) {
        self.pid = pid
        let fd = xpio_pidfd_open(pid, 0)   // close-on-exec by default
        pidfd = fd >= 0 ? Socket(fd: fd) : nil
    }

    /// The status, reaping the child if it has exited; `.retry` while it runs.
    /// The corresponding C function is `waitpid(WNOHANG)`.
    public func poll() throws(Failure) -> ExitStatus {
        if let status { return status }
        var raw: CInt = 0
        let reaped = try Sys.waitpid(pid, &raw).get()
        guard reaped == Int(pid) else { throw .retry }
        let result: ExitStatus = xpio_wifsignaled(raw) != 0 ? .signaled(xpio_wtermsig(raw)) : .exited(xpio_wexitstatus(raw))
        status = result
        try? pidfd?.close()
        pidfd = nil
        return result
    }

    /// Sends `signal`; an exited child gives ESRCH ("No such process").
    /// The corresponding C function is `pidfd_send_signal` (or `kill`).
    public func kill(_ signal: CInt) throws(Failure) {
        if (try? poll()) != nil { throw .system(ESRCH) }
        if let pidfd, pidfd.fd >= 0 {
            if xpio_pidfd_send_signal(pidfd.fd, signal) == 0 { return }
            let code = xpio_errno()
            if code != ENOSYS { throw .system(code) }
        }
        _ = try Sys.check(CSystem.kill(pid, signal)).get()
    }

    /// The object is going away: reap the child now if it has exited,
    /// otherwise on a detached thread once it does. It is never killed.
    public func abandon() {
        if status != nil { return }
        if (try? poll()) != nil { return }
        try? pidfd?.close()
        pidfd = nil
        _ = xpio_reap_detached(pid)
    }
}
