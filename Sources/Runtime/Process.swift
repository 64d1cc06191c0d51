import CSystem

/// How a child ended: `("exit", code)` or `("signal", number)`.
public enum ExitKind { case exit, signal }
public typealias ExitStatus = (kind: ExitKind, code: CInt)

/// A child started by `Spawn`. Readiness comes from a pidfd (readable once
/// the child has exited), so no SIGCHLD handler is installed and no
/// `waitpid(-1)` can take another library's children. The child is reaped
/// by `wait`, `kill` or, for a dropped object, `abandon`.
///
/// Where pidfd_open fails (Linux before 5.3, seccomp filters), or when
/// `XPIO_NO_PIDFD=1` forces it for tests, readiness falls back to a SIGCHLD
/// self-pipe shared by every process: each wake-up re-checks its own child
/// with `waitpid(pid, WNOHANG)`, still never `waitpid(-1)`.
public final class Process {
    public let pid: pid_t
    /// The child's own process group, when it got one (attrs.pgroup or
    /// attrs.setsid); nil when it shares this process's.
    public let group: pid_t?
    /// A `stop` under way.
    private var stopping: Stopping?
    /// What tells this child's exit: a descriptor readable once it has
    /// exited, nil once it is reaped. It is the child's pidfd where pidfds
    /// work, and otherwise (the portable build, Linux before 5.3, seccomp,
    /// `XPIO_NO_PIDFD=1`) the shared SIGCHLD pipe, readable on any child's
    /// exit (`usesFallback`): so it is named for what it is for, not for
    /// one of the two things it can be.
    public private(set) var exitWatch: Descriptor?
    public private(set) var status: ExitStatus?

    /// The object was closed (or collected): the child was reaped or went
    /// to a reaper thread, so its pid may belong to another process now and
    /// every call answers `.closed`.
    public private(set) var isClosed = false

    /// The SIGCHLD self-pipe's read end, shared; never closed.
    nonisolated(unsafe) static var sigchldPipe: Descriptor?
    public nonisolated(unsafe) static var pidfdDisabled = false
    /// Whether pidfds work here: nil until a pidfd_open gives a definite
    /// answer. Only ENOSYS (Linux before 5.3) and EPERM (a seccomp filter)
    /// mean no; a transient failure such as EMFILE decides nothing. The
    /// portable build has none.
    nonisolated(unsafe) static var pidfdsWork: Bool? = Platform.linux ? nil : false

    /// Installs the SIGCHLD fallback before a child exists, so no exit can
    /// be missed; nothing when pidfds work. Throws when it is needed and
    /// cannot be installed (no descriptor left), so that no child is started
    /// that could not be waited for.
    static func prepareFallback() throws(Failure) {
        // Before every child: SIGCHLD ignored (inherited) would have the
        // kernel discard its status, whatever tells its exit.
        Sys.keepChildStatuses()
        xpio_reap_pending()
        guard sigchldPipe == nil else { return }
        if !pidfdDisabled && pidfdsWork == nil {
            if case .success(let fd) = openPidfd(Sys.getpid()) { _ = Sys.close(fd) }
        }
        guard pidfdDisabled || pidfdsWork == false else { return }
        sigchldPipe = Descriptor(try Sys.sigchldPipe().get())
    }

    /// The last Lua state using XPIO has closed (its processes are gone):
    /// the SIGCHLD fallback, if it was installed, is taken down.
    public static func releaseFallback() {
        guard let pipe = sigchldPipe else { return }
        sigchldPipe = nil
        xpio_sigchld_release()
        _ = try? pipe.closeDescriptor()
    }

    /// pidfd_open, learning from its answer whether pidfds work.
    private static func openPidfd(_ pid: pid_t) -> Result<CInt, Failure> {
        let result = Sys.pidfd_open(pid)   // close-on-exec by default
        switch result {
        case .success: pidfdsWork = true
        case .failure(.system(ENOSYS)), .failure(.system(EPERM)): pidfdsWork = false
        case .failure: break
        }
        return result
    }

    init(pid: pid_t, group: pid_t?) {
        self.pid = pid
        self.group = group
        try? openReadiness()
    }

    /// Opens what tells this child's exit: its pidfd or, where pidfds do
    /// not work, the shared SIGCHLD pipe. When that fails (no descriptor
    /// left), `exitWatch` stays nil and the next wait tries again.
    private func openReadiness() throws(Failure) {
        if !Process.pidfdDisabled && Process.pidfdsWork != false {
            switch Process.openPidfd(pid) {
            case .success(let fd): exitWatch = Descriptor(fd); return
            case .failure(let failure): if Process.pidfdsWork != false { throw failure }
            }
        }
        let installedNow = Process.sigchldPipe == nil
        try Process.prepareFallback()
        guard let pipe = Process.sigchldPipe else { throw .system(EMFILE) }
        exitWatch = pipe
        // A child that exited before the handler existed wrote nothing to
        // the pipe: check it once.
        if installedNow { _ = try? poll() }
    }

