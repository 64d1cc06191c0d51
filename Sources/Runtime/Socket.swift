import CSystem

/// Owns one descriptor: a socket, a pipe end, an fdopen'd duplicate or a
/// pidfd. Closing takes the descriptor first (`fd` becomes -1), so a closed
/// object answers every call with `.closed` and never touches a number the
/// kernel may already have handed out again.
public final class Socket {
    public private(set) var fd: CInt
    /// The queues that have this descriptor registered: closing tells them
    /// first, so they drop it from epoll and wake its waiters.
    var queues: [TaskQueue] = []

    public init(fd: CInt) { self.fd = fd }

    /// A socket dropped without `close` still leaves its queues first, so no
    /// queue keeps a registration for a number the kernel will hand out again.
    deinit { if fd >= 0 { _ = Sys.close(detach()) } }

    public var isOpen: Bool { fd >= 0 }

    /// The descriptor, or `.closed`.
    @inline(__always)
    public func descriptor() throws(Failure) -> CInt {
        guard fd >= 0 else { throw .closed("socket") }
        return fd
    }

    /// Gives up the descriptor without closing it (spawn hands it to a child
    /// and closes it itself). Waiting tasks wake as for a close.
    public func detach() -> CInt {
        let old = fd
        guard old >= 0 else { return -1 }
        for queue in queues { queue.forget(old) }
        queues.removeAll()
        fd = -1
        return old
    }

    /// Wakes the tasks every queue has waiting to read this descriptor,
    /// leaving it registered (see `Process.drainSignalPipe`).
    func wakeReaders() {
        queues.removeAll { $0.isClosed }
        for queue in queues { queue.wakeReaders(fd) }
    }

    /// The corresponding C function is `close`.
    public func close() throws(Failure) {
        guard fd >= 0 else { throw .closed("socket") }
        if let failure = Sys.close(detach()) { throw failure }
    }

    // MARK: making sockets

    /// A TCP or UDP (IPv4) socket, non-blocking and close-on-exec.
    /// The corresponding C function is `socket`.
    public static func open(stream: Bool) throws(Failure) -> Socket {
        let type = stream ? CInt(SOCK_STREAM.rawValue) : CInt(SOCK_DGRAM.rawValue)
        return Socket(fd: try Sys.socket(AF_INET, type, 0).get())
    }

    /// Two connected AF_UNIX stream sockets. The corresponding C function is `socketpair`.
    public static func pair() throws(Failure) -> (Socket, Socket) {
        var fds: (CInt, CInt) = (-1, -1)
        let flags = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue)
        let result = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: CInt.self, capacity: 2) { socketpair(AF_UNIX, flags, 0, $0) }
        }
        _ = try Sys.check(result).get()
        return (Socket(fd: fds.0), Socket(fd: fds.1))
    }

    /// A pipe: (read end, write end). The corresponding C function is `pipe2`.
    public static func pipe() throws(Failure) -> (Socket, Socket) {
        var fds: (CInt, CInt) = (-1, -1)
        let result = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: CInt.self, capacity: 2) { pipe2($0, O_NONBLOCK | O_CLOEXEC) }
        }
        _ = try Sys.check(result).get()
        return (Socket(fd: fds.0), Socket(fd: fds.1))
    }

    /// A non-blocking, close-on-exec duplicate of `fd`.
    /// The corresponding C function is `fcntl(F_DUPFD_CLOEXEC)`.
    public static func duplicate(_ fd: CInt) throws(Failure) -> Socket {
        guard fd >= 0 else { throw .system(EBADF) }
        let socket = Socket(fd: try Sys.fcntl(fd, F_DUPFD_CLOEXEC, 0).get())
        try socket.setBlocking(false)
        return socket
    }

    // MARK: I/O

    /// Reads at most `buffer.count` bytes; 0 bytes read means end of stream.
    /// The corresponding C function is `read`.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Failure) -> Int {
        try Sys.read(try descriptor(), buffer.baseAddress!, buffer.count).get()
    }

    /// The corresponding C function is `write`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> Int {
        let fd = try descriptor()
        // write(2) with a null pointer and 0 bytes is fine, but keep the pointer valid.
        guard let base = bytes.baseAddress else { return try Sys.write(fd, UnsafeRawPointer(bitPattern: 1)!, 0).get() }
        return try Sys.write(fd, base, bytes.count).get()
    }

    /// The corresponding C function is `accept4`.
    public func accept() throws(Failure) -> Socket {
        Socket(fd: try Sys.accept4(try descriptor()).get())
    }

    /// The corresponding C function is `bind`.
    public func bind(_ address: Address) throws(Failure) {
        let fd = try descriptor()
        var raw = address.raw
        let result = withUnsafePointer(to: &raw) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                xpio_bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        _ = try Sys.check(result).get()
    }

    /// The corresponding C function is `listen`.
    public func listen(backlog: CInt) throws(Failure) {
        _ = try Sys.check(CSystem.listen(try descriptor(), backlog)).get()
    }

    /// Starts or completes a connection. A connection in progress is `.retry`;
    /// once the socket is writable, calling again reports how it ended:
    /// success (EISCONN) or the pending error (SO_ERROR).
    /// The corresponding C function is `connect`.
    public func connect(_ address: Address) throws(Failure) {
        let fd = try descriptor()
        var raw = address.raw
        let result = withUnsafePointer(to: &raw) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Sys.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        switch result {
        case .success: return
        case .failure(.system(EISCONN)): return
        case .failure(.retry):
            // A second call while the first is in progress (EALREADY), or one
            // after it failed: the pending error says which.
            let pending = try intOption(SOL_SOCKET, SO_ERROR)
            if pending != 0 && pending != EINPROGRESS && pending != EALREADY { throw .system(pending) }
            throw .retry
        case .failure(let failure): throw failure
        }
    }

    /// The corresponding C function is `shutdown`.
    public func shutdown(read: Bool, write: Bool) throws(Failure) {
        let how: CInt = read && write ? CInt(SHUT_RDWR) : read ? CInt(SHUT_RD) : CInt(SHUT_WR)
        _ = try Sys.check(CSystem.shutdown(try descriptor(), how)).get()
    }

    /// The local address. The corresponding C function is `getsockname`.
    public func localAddress() throws(Failure) -> Address { try address(peer: false) }

    /// The peer's address. The corresponding C function is `getpeername`.
    public func peerAddress() throws(Failure) -> Address { try address(peer: true) }

    private func address(peer: Bool) throws(Failure) -> Address {
        let fd = try descriptor()
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? xpio_getpeername(fd, $0, &length) : xpio_getsockname(fd, $0, &length)
            }
        }
        _ = try Sys.check(result).get()
        guard storage.ss_family == sa_family_t(AF_INET) else { throw .xpio("xpio: not an IPv4 socket") }
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Address(raw: $0.pointee) }
        }
    }

    /// Sets or clears O_NONBLOCK on the open file description.
    public func setBlocking(_ blocking: Bool) throws(Failure) {
        try Socket.setBlocking(try descriptor(), blocking)
    }

    static func setBlocking(_ fd: CInt, _ blocking: Bool) throws(Failure) {
        let flags = try Sys.fcntl(fd, F_GETFL, 0).get()
        let wanted = blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK
        if wanted != flags { _ = try Sys.fcntl(fd, F_SETFL, wanted).get() }
    }
}
