import CSystem

/// The socket types `Socket.open` makes.
public enum SocketType { case TCP, UDP }

/// A socket, a pipe end or an fdopen'd descriptor: what Lua calls a socket
/// object. Its descriptor is a `Descriptor`, so a closed socket answers
/// every call with `.closed` and never touches a reused number.
public final class Socket: Waitable {
    public let handle: Descriptor
    /// The address family, for sockets XPIO made; nil for pipes and
    /// fdopen'd descriptors (the kernel then decides).
    public let family: AddressFamily?

    public init(_ handle: Descriptor, family: AddressFamily?) {
        self.handle = handle
        self.family = family
    }

    /// The descriptor number, or `.closed`.
    @inline(__always)
    public func descriptor() throws(Failure) -> CInt {
        let fd = handle.fd
        guard fd >= 0 else { throw .closed("socket") }
        return fd
    }

    public var isOpen: Bool { handle.isOpen }

    /// The corresponding C function is `close`.
    public func close() throws(Failure) {
        guard try handle.close() else { throw .closed("socket") }
    }

    /// What `__close` and `__gc` do: close, quietly.
    public func dispose() { _ = try? handle.close() }

    // MARK: making sockets

    /// A non-blocking, close-on-exec socket. `"UDP"` over `unix` is a
    /// datagram socket. The corresponding C function is `socket`.
    public static func open(type: SocketType, family: AddressFamily = .inet) throws(Failure) -> Socket {
        let kind = type == .TCP ? CInt(SOCK_STREAM.rawValue) : CInt(SOCK_DGRAM.rawValue)
        return Socket(Descriptor(try Sys.socket(family.domain, kind, 0).get()), family: family)
    }

    /// Two connected AF_UNIX stream sockets. The corresponding C function is `socketpair`.
    public static func pair() throws(Failure) -> (Socket, Socket) {
        var fds: (CInt, CInt) = (-1, -1)
        try withUnsafeMutableBytes(of: &fds) {
            Sys.socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), $0.baseAddress!.assumingMemoryBound(to: CInt.self))
        }.get()
        return (Socket(Descriptor(fds.0), family: .unix), Socket(Descriptor(fds.1), family: .unix))
    }

    /// A pipe: (read end, write end). The corresponding C function is `pipe2`.
    public static func pipe() throws(Failure) -> (Socket, Socket) {
        let (reader, writer) = try Descriptor.pipe()
        return (Socket(reader, family: nil), Socket(writer, family: nil))
    }

    /// A non-blocking, close-on-exec duplicate of descriptor `fd`.
    /// The corresponding C function is `fcntl(F_DUPFD_CLOEXEC)`.
    public static func duplicate(fd: Int64) throws(Failure) -> Socket {
        guard fd >= 0 && fd <= Int64(CInt.max) else { throw .system(EBADF) }
        let socket = Socket(Descriptor(try Sys.fcntl(CInt(fd), F_DUPFD_CLOEXEC, 0).get()), family: nil)
        try Descriptor.setBlocking(try socket.descriptor(), false)
        return socket
    }

    // MARK: I/O

    /// One buffer for every read: a read copies from here into a Lua string,
    /// so a `read(1 << 30)` never allocates a gigabyte for a few bytes.
    nonisolated(unsafe) static let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)

    /// Reads at most `size` bytes (64 KiB per call) into the shared read
    /// buffer, valid until the next read; nil at end of stream.
    /// The corresponding C function is `read`.
    public func read(size: Int64) throws(Failure) -> UnsafeRawBufferPointer? {
        let fd = try descriptor()
        if size == 0 { return UnsafeRawBufferPointer(start: Socket.readBuffer.baseAddress, count: 0) }
        let count = try Sys.read(fd, Socket.readBuffer.baseAddress!, Int(min(size, Int64(Socket.readBuffer.count)))).get()
        return count == 0 ? nil : UnsafeRawBufferPointer(rebasing: Socket.readBuffer[..<count])
    }

    /// The corresponding C function is `write`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> Int {
        let fd = try descriptor()
        // write(2) with 0 bytes needs a valid pointer all the same.
        return try Sys.write(fd, bytes.baseAddress ?? UnsafeRawPointer(Socket.readBuffer.baseAddress!), bytes.count).get()
    }

    /// The corresponding C function is `accept4`.
    public func accept() throws(Failure) -> Socket {
        Socket(Descriptor(try Sys.accept4(try descriptor()).get()), family: family)
    }

    /// What when_read and when_write wait on; a closed socket refuses.
    public func waitTarget(_ readiness: Readiness) throws(Failure) -> Descriptor? {
        _ = try descriptor()
        return handle
    }

    /// An address as this socket's family takes it: IPv4 addresses are
    /// mapped for an inet6 socket.
    func adapted(_ address: Address) -> Address {
        family == .inet6 && address.family == .inet ? address.mappedToIPv6 : address
    }

    /// The corresponding C function is `bind`.
    public func bind(_ endpoint: Endpoint) throws(Failure) {
        let fd = try descriptor()
        let address = adapted(try Resolver.resolveNow(endpoint, family: family, passive: true))
        try address.withSockaddr { Sys.bind(fd, $0, $1) }.get()
    }

    /// The corresponding C function is `listen`.
    public func listen(backlog: Int64) throws(Failure) {
        try Sys.listen(try descriptor(), CInt(clamping: backlog)).get()
    }

    /// Starts or completes a connection. A connection in progress is `.retry`;
    /// once the socket is writable, calling again reports how it ended:
    /// success (EISCONN) or the pending error (SO_ERROR).
    /// The corresponding C function is `connect`.
    public func connect(_ endpoint: Endpoint) throws(Failure) {
        let fd = try descriptor()
        let address = adapted(try Resolver.resolveNow(endpoint, family: family, passive: false))
        switch address.withSockaddr({ Sys.connect(fd, $0, $1) }) {
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

    /// Shuts down reading, writing or both. The corresponding C function is `shutdown`.
    public func shutdown(read: Bool, write: Bool) throws(Failure) {
        let how: CInt = read && write ? CInt(SHUT_RDWR) : read ? CInt(SHUT_RD) : CInt(SHUT_WR)
        try Sys.shutdown(try descriptor(), how).get()
    }

    /// The local address. The corresponding C function is `getsockname`.
    public func localAddress() throws(Failure) -> Address { try address(peer: false) }

    /// The peer's address. The corresponding C function is `getpeername`.
    public func peerAddress() throws(Failure) -> Address { try address(peer: true) }

    private func address(peer: Bool) throws(Failure) -> Address {
        let fd = try descriptor()
        var address = Address()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        try address.edit(sockaddr.self) { Sys.socketName(fd, peer: peer, $0, &length) }.get()
        address.length = length
        guard address.family != nil else { throw .xpio("xpio: not a socket with an address") }
        return address
    }
}
