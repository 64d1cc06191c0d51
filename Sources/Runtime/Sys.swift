import CSystem

/// Every system call of the runtime that can set errno, wrapped once. Each
/// wrapper reads errno right after the call, before anything else can
/// change it, and applies the EINTR policy of its row in this table;
/// nothing else in the runtime calls these C functions. Called where they
/// are used instead: library functions that are not system calls
/// (`inet_pton`/`inet_ntop`/`if_nametoindex` in `Address`, `freeaddrinfo`
/// in `Resolver`); calls that return their error rather than set errno
/// (the `posix_spawn_*` set-up calls in `Spawn`, `xpio_reap_detached` in
/// `Process`); and C shims that report nothing: `xpio_reap_pending`
/// (`Process`), the teardowns `xpio_sigchld_release` (`Process`), `xpio_signal_unwatch`
/// (`SignalWatch`), `xpio_resolve_release` and a finished resolution's
/// accessors (`Resolver`). What they start goes through here
/// (`sigchldPipe`, `signalWatch`, `resolveStart`).
///
/// | policy | calls | on EINTR |
/// |---|---|---|
/// | `.retried` | read, write, pread, recv, send, readv, writev, sendfile, splice, sendto, recvfrom, sendmsg, recvmsg, accept4, fcntl, waitpid, ioctl | called again |
/// | `.inProgress` | connect | not re-issued: the connection goes on; reported as retry |
/// | `.closes` | close | counted as closed (never retried: the descriptor is gone) |
/// | `.noEvents` | epoll_wait, poll | zero events; the caller recomputes the timeout |
/// | `.cannot` | the others (socket, bind, listen, getsockopt, epoll_ctl, lseek, ...) | does not happen |
///
/// The Linux-only calls go through the platform layer (Platform.swift,
/// Sources/CSystem/platform.c), which compiles either them or their POSIX
/// fallbacks; a Linux-only call in a build without it fails with ENOSYS
/// before reaching the kernel, and its callers ask `Platform.linux` first.
///
/// Debug builds can make a named call fail before it reaches the kernel
/// (`faults`), so every row has a test; release builds compile it out.
enum Sys {
    enum Interrupt { case retried, inProgress, closes, noEvents, cannot }

    #if DEBUG
    /// Debug builds only: make the next `count` calls named `name` fail with
    /// `errno` without reaching the kernel (the idea of swift-system's mocking).
    nonisolated(unsafe) static var faults: [String: (errno: CInt, count: Int)] = [:]
    /// Debug builds only: how many times each call was made (tests check
    /// that a call went through its wrapper).
    nonisolated(unsafe) static var counts: [String: Int] = [:]
    #endif

    /// The errno a test asked `name` to fail with, if any (debug builds only).
    @inline(__always)
    static func injectedFault(_ name: StaticString) -> CInt? {
        #if DEBUG
        let key = name.description
        counts[key, default: 0] += 1
        guard let fault = faults[key], fault.count > 0 else { return nil }
        faults[key] = (fault.errno, fault.count - 1)
        return fault.errno
        #else
        return nil
        #endif
    }

    /// Runs `call` (which returns -1 and sets errno on failure) under the
    /// EINTR policy `interrupt`. The one loop of the runtime that turns
    /// errno into a `Failure`.
    @inline(never)
    static func perform(_ name: StaticString, _ interrupt: Interrupt, _ call: () -> Int) -> Result<Int, Failure> {
        while true {
            let code: CInt
            if let injected = injectedFault(name) {
                // A close interrupted by a signal has still closed (Linux).
                if interrupt == .closes { _ = call() }
                code = injected
            } else {
                let result = call()
                if result >= 0 { return .success(result) }
                code = xpio_errno()
            }
            guard code == EINTR else { return .failure(.errno(code)) }
            switch interrupt {
            case .retried, .cannot: continue
            case .inProgress: return .failure(.retry)
            case .closes, .noEvents: return .success(0)
            }
        }
    }

    private static func int(_ name: StaticString, _ interrupt: Interrupt, _ call: () -> CInt) -> Result<CInt, Failure> {
        switch perform(name, interrupt, { Int(call()) }) {
        case .success(let value): return .success(CInt(truncatingIfNeeded: value))
        case .failure(let failure): return .failure(failure)
        }
    }