    /// True when readiness comes from the shared SIGCHLD pipe.
    var usesFallback: Bool { exitWatch != nil && exitWatch === Process.sigchldPipe }

    /// The status, reaping the child if it has exited; `.retry` while it runs.
    /// The corresponding C function is `waitpid(WNOHANG)`.
    public func poll() throws(Failure) -> ExitStatus {
        guard !isClosed else { throw .closed("process") }
        if let status { return status }
        var raw: CInt = 0
        if usesFallback { drainSignalPipe() }
        let reaped = try Sys.waitpid(pid, &raw).get()
        guard reaped == pid else { throw .retry }
        let result: ExitStatus = xpio_wifsignaled(raw) != 0 ? (.signal, xpio_wtermsig(raw)) : (.exit, xpio_wexitstatus(raw))
        status = result
        releaseReadiness()
        stopping = nil
        return result
    }

    /// What when_wait waits on: the pidfd; nil (ready at once) once the
    /// status is known. Without pidfds the shared SIGCHLD pipe, emptied
    /// first of news that came before (checking this child on the way), so
    /// only an exit from now on wakes the task: one of this child, or of
    /// another (then `try_wait` answers retry and the task waits again).
    public func waitTarget(_ readiness: Readiness) throws(Failure) -> WaitTarget? {
        guard !isClosed else { throw .closed("process") }
        guard status == nil, let exit = try exitDescriptor() else { return nil }
        if usesFallback, (try? poll()) != nil { return nil }
        return WaitTarget(exit, .read)
    }

    /// The descriptor readable once the child has exited, opened now if it
    /// could not be at spawn time; nil once the child is reaped.
    private func exitDescriptor() throws(Failure) -> Descriptor? {
        guard !isClosed else { throw .closed("process") }
        if let exitWatch { return exitWatch }
        if status == nil { try openReadiness() }
        return exitWatch
    }

    /// Sends `signal`; an exited child gives ESRCH ("No such process").
    /// The corresponding C function is `pidfd_send_signal` (or `kill`).
    public func kill(_ signal: CInt) throws(Failure) {
        guard !isClosed else { throw .closed("process") }
        if (try? poll()) != nil { throw .system(ESRCH) }
        if let pidfd = exitWatch, pidfd.fd >= 0, !usesFallback {
            switch Sys.pidfd_send_signal(pidfd.fd, signal) {
            case .success: return
            case .failure(.system(ENOSYS)): break
            case .failure(let failure): throw failure
            }
        }
        try Sys.kill(pid, signal).get()
    }

    /// Sends `signal` to the child's process group: the child and whatever
    /// it started that stayed in its group, even once the child has exited.
    /// The corresponding C function is `kill(-group)`.
    public func killGroup(_ signal: CInt) throws(Failure) {
        guard !isClosed else { throw .closed("process") }
        guard let group else { throw .xpio("xpio: the process shares this process's group (spawn it with attrs.pgroup or attrs.setsid)") }
        try Sys.kill(-group, signal).get()
    }

    /// Stops the child gracefully: SIGTERM, then SIGKILL if it has not
    /// exited `grace` seconds later; its status once it has. `.retry` until
    /// then: the wait target wakes on the exit or at the deadline.
    public func stop(grace: Double) throws(Failure) -> ExitStatus {
        do throws(Failure) { return try poll() } catch .retry {}
        if stopping == nil {
            guard let exit = try exitDescriptor() else { return try poll() }
            do throws(Failure) { try kill(SIGTERM) } catch .system(ESRCH) { return try poll() }
            stopping = try Stopping(grace: grace, exit: exit)
        } else {
            try stopping!.hasten(grace: grace)
        }
        if let stopping, !stopping.killed, Clock.now() >= stopping.deadline {
            stopping.expire()
            do throws(Failure) { try kill(SIGKILL) } catch .system(ESRCH) { return try poll() }
        }
        do throws(Failure) { return try poll() } catch .retry { throw .retry }
    }

    /// What when_stop waits on: the exit or the deadline, whichever first.
    public func stopTarget() throws(Failure) -> WaitTarget? {
        guard !isClosed else { throw .closed("process") }
        guard status == nil, let stopping else { return nil }
        guard let group = stopping.group else {
            // The portable build: the SIGCHLD pipe, which the deadline
            // writes to as well; ready at once when there is news already.
            if !stopping.killed && Clock.now() >= stopping.deadline { return nil }
            return try waitTarget(.read)
        }
        return WaitTarget(group, .read)
    }

