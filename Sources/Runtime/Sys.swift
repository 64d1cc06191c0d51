import CSystem

/// Every system call of the runtime that can set errno, wrapped once. Each
/// wrapper reads errno right after the call, before anything else can
/// change it, and applies the EINTR policy of its row in this table;
/// nothing else in the runtime calls these C functions. Library functions
/// that are not system calls are called where they are used:
/// `inet_pton`/`inet_ntop`/`if_nametoindex` (`Address`), `freeaddrinfo`
/// (`Resolver`), the `posix_spawn_*` set-up calls, which return their
/// error (`Spawn`).
///
/// | policy | calls | on EINTR |
/// |---|---|---|
/// | `.retried` | read, write, pread, recv, send, readv, writev, sendfile, splice, sendto, recvfrom, sendmsg, recvmsg, accept4, fcntl, waitpid, ioctl | called again |
/// | `.inProgress` | connect | not re-issued: the connection goes on; reported as retry |
/// | `.closes` | close | counted as closed (never retried: the descriptor is gone) |
/// | `.noEvents` | epoll_wait, poll | zero events; the caller recomputes the timeout |
/// | `.cannot` | the others (socket, bind, listen, getsockopt, epoll_ctl, ...) | does not happen |
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

    static let cloexec = CInt(SOCK_CLOEXEC.rawValue)
    static let nonblocking = CInt(SOCK_NONBLOCK.rawValue)

    // MARK: descriptors

    /// The corresponding C function is `close`. EINTR counts as closed.
    static func close(_ fd: CInt) -> Result<Void, Failure> { none("close", .closes) { CSystem.close(fd) } }

    /// The corresponding C function is `fcntl` (with an int argument).
    static func fcntl(_ fd: CInt, _ command: CInt, _ argument: CInt) -> Result<CInt, Failure> {
        int("fcntl", .retried) { xpio_fcntl_int(fd, command, argument) }
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
    /// and MSG_NOSIGNAL (a peer gone is EPIPE, never SIGPIPE).
    static func send(_ fd: CInt, _ buffer: UnsafeRawPointer, _ count: Int) -> Result<Int, Failure> {
        perform("send", .retried) { CSystem.send(fd, buffer, count, CInt(MSG_DONTWAIT) | CInt(MSG_NOSIGNAL)) }
    }

    /// The corresponding C function is `writev`.
    static func writev(_ fd: CInt, _ vectors: UnsafeBufferPointer<iovec>) -> Result<Int, Failure> {
        perform("writev", .retried) { CSystem.writev(fd, vectors.baseAddress, CInt(vectors.count)) }
    }

    /// The corresponding C function is `sendmsg` with the bytes of
    /// `vectors` in order, MSG_DONTWAIT and MSG_NOSIGNAL (as `send`).
    static func sendVectors(_ fd: CInt, _ vectors: UnsafeBufferPointer<iovec>) -> Result<Int, Failure> {
        var message = msghdr()
        message.msg_iov = UnsafeMutablePointer(mutating: vectors.baseAddress)
        message.msg_iovlen = vectors.count
        return perform("sendmsg", .retried) { CSystem.sendmsg(fd, &message, CInt(MSG_DONTWAIT) | CInt(MSG_NOSIGNAL)) }
    }

    /// The corresponding C function is `pipe2` (non-blocking, close-on-exec).
    static func pipe2(_ fds: UnsafeMutablePointer<CInt>) -> Result<Void, Failure> {
        none("pipe2", .cannot) { CSystem.pipe2(fds, O_NONBLOCK | O_CLOEXEC) }
    }

    /// The corresponding C function is `eventfd` (non-blocking, close-on-exec).
    static func eventfd() -> Result<CInt, Failure> {
        int("eventfd", .cannot) { CSystem.eventfd(0, CInt(EFD_NONBLOCK | EFD_CLOEXEC)) }
    }

    // MARK: sockets

    /// The corresponding C function is `socket` (non-blocking, close-on-exec).
    static func socket(_ domain: CInt, _ type: CInt, _ proto: CInt) -> Result<CInt, Failure> {
        int("socket", .cannot) { CSystem.socket(domain, type | nonblocking | cloexec, proto) }
    }

    /// The corresponding C function is `socketpair` (non-blocking, close-on-exec).
    static func socketpair(_ domain: CInt, _ type: CInt, _ fds: UnsafeMutablePointer<CInt>) -> Result<Void, Failure> {
        none("socketpair", .cannot) { CSystem.socketpair(domain, type | nonblocking | cloexec, 0, fds) }
    }

    /// The corresponding C function is `accept4` (non-blocking, close-on-exec).
    static func accept4(_ fd: CInt) -> Result<CInt, Failure> {
        int("accept4", .retried) { xpio_accept4(fd, nonblocking | cloexec) }
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
        perform("sendto", .retried) { xpio_sendto(fd, buffer, count, 0, address, length) }
    }

    /// The corresponding C function is `recvfrom` (MSG_TRUNC: the datagram's
    /// full length comes back even when the buffer is shorter). Datagram
    /// sockets only: on a stream socket MSG_TRUNC discards the bytes.
    static func receiveDatagram(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int, _ address: UnsafeMutablePointer<sockaddr>,
                         _ length: UnsafeMutablePointer<socklen_t>) -> Result<Int, Failure> {
        perform("recvfrom", .retried) { xpio_recvfrom(fd, buffer, count, CInt(MSG_TRUNC), address, length) }
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

    /// The corresponding C function is `setsockopt`.
    static func setsockopt(_ fd: CInt, _ level: CInt, _ name: CInt, _ value: UnsafeRawPointer,
                           _ length: socklen_t) -> Result<Void, Failure> {
        none("setsockopt", .cannot) { CSystem.setsockopt(fd, level, name, value, length) }
    }

    // MARK: readiness

    /// The corresponding C function is `epoll_create1` (close-on-exec).
    static func epoll_create1() -> Result<CInt, Failure> {
        int("epoll_create1", .cannot) { CSystem.epoll_create1(CInt(EPOLL_CLOEXEC)) }
    }

    /// The corresponding C function is `epoll_ctl`.
    static func epoll_ctl(_ epfd: CInt, _ op: CInt, _ fd: CInt, _ event: UnsafeMutablePointer<epoll_event>) -> Result<Void, Failure> {
        none("epoll_ctl", .cannot) { CSystem.epoll_ctl(epfd, op, fd, event) }
    }

    /// The corresponding C function is `epoll_wait`. EINTR is zero events.
    static func epoll_wait(_ epfd: CInt, _ events: UnsafeMutablePointer<epoll_event>, _ capacity: CInt,
                           _ milliseconds: CInt) -> Result<Int, Failure> {
        perform("epoll_wait", .noEvents) { Int(CSystem.epoll_wait(epfd, events, capacity, milliseconds)) }
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

    /// The corresponding C function is `timerfd_create` (monotonic, non-blocking, close-on-exec).
    static func timerfd_create() -> Result<CInt, Failure> {
        int("timerfd_create", .cannot) { CSystem.timerfd_create(CLOCK_MONOTONIC, CInt(TFD_NONBLOCK | TFD_CLOEXEC)) }
    }

    /// The corresponding C function is `timerfd_settime`: once, `seconds` from now.
    static func timerfd_settime(_ fd: CInt, _ seconds: Double) -> Result<Void, Failure> {
        let whole = seconds > 0 ? Int(seconds) : 0
        let nanoseconds = seconds > 0 ? Int((seconds - Double(whole)) * 1e9) : 0
        var value = itimerspec()
        value.it_value.tv_sec = whole
        value.it_value.tv_nsec = max(nanoseconds, whole == 0 ? 1 : 0)   // 0 would disarm it
        return none("timerfd_settime", .cannot) { CSystem.timerfd_settime(fd, 0, &value, nil) }
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

    /// The corresponding C function is `sendfile` (Linux): at most `count`
    /// bytes of `input` from `offset` (which it advances; the file's own
    /// position is left alone) to `output`.
    static func sendfile(_ output: CInt, _ input: CInt, _ offset: inout Int64, _ count: Int) -> Result<Int, Failure> {
        var position = off_t(offset)
        defer { offset = Int64(position) }
        return perform("sendfile", .retried) { CSystem.sendfile(output, input, &position, count) }
    }

    /// The corresponding C function is `splice` (Linux), non-blocking on
    /// the pipe side (SPLICE_F_NONBLOCK) and moving pages where it can.
    static func splice(_ input: CInt, _ output: CInt, _ count: Int) -> Result<Int, Failure> {
        perform("splice", .retried) {
            CSystem.splice(input, nil, output, nil, count, UInt32(SPLICE_F_NONBLOCK | SPLICE_F_MOVE))
        }
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

    /// The corresponding C function is `pidfd_open` (through syscall(2)).
    static func pidfd_open(_ pid: pid_t) -> Result<CInt, Failure> {
        int("pidfd_open", .cannot) { xpio_pidfd_open(pid, 0) }
    }

    /// The corresponding C function is `pidfd_send_signal` (through syscall(2)).
    static func pidfd_send_signal(_ pidfd: CInt, _ signal: CInt) -> Result<Void, Failure> {
        none("pidfd_send_signal", .cannot) { xpio_pidfd_send_signal(pidfd, signal) }
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
    /// code (EAI_SYSTEM: see errno), not -1.
    static func getaddrinfo(_ host: UnsafePointer<CChar>?, _ service: UnsafePointer<CChar>?,
                            _ hints: UnsafePointer<addrinfo>, _ result: UnsafeMutablePointer<UnsafeMutablePointer<addrinfo>?>) -> CInt {
        if injectedFault("getaddrinfo") != nil { return EAI_AGAIN }
        return CSystem.getaddrinfo(host, service, hints, result)
    }
}