    private static func none(_ name: StaticString, _ interrupt: Interrupt, _ call: () -> CInt) -> Result<Void, Failure> {
        switch perform(name, interrupt, { Int(call()) }) {
        case .success: return .success(())
        case .failure(let failure): return .failure(failure)
        }
    }

    // MARK: descriptors

    /// The corresponding C function is `close`. EINTR counts as closed.
    static func close(_ fd: CInt) -> Result<Void, Failure> { none("close", .closes) { CSystem.close(fd) } }

    /// The corresponding C function is `fcntl` (with an int argument).
    static func fcntl(_ fd: CInt, _ command: CInt, _ argument: CInt) -> Result<CInt, Failure> {
        int("fcntl", .retried) { xpio_fcntl_int(fd, command, argument) }
    }

    /// The corresponding C function is `lseek`: the new offset.
    static func seek(_ fd: CInt, _ offset: Int64, _ whence: CInt) -> Result<Int64, Failure> {
        switch perform("lseek", .cannot, { Int(CSystem.lseek(fd, off_t(offset), whence)) }) {
        case .success(let position): return .success(Int64(position))
        case .failure(let failure): return .failure(failure)
        }
    }

    /// The corresponding C function is `read`.
    static func read(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Result<Int, Failure> {
        perform("read", .retried) { CSystem.read(fd, buffer, count) }
    }

    /// The corresponding C function is `write`.
    static func write(_ fd: CInt, _ buffer: UnsafeRawPointer, _ count: Int) -> Result<Int, Failure> {
        perform("write", .retried) { CSystem.write(fd, buffer, count) }
    }

    /// The corresponding C function is `recv`, with MSG_DONTWAIT: a socket
    /// read never blocks, even when another owner of the open file (LuaSec's
    /// close, a child) cleared O_NONBLOCK, which belongs to the file.
    static func recv(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Result<Int, Failure> {
        perform("recv", .retried) { CSystem.recv(fd, buffer, count, CInt(MSG_DONTWAIT)) }
    }

    /// The corresponding C function is `send`, with MSG_DONTWAIT (as `recv`)
    /// and MSG_NOSIGNAL (a peer gone is EPIPE, never SIGPIPE; the portable
    /// build has SO_NOSIGPIPE or the SIGPIPE XPIO ignores at load).
    static func send(_ fd: CInt, _ buffer: UnsafeRawPointer, _ count: Int) -> Result<Int, Failure> {
        perform("send", .retried) { xpio_send(fd, buffer, count) }
    }

    /// The corresponding C function is `writev`.
    static func writev(_ fd: CInt, _ vectors: UnsafeBufferPointer<iovec>) -> Result<Int, Failure> {
        perform("writev", .retried) { CSystem.writev(fd, vectors.baseAddress, CInt(vectors.count)) }
    }

    /// The corresponding C function is `sendmsg` with the bytes of
    /// `vectors` in order, MSG_DONTWAIT and MSG_NOSIGNAL where there is one (as `send`).
    static func sendVectors(_ fd: CInt, _ vectors: UnsafeBufferPointer<iovec>) -> Result<Int, Failure> {
        var message = msghdr()
        message.msg_iov = UnsafeMutablePointer(mutating: vectors.baseAddress)
        message.msg_iovlen = vectors.count
        return perform("sendmsg", .retried) { CSystem.sendmsg(fd, &message, CInt(MSG_DONTWAIT) | xpio_send_flags()) }
    }

    /// The corresponding C function is `pipe2` (non-blocking, close-on-exec;
    /// portable: `pipe` and `fcntl`).
    static func pipe2(_ fds: UnsafeMutablePointer<CInt>) -> Result<Void, Failure> {
        none("pipe2", .cannot) { xpio_pipe(fds) }
    }

    /// The corresponding C function is `eventfd` (non-blocking, close-on-exec). Linux only.
    static func eventfd() -> Result<CInt, Failure> {
        int("eventfd", .cannot) { xpio_eventfd() }
    }

    // MARK: sockets

    /// The corresponding C function is `socket` (non-blocking, close-on-exec:
    /// flags at creation; portable: `fcntl` after).
    static func socket(_ domain: CInt, _ type: CInt, _ proto: CInt) -> Result<CInt, Failure> {
        int("socket", .cannot) { xpio_socket(domain, type, proto) }
    }

    /// The corresponding C function is `socketpair` (non-blocking, close-on-exec, as `socket`).
    static func socketpair(_ domain: CInt, _ type: CInt, _ fds: UnsafeMutablePointer<CInt>) -> Result<Void, Failure> {
        none("socketpair", .cannot) { xpio_socketpair(domain, type, fds) }
    }

    /// The corresponding C function is `accept4` (non-blocking, close-on-exec;
    /// portable: `accept` and `fcntl`).
    static func accept4(_ fd: CInt) -> Result<CInt, Failure> {
        int("accept4", .retried) { xpio_accept(fd) }
    }

    /// The corresponding C function is `bind`.
    static func bind(_ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Result<Void, Failure> {
        none("bind", .cannot) { xpio_bind(fd, address, length) }
    }

    /// The corresponding C function is `listen`.
    static func listen(_ fd: CInt, _ backlog: CInt) -> Result<Void, Failure> {
        none("listen", .cannot) { CSystem.listen(fd, backlog) }
    }

    /// The corresponding C function is `connect`. EINTR is not re-issued.
    static func connect(_ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Result<Void, Failure> {
        none("connect", .inProgress) { xpio_connect(fd, address, length) }
    }

    /// The corresponding C function is `sendto`.
    static func sendto(_ fd: CInt, _ buffer: UnsafeRawPointer, _ count: Int, _ address: UnsafePointer<sockaddr>,
                       _ length: socklen_t) -> Result<Int, Failure> {
        perform("sendto", .retried) { xpio_sendto(fd, buffer, count, CInt(MSG_DONTWAIT) | xpio_send_flags(), address, length) }
    }

    /// The corresponding C function is `recvfrom` (MSG_TRUNC: the datagram's
    /// full length comes back even when the buffer is shorter). Datagram
    /// sockets only: on a stream socket MSG_TRUNC discards the bytes.
    static func receiveDatagram(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int, _ address: UnsafeMutablePointer<sockaddr>,
                         _ length: UnsafeMutablePointer<socklen_t>) -> Result<Int, Failure> {
        perform("recvfrom", .retried) { xpio_recvfrom(fd, buffer, count, CInt(MSG_TRUNC) | CInt(MSG_DONTWAIT), address, length) }
    }

    /// The corresponding C function is `sendmsg` with SCM_RIGHTS (shim.c).
    static func sendDescriptors(_ fd: CInt, _ data: UnsafeRawBufferPointer, _ fds: [CInt]) -> Result<Int, Failure> {
        perform("sendmsg", .retried) { fds.withUnsafeBufferPointer { xpio_send_fds(fd, data.baseAddress, data.count, $0.baseAddress, CInt($0.count)) } }
    }

    /// The corresponding C function is `recvmsg` with SCM_RIGHTS and MSG_CMSG_CLOEXEC (shim.c).
    static func receiveDescriptors(_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer, _ fds: UnsafeMutableBufferPointer<CInt>,
                                   _ count: UnsafeMutablePointer<CInt>, _ truncated: UnsafeMutablePointer<CInt>) -> Result<Int, Failure> {
        perform("recvmsg", .retried) {
            xpio_recv_fds(fd, buffer.baseAddress, buffer.count, fds.baseAddress, CInt(fds.count), count, truncated)
        }
    }

    /// The corresponding C function is `shutdown`.
    static func shutdown(_ fd: CInt, _ how: CInt) -> Result<Void, Failure> {
        none("shutdown", .cannot) { CSystem.shutdown(fd, how) }
    }

    /// The corresponding C functions are `getsockname` and `getpeername`.
    static func socketName(_ fd: CInt, peer: Bool, _ address: UnsafeMutablePointer<sockaddr>,
                           _ length: UnsafeMutablePointer<socklen_t>) -> Result<Void, Failure> {
        peer ? none("getpeername", .cannot) { xpio_getpeername(fd, address, length) }
             : none("getsockname", .cannot) { xpio_getsockname(fd, address, length) }
    }

    /// The corresponding C function is `getsockopt`.
    static func getsockopt(_ fd: CInt, _ level: CInt, _ name: CInt, _ value: UnsafeMutableRawPointer,
                           _ length: UnsafeMutablePointer<socklen_t>) -> Result<Void, Failure> {
        none("getsockopt", .cannot) { CSystem.getsockopt(fd, level, name, value, length) }
    }

    /// The corresponding C function is `getsockopt(SO_PEERCRED)` (or
    /// `getpeereid`, platform.c): pid, uid, gid.
    static func peerCredentials(_ fd: CInt, _ pid: UnsafeMutablePointer<CInt>, _ uid: UnsafeMutablePointer<CInt>,
                                _ gid: UnsafeMutablePointer<CInt>) -> Result<Void, Failure> {
        none("getsockopt", .cannot) { xpio_peer_credentials(fd, pid, uid, gid) }
    }

    /// The corresponding C function is `setsockopt`.
    static func setsockopt(_ fd: CInt, _ level: CInt, _ name: CInt, _ value: UnsafeRawPointer,
                           _ length: socklen_t) -> Result<Void, Failure> {
        none("setsockopt", .cannot) { CSystem.setsockopt(fd, level, name, value, length) }
    }

    // MARK: readiness

    /// The corresponding C function is `epoll_create1` (close-on-exec). Linux only.
    static func epoll_create1() -> Result<CInt, Failure> {
        int("epoll_create1", .cannot) { xpio_epoll_create() }
    }

    /// The corresponding C function is `epoll_ctl`. Linux only.
    static func epoll_ctl(_ epfd: CInt, _ op: CInt, _ fd: CInt, _ event: UnsafeMutablePointer<epoll_event>) -> Result<Void, Failure> {
        none("epoll_ctl", .cannot) { xpio_epoll_ctl(epfd, op, fd, event) }
    }

    /// The corresponding C function is `epoll_wait`. EINTR is zero events. Linux only.
    static func epoll_wait(_ epfd: CInt, _ events: UnsafeMutablePointer<epoll_event>, _ capacity: CInt,
                           _ milliseconds: CInt) -> Result<Int, Failure> {
        perform("epoll_wait", .noEvents) { Int(xpio_epoll_wait(epfd, events, capacity, milliseconds)) }
    }

    /// The corresponding C function is `poll`. EINTR is zero events.
    static func poll(_ fds: UnsafeMutablePointer<pollfd>?, _ count: Int, _ milliseconds: CInt) -> Result<Int, Failure> {
        perform("poll", .noEvents) { Int(CSystem.poll(fds, nfds_t(count), milliseconds)) }
    }

    /// The corresponding C functions are `signalfd` (or `sigaction` and
    /// `pipe2`) and `pthread_sigmask`, in signals.c.
    static func signalWatch(_ signal: CInt, signalfd: Bool) -> Result<CInt, Failure> {
        int("signal_watch", .cannot) { xpio_signal_watch(signal, signalfd ? 1 : 0) }
    }

    /// The corresponding C function is `read` on a watch's descriptor (signals.c).
    static func signalNext(_ signal: CInt, _ fd: CInt, _ pid: UnsafeMutablePointer<CInt>) -> Result<CInt, Failure> {
        int("signal_next", .retried) { xpio_signal_next(signal, fd, pid) }
    }

    /// The corresponding C function is `timerfd_create` (monotonic, non-blocking, close-on-exec). Linux only.
    static func timerfd_create() -> Result<CInt, Failure> {
        int("timerfd_create", .cannot) { xpio_timer_open() }
    }

    /// The corresponding C function is `timerfd_settime`: once, `seconds` from now. Linux only.
    static func timerfd_settime(_ fd: CInt, _ seconds: Double) -> Result<Void, Failure> {
        let whole = seconds > 0 ? Int(seconds) : 0
        let nanoseconds = seconds > 0 ? Int((seconds - Double(whole)) * 1e9) : 0
        // 0 would disarm it.
        return none("timerfd_settime", .cannot) { xpio_timer_arm(fd, whole, max(nanoseconds, whole == 0 ? 1 : 0)) }
    }

    /// A byte in the SIGCHLD self-pipe once the monotonic clock reaches
    /// `deadline`: a stop's grace period without timerfd (shim.c).
    static func sigchldWake(at deadline: Double) -> Result<Void, Failure> {
        none("sigchld_wake", .cannot) { xpio_sigchld_wake_at(deadline) }
    }

    /// Takes back a `sigchldWake` whose deadline has not passed.
    static func sigchldWakeCancel(at deadline: Double) {
        xpio_sigchld_wake_cancel(deadline)
    }

    /// The corresponding C function is `open` (close-on-exec).
    static func open(_ path: UnsafePointer<CChar>, _ flags: CInt) -> Result<CInt, Failure> {
        int("open", .retried) { xpio_open(path, flags | O_CLOEXEC) }
    }

    /// The corresponding C function is `open` (close-on-exec), with the
    /// permissions of a file it creates.
    static func open(_ path: UnsafePointer<CChar>, _ flags: CInt, _ mode: mode_t) -> Result<CInt, Failure> {
        int("open", .retried) { xpio_open_mode(path, flags | O_CLOEXEC, mode) }
    }

    /// The corresponding C function is `sendfile` (Linux only; ENOSYS in the
    /// portable build): at most `count`
    /// bytes of `input` from `offset` (which it advances; the file's own
    /// position is left alone) to `output`.
    static func sendfile(_ output: CInt, _ input: CInt, _ offset: inout Int64, _ count: Int) -> Result<Int, Failure> {
        perform("sendfile", .retried) { xpio_sendfile(output, input, &offset, count) }
    }

    /// The corresponding C function is `splice` (Linux only; ENOSYS in the
    /// portable build), non-blocking on
    /// the pipe side (SPLICE_F_NONBLOCK) and moving pages where it can.
    static func splice(_ input: CInt, _ output: CInt, _ count: Int) -> Result<Int, Failure> {
        perform("splice", .retried) { xpio_splice(input, output, count) }
    }

    /// The corresponding C function is `fcntl` with F_SETPIPE_SZ (Linux only):
    /// a pipe's capacity.
    static func growPipe(_ fd: CInt, _ size: CInt) -> Result<Void, Failure> {
        none("fcntl", .retried) { xpio_pipe_grow(fd, size) }
    }

    /// The corresponding C function is `fstat`.
    static func fstat(_ fd: CInt, _ status: inout stat) -> Result<Void, Failure> {
        none("fstat", .cannot) { CSystem.fstat(fd, &status) }
    }

    /// The corresponding C function is `pread`.
    static func pread(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int, _ offset: Int64) -> Result<Int, Failure> {
        perform("pread", .retried) { CSystem.pread(fd, buffer, count, off_t(offset)) }
    }

    /// The corresponding C function is `clock_gettime(CLOCK_MONOTONIC)`; it
    /// cannot fail (and is not counted: timeouts read it all the time).
    static func monotonicNow(_ time: UnsafeMutablePointer<timespec>) {
        _ = clock_gettime(CLOCK_MONOTONIC, time)
    }

    /// The corresponding C function is `getpid`; it cannot fail.
    static func getpid() -> pid_t { CSystem.getpid() }

    /// The corresponding C function is `umask`; it cannot fail.
    static func umask(_ mask: mode_t) -> mode_t {
        _ = injectedFault("umask")
        return CSystem.umask(mask)
    }

    // MARK: processes

    /// The corresponding C function is `waitpid` (WNOHANG).
    static func waitpid(_ pid: pid_t, _ status: UnsafeMutablePointer<CInt>) -> Result<pid_t, Failure> {
        int("waitpid", .retried) { CSystem.waitpid(pid, status, WNOHANG) }
    }

    /// The corresponding C function is `kill`.
    static func kill(_ pid: pid_t, _ signal: CInt) -> Result<Void, Failure> {
        none("kill", .cannot) { CSystem.kill(pid, signal) }
    }

    /// The corresponding C function is `pidfd_open` (through syscall(2)). Linux only.
    static func pidfd_open(_ pid: pid_t) -> Result<CInt, Failure> {
        int("pidfd_open", .cannot) { xpio_pidfd_open(pid) }
    }

    /// The SIGCHLD self-pipe's read end, shared (the fallback without
    /// pidfds); the corresponding C functions are `pipe2` and `sigaction`
    /// (shim.c).
    static func sigchldPipe() -> Result<CInt, Failure> {
        int("sigchld_pipe", .cannot) { xpio_sigchld_pipe() }
    }

    /// Makes an ignored SIGCHLD the default, so the kernel keeps children's
    /// statuses for waitpid; the corresponding C function is `sigaction`
    /// (shim.c).
    static func keepChildStatuses() { xpio_sigchld_keep_statuses() }

    /// Writes a byte to the SIGCHLD self-pipe, as a child's exit does: its
    /// waiters wake and check their children. The corresponding C function
    /// is `write` (shim.c).
    static func pokeChildPipe() { xpio_sigchld_poke() }

    /// The corresponding C function is `pidfd_send_signal` (through syscall(2)). Linux only.
    static func pidfd_send_signal(_ pidfd: CInt, _ signal: CInt) -> Result<Void, Failure> {
        none("pidfd_send_signal", .cannot) { xpio_pidfd_send_signal(pidfd, signal) }
    }

    /// Starts resolving a name on a worker thread (resolver.c); ENOMEM rather
    /// than EAGAIN when no thread could start, which is no "try again".
    static func resolveStart(_ host: UnsafeRawBufferPointer, _ service: UnsafeRawBufferPointer, _ family: CInt,
                             passive: Bool) -> Result<OpaquePointer, Failure> {
        var started: OpaquePointer?
        let result = none("resolve_start", .cannot) {
            started = xpio_resolve_start(host.baseAddress?.assumingMemoryBound(to: CChar.self), host.count,
                                         service.baseAddress?.assumingMemoryBound(to: CChar.self), service.count,
                                         family, passive ? 1 : 0)
            if started == nil && xpio_errno() == EAGAIN { xpio_seterrno(ENOMEM) }
            return started == nil ? -1 : 0
        }
        switch result {
        case .success: return .success(started!)
        case .failure(let failure): return .failure(failure)
        }
    }

    /// The corresponding C functions are `posix_spawn` and `posix_spawnp`,
    /// which return an error number instead of setting errno.
    static func posix_spawn(_ pid: UnsafeMutablePointer<pid_t>, _ program: UnsafePointer<CChar>, searchPath: Bool,
                            _ actions: UnsafePointer<posix_spawn_file_actions_t>, _ attributes: UnsafePointer<posix_spawnattr_t>,
                            _ argv: UnsafePointer<UnsafeMutablePointer<CChar>?>,
                            _ envp: UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Result<Void, Failure> {
        none("posix_spawn", .cannot) {
            let code = searchPath ? CSystem.posix_spawnp(pid, program, actions, attributes, argv, envp)
                                  : CSystem.posix_spawn(pid, program, actions, attributes, argv, envp)
            if code == 0 { return 0 }
            xpio_seterrno(code)
            return -1
        }
    }
}

extension Sys {
    /// The corresponding C function is `getaddrinfo`; it answers an EAI_
    /// code, not -1: a failure is `.resolution(code)`, or errno's failure
    /// for EAI_SYSTEM (read right after the call).
    static func getaddrinfo(_ host: UnsafePointer<CChar>?, _ service: UnsafePointer<CChar>?,
                            _ hints: UnsafePointer<addrinfo>, _ result: UnsafeMutablePointer<UnsafeMutablePointer<addrinfo>?>) -> Result<Void, Failure> {
        if injectedFault("getaddrinfo") != nil { return .failure(.resolution(EAI_AGAIN)) }
        let code = CSystem.getaddrinfo(host, service, hints, result)
        if code == 0 { return .success(()) }
        return .failure(code == EAI_SYSTEM ? .errno(xpio_errno()) : .resolution(code))
    }
}
