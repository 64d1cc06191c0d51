import CSystem

/// Every libc call of the runtime, wrapped once. Each wrapper reads errno
/// right after the call, before anything else can change it, and decides
/// what EINTR means for that call (the table below); nothing else in the
/// runtime calls libc for these operations.
///
/// | call | on EINTR |
/// |---|---|
/// | read, write, accept4, fcntl, waitpid | retried here |
/// | connect | not re-issued: the connection goes on; reported as retry |
/// | close | counted as closed (never retried: the descriptor is gone) |
/// | epoll_wait, poll | reported as zero events; the caller recomputes the timeout |
enum Sys {
    #if DEBUG
    /// Debug builds only: make the next `count` calls named `name` fail with
    /// `errno` before reaching the kernel, so each row of the EINTR table has
    /// a test (the idea of swift-system's mocking). Compiled out of release.
    nonisolated(unsafe) static var faults: [String: (errno: CInt, count: Int)] = [:]
    #endif

    /// The errno a test asked `name` to fail with, if any (debug builds only).
    @inline(__always)
    static func injectedFault(_ name: StaticString) -> CInt? {
        #if DEBUG
        let key = name.description
        guard let fault = faults[key], fault.count > 0 else { return nil }
        faults[key] = (fault.errno, fault.count - 1)
        xpio_seterrno(fault.errno)
        return fault.errno
        #else
        return nil
        #endif
    }

    @inline(never)
    static func check(_ result: CInt) -> Result<CInt, Failure> {
        result >= 0 ? .success(result) : .failure(.lastError)
    }

    /// Runs `call` until it does not fail with EINTR.
    @inline(never)
    static func retrying(_ name: StaticString, _ call: () -> Int) -> Result<Int, Failure> {
        while true {
            let result = injectedFault(name) == nil ? call() : -1
            if result >= 0 { return .success(result) }
            let code = xpio_errno()
            if code != EINTR { return .failure(.errno(code)) }
        }
    }

    /// The corresponding C function is `close`. EINTR counts as closed.
    static func close(_ fd: CInt) -> Failure? {
        let result = CSystem.close(fd)
        if let code = injectedFault("close") { return code == EINTR ? nil : .system(code) }
        if result == 0 { return nil }
        let code = xpio_errno()
        return code == EINTR ? nil : .system(code)
    }

    /// The corresponding C function is `socket`.
    static func socket(_ domain: CInt, _ type: CInt, _ proto: CInt) -> Result<CInt, Failure> {
        check(CSystem.socket(domain, type | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue), proto))
    }

    /// The corresponding C function is `fcntl`.
    static func fcntl(_ fd: CInt, _ cmd: CInt, _ arg: CInt) -> Result<CInt, Failure> {
        retrying("fcntl") { Int(xpio_fcntl_int(fd, cmd, arg)) }.map { CInt($0) }
    }

    /// The corresponding C function is `read`.
    static func read(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Result<Int, Failure> {
        retrying("read") { CSystem.read(fd, buffer, count) }
    }

    /// The corresponding C function is `write`.
    static func write(_ fd: CInt, _ buffer: UnsafeRawPointer, _ count: Int) -> Result<Int, Failure> {
        retrying("write") { CSystem.write(fd, buffer, count) }
    }

    /// The corresponding C function is `accept4` (non-blocking, close-on-exec).
    static func accept4(_ fd: CInt) -> Result<CInt, Failure> {
        retrying("accept4") { Int(xpio_accept4(fd, CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue))) }.map { CInt($0) }
    }

    /// The corresponding C function is `connect`. EINTR is not re-issued.
    static func connect(_ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Result<CInt, Failure> {
        if injectedFault("connect") != nil { return check(-1) }
        return check(xpio_connect(fd, address, length))
    }

    /// The corresponding C function is `waitpid` (WNOHANG).
    static func waitpid(_ pid: pid_t, _ status: UnsafeMutablePointer<CInt>) -> Result<Int, Failure> {
        retrying("waitpid") { Int(CSystem.waitpid(pid, status, WNOHANG)) }
    }
}