    /// The child's pid, while the object is open: once closed, the pid may
    /// be another process's.
    public func processID() throws(Failure) -> pid_t {
        guard !isClosed else { throw .closed("process") }
        return pid
    }

    /// `process:close()`: what `<close>` and collection do, as a method;
    /// a second close answers `.closed`.
    public func close() throws(Failure) {
        guard !isClosed else { throw .closed("process") }
        abandon()
    }

    /// The object is closed or going away: reap the child now if it has
    /// exited, otherwise on a detached thread once it does. It is never killed.
    public func abandon() {
        guard !isClosed else { return }
        xpio_reap_pending()
        if status == nil, (try? poll()) == nil { _ = xpio_reap_detached(pid) }
        isClosed = true
        // A pidfd's close wakes the tasks waiting on it; the shared SIGCHLD
        // pipe stays open, so its waiters are woken to look again (and
        // this process's find it closed).
        let shared = usesFallback
        releaseReadiness()
        if shared { Sys.pokeChildPipe() }
        stopping = nil
    }

    private func releaseReadiness() {
        if !usesFallback { _ = try? exitWatch?.closeDescriptor() }
        exitWatch = nil
    }

    /// Empties the shared SIGCHLD pipe before checking: a signal that comes
    /// after the check writes again, so no exit is missed. The bytes taken
    /// may have been another child's news, and its waiter, on this queue or
    /// another, would then sleep on an empty pipe: so whoever takes bytes
    /// wakes every task waiting on the pipe, and each checks its own child.
    private func drainSignalPipe() {
        guard let pipe = exitWatch else { return }
        var bytes: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var taken = 0
        withUnsafeMutableBytes(of: &bytes) { buffer in
            while let count = try? pipe.read(into: buffer), count > 0 {
                taken += count
                if count < buffer.count { break }
            }
        }
        if taken > 0 { pipe.wakeReaders() }
    }
}

/// A `stop` under way: its deadline as a timerfd, and one descriptor that
/// is readable when either the child exits or the deadline passes (an epoll
/// set of the two, which a task queue can wait on like any descriptor).
/// The portable build has neither: the child's exit is news in the SIGCHLD
/// pipe, and the deadline writes a byte there too (`Sys.sigchldWake`), so
/// the waiter waits on that pipe alone (`group` and `timer` are nil).
final class Stopping {
    private(set) var deadline: Double
    let timer: Descriptor?
    let group: Descriptor?
    private(set) var killed = false

    /// NaN, negative: no grace; beyond a year: a year (a timerfd takes
    /// seconds as an integer).
    private static func clamped(_ seconds: Double) -> Double { seconds.isNaN || seconds < 0 ? 0 : min(seconds, 365 * 86400) }

    init(grace seconds: Double, exit: Descriptor) throws(Failure) {
        let grace = Stopping.clamped(seconds)
        deadline = Clock.now() + grace
        guard Platform.linux else {
            try Sys.sigchldWake(at: deadline).get()
            timer = nil
            group = nil
            return
        }
        let timer = Descriptor(try Sys.timerfd_create().get())
        self.timer = timer
        try Sys.timerfd_settime(timer.fd, grace).get()
        let group = Descriptor(try Sys.epoll_create1().get())
        self.group = group
        var event = epoll_event()
        for fd in [timer.fd, exit.fd] where fd >= 0 {
            xpio_epoll_set(&event, EPOLLIN.rawValue, UInt64(UInt32(bitPattern: fd)))
            try Sys.epoll_ctl(group.fd, EPOLL_CTL_ADD, fd, &event).get()
        }
    }

    /// A stop that ended before its deadline takes the portable build's
    /// wake-up back: a byte written later would wake every task waiting on
    /// the shared SIGCHLD pipe for nothing.
    deinit {
        if timer == nil && !killed { Sys.sigchldWakeCancel(at: deadline) }
    }

    /// Brings the deadline forward to `seconds` from now when that is
    /// sooner: a stop called again (an earlier one was abandoned, by a
    /// timeout say) keeps its own grace, as it cannot extend the first's.
    /// A blocking stop's own retries, later with the same grace, change
    /// nothing.
    func hasten(grace seconds: Double) throws(Failure) {
        let grace = Stopping.clamped(seconds)
        let sooner = Clock.now() + grace
        guard !killed, sooner < deadline else { return }
        if let timer {
            try Sys.timerfd_settime(timer.fd, grace).get()
        } else {
            try Sys.sigchldWake(at: sooner).get()
            Sys.sigchldWakeCancel(at: deadline)
        }
        deadline = sooner
    }

    /// The deadline has passed: the timer stops being readable, so that
    /// from now on only the exit wakes the waiter.
    func expire() {
        killed = true
        guard let timer else { return }
        var count: UInt64 = 0
        _ = Sys.read(timer.fd, &count, 8)
    }
}
