import CSystem
import CTLSABI

/// The socket types `Socket.open` makes.
public enum SocketType { case TCP, UDP }

/// What `Socket.open(fd:)` makes of a descriptor number: a duplicate, or
/// the number itself (`xpio.fdopen`'s mode).
public enum DescriptorMode { case dup, own }

/// A socket, a pipe end or an fdopen'd descriptor: what Lua calls a socket
/// object. It is a `Descriptor` (one allocation per socket, not two: idle
/// sockets are what servers hold most of), so a closed socket answers every
/// call with `.closed` and never touches a reused number.
///
/// One thread: a socket is used only from the thread of the Lua state that
/// made it, and never from the resolver's (docs/ARCHITECTURE.md); it has no locks.
public final class Socket: Descriptor {
    // The one-byte fields first, side by side, then the references: Swift
    // lays stored properties out in the order written, and scattered they
    // padded the object to 96 bytes (a 112-byte malloc block) where 80
    // (a 96-byte block) hold the same: 32 bytes of every connection pair.

    /// The address family, for sockets XPIO made; nil for pipes and
    /// fdopen'd descriptors (the kernel then decides).
    public let family: AddressFamily?
    /// Whether this is a stream socket: set where XPIO makes it, else
    /// learnt (SO_TYPE) when it matters: only datagrams may be read with
    /// MSG_TRUNC, and buffered reads take a datagram whole.
    private var streamKind: StreamKind = .unknown
    enum StreamKind: UInt8 { case unknown, stream, datagram }
    /// A pipe end or another file that is not a socket (learnt from the
    /// first ENOTSOCK): read and written with read(2) and write(2), which
    /// have no per-call MSG_DONTWAIT.
    private var notSocket = false
    /// Whether the last read from the kernel got less than it asked for
    /// (or nothing: EAGAIN): the kernel had no more then, so the next
    /// blocking read had better wait for readability than ask at once and
    /// get EAGAIN (`readWouldFail`).
    private var lastReadShort = false
    /// Whether a connect is under way (it answered "retry"): only then is a
    /// later EISCONN the connection made, and only to the address asked for.
    private var connecting = false

    /// An fdopen'd duplicate of a file XPIO made non-blocking: the file's
    /// entry in `NonBlockingFiles` (see `releaseOnClose`). One word, among
    /// the references: before the one-byte fields it took the object to
    /// the next malloc block, as the note above says.
    private var nonBlockingFile: NonBlockingFiles.Key?
    /// A connection to a host name in progress: resolved first, then its
    /// addresses tried in turn.
    private var nameConnection: NameConnection?
    /// The buffered reads' bytes, made on first use (most sockets never need one).
    private(set) var buffered: ReadBuffer?
    /// The pipe `splice` moves this socket's bytes through (Splice.swift),
    /// made on first use.
    var splicePipe: SplicePipe?
    var inbox: ReadBuffer {
        if let buffered { return buffered }
        let made = ReadBuffer()
        buffered = made
        return made
    }

    /// TLS under the socket (`tls.wrap`): reads and writes go through it.
    public private(set) var secure: SecureChannel?

    public init(fd: CInt, family: AddressFamily?) {
        self.family = family
        super.init(fd)
    }

    /// TLS says goodbye while the descriptor is still open (Descriptor's
    /// deinit, which closes it, runs after this one).
    deinit { secure?.release() }

    /// The descriptor number, or `.closed`.
    @inline(__always)
    public func descriptor() throws(Failure) -> CInt {
        let fd = self.fd
        guard fd >= 0 else { throw .closed("socket") }
        return fd
    }

    /// The corresponding C function is `close`.
    public func close() throws(Failure) {
        releaseOnClose()
        guard try closeDescriptor() else { throw .closed("socket") }
    }

    /// What `__close` and `__gc` do: close, quietly.
    public func dispose() {
        releaseOnClose()
        _ = try? closeDescriptor()
    }

    /// What closing undoes besides the descriptor. O_NONBLOCK belongs to
    /// the open file, which an fdopen'd descriptor shares with the number it
    /// duplicated: a file that was blocking is made blocking again when the
    /// duplicate closes, so `xpio.fdopen(0)` leaves `io.read` working.
    private func releaseOnClose() {
        // A task waiting for a name to resolve waits on the resolution's
        // descriptor, not this one: cancelling it wakes the task too.
        nameConnection?.resolution.cancel()
        nameConnection = nil
        secure?.release()
        // The buffered reads' bytes go with the descriptor, now: Lua's
        // collector never sees their size, and a server closing its
        // connections must not hold their buffers until it runs.
        buffered = nil
        splicePipe = nil
        guard let file = nonBlockingFile, fd >= 0 else { return }
        nonBlockingFile = nil
        if NonBlockingFiles.release(file) { _ = try? Descriptor.setBlocking(fd, true) }
    }

    // MARK: making sockets

    /// A non-blocking, close-on-exec socket. `"UDP"` over `unix` is a
    /// datagram socket. The corresponding C function is `socket`.
    public static func open(type: SocketType, family: AddressFamily = .inet) throws(Failure) -> Socket {
        let kind = type == .TCP ? CInt(SOCK_STREAM.rawValue) : CInt(SOCK_DGRAM.rawValue)
        let socket = Socket(fd: try Sys.socket(family.domain, kind, 0).get(), family: family)
        socket.streamKind = type == .TCP ? .stream : .datagram
        return socket
    }

    /// Two connected AF_UNIX stream sockets. The corresponding C function is `socketpair`.
    public static func pair() throws(Failure) -> (Socket, Socket) {
        var fds: (CInt, CInt) = (-1, -1)
        try withUnsafeMutableBytes(of: &fds) {
            Sys.socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue), $0.baseAddress!.assumingMemoryBound(to: CInt.self))
        }.get()
        let pair = (Socket(fd: fds.0, family: .unix), Socket(fd: fds.1, family: .unix))
        pair.0.streamKind = .stream
        pair.1.streamKind = .stream
        return pair
    }

    /// A pipe: (read end, write end). The corresponding C function is `pipe2`.
    public static func pipe() throws(Failure) -> (Socket, Socket) {
        var fds: (CInt, CInt) = (-1, -1)
        try withUnsafeMutableBytes(of: &fds) { Sys.pipe2($0.baseAddress!.assumingMemoryBound(to: CInt.self)) }.get()
        return (Socket(fd: fds.0, family: nil), Socket(fd: fds.1, family: nil))
    }

    /// A file opened with `flags` (O_RDONLY, O_CREAT...) and, when it is
    /// created, `mode`: non-blocking (which a regular file ignores, and a
    /// FIFO needs to be waited on) and close-on-exec.
    /// The corresponding C function is `open`.
    public static func open(path: UnsafePointer<CChar>, flags: CInt, mode: mode_t) throws(Failure) -> Socket {
        let file = Socket(fd: try Sys.open(path, flags | O_NONBLOCK, mode).get(), family: nil)
        file.notSocket = true
        return file
    }

    /// A non-blocking, close-on-exec duplicate of descriptor `fd`.
    /// The corresponding C function is `fcntl(F_DUPFD_CLOEXEC)`.
    public static func duplicate(fd: Int64) throws(Failure) -> Socket {
        guard fd >= 0 && fd <= Int64(CInt.max) else { throw .system(EBADF) }
        let socket = Socket(fd: try Sys.fcntl(CInt(fd), F_DUPFD_CLOEXEC, 0).get(), family: nil)
        let duplicate = try socket.descriptor()
        let changed = try Descriptor.setBlocking(duplicate, false)
        socket.nonBlockingFile = NonBlockingFiles.hold(duplicate, madeNonBlocking: changed)
        return socket
    }

    // MARK: I/O

    /// One buffer for every read: a read copies from here into a Lua string,
    /// so a `read(1 << 30)` never allocates a gigabyte for a few bytes.
    nonisolated(unsafe) static let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)

    /// Reads at most `size` bytes (64 KiB per call) into the shared read
    /// buffer, valid until the next read; nil at end of stream. Bytes the
    /// buffered reads (`readLine`, ...) hold come first, without a system call.
    /// The corresponding C function is `read`.
    public func read(size: Int64) throws(Failure) -> UnsafeRawBufferPointer? {
        let fd = try descriptor()
        if size == 0 { return UnsafeRawBufferPointer(start: Socket.readBuffer.baseAddress, count: 0) }
        if let buffered, !buffered.isEmpty {
            return buffered.take(Int(min(size, Int64(min(buffered.count, Socket.readBuffer.count)))))   // 64 KiB per call, as ever
        }
        let count = try receive(fd, Socket.readBuffer.baseAddress!, Int(min(size, Int64(Socket.readBuffer.count))))
        if count == 0 {
            // An empty datagram is a datagram: a datagram socket has no end of stream.
            return isDatagram ? UnsafeRawBufferPointer(start: Socket.readBuffer.baseAddress, count: 0) : nil
        }
        return UnsafeRawBufferPointer(rebasing: Socket.readBuffer[..<count])
    }

    /// Whether this is a datagram socket: known from its making, or asked
    /// once (SO_TYPE). A pipe or a file is not (`notSocket`, known from
    /// the making of a file and from a pipe's first read).
    public var isDatagram: Bool {
        if streamKind == .unknown {
            guard !notSocket, let type = try? intOption(SOL_SOCKET, SO_TYPE) else { return false }
            streamKind = type == CInt(SOCK_STREAM.rawValue) ? .stream : .datagram
        }
        return streamKind == .datagram
    }

    /// One read from the descriptor, or from TLS when the socket has it; 0
    /// at the end of the stream. A socket is read with recv(MSG_DONTWAIT),
    /// so a `try_` never blocks whatever another owner did to O_NONBLOCK; a
    /// pipe with read(2), which has no such flag.
    /// The corresponding C functions are `recv` and `read`.
    @inline(__always)
    func receive(_ fd: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int) throws(Failure) -> Int {
        if let secure { return try secure.read(into: buffer, count) }
        lastReadShort = true   // until a read fills the buffer
        if !notSocket {
            switch Sys.recv(fd, buffer, count) {
            case .success(let read):
                lastReadShort = read < count
                return read
            case .failure(.system(ENOTSOCK)): notSocket = true
            case .failure(let failure): throw failure
            }
        }
        let read = try Sys.read(fd, buffer, count).get()
        lastReadShort = read < count
        return read
    }

    /// Whether a blocking read should wait for readability before asking
    /// the kernel (libuv's and nginx's rule): in request/response traffic
    /// a read right after a response finds nothing, and that EAGAIN is a
    /// system call per request for nothing. True when the socket holds no
    /// bytes (pipelined requests already read are served at once) and the
    /// last read was short; never through TLS, which may hold decrypted
    /// bytes, nor for files and pipes (epoll refuses regular files). `try_`
    /// calls always ask the kernel.
    public var readWouldFail: Bool {
        // Cheapest first: a readline that finds bytes buffered stops at the
        // buffer, before the reference-counted `secure`.
        Socket.readsWaitFirst && lastReadShort && fd >= 0 && !notSocket && (buffered?.isEmpty ?? true) && secure == nil
    }

    /// Whether blocking reads wait first at all (`XPIO_WAIT_FIRST=0` turns
    /// the rule off, for measuring it).
    nonisolated(unsafe) public static var readsWaitFirst = true

    /// The corresponding C functions are `send` (MSG_DONTWAIT, as for
    /// `receive`) and, for a pipe, `write`; through TLS when the socket has it.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> Int {
        let fd = try descriptor()
        if let secure { return try secure.write(bytes) }
        // A zero-byte write needs a valid pointer all the same.
        let base = bytes.baseAddress ?? UnsafeRawPointer(Socket.readBuffer.baseAddress!)
        if !notSocket {
            switch Sys.send(fd, base, bytes.count) {
            case .success(let written): return written
            case .failure(.system(ENOTSOCK)): notSocket = true
            case .failure(let failure): throw failure
            }
        }
        return try Sys.write(fd, base, bytes.count).get()
    }

    /// Writes the bytes of `vectors` in order with one system call (the
    /// corresponding C functions are `sendmsg` with MSG_DONTWAIT, as
    /// `write`'s `send`, and for a pipe `writev`); through TLS, the first
    /// non-empty one alone (a partial write, as TLS writes record by record).
    public func write(vectors: UnsafeBufferPointer<iovec>) throws(Failure) -> Int {
        let fd = try descriptor()
        if let secure {
            guard let first = vectors.first(where: { $0.iov_len > 0 }) else { return 0 }
            return try secure.write(UnsafeRawBufferPointer(start: first.iov_base, count: first.iov_len))
        }
        if !notSocket {
            switch Sys.sendVectors(fd, vectors) {
            case .success(let written): return written
            case .failure(.system(ENOTSOCK)): notSocket = true
            case .failure(let failure): throw failure
            }
        }
        return try Sys.writev(fd, vectors).get()
    }

    /// Sends at most `count` bytes of `file` from `offset` with one system
    /// call; 0 at the file's end. The kernel copies them from the page
    /// cache: they never enter user space. Through TLS (which must see the
    /// bytes), or where `sendfile` refuses the pair (EINVAL: a file it
    /// cannot map), one `pread` into the shared read buffer and one write:
    /// bytes read but not taken are read again next time, so none is lost.
    /// The corresponding C functions are `sendfile` (Linux) and `pread`.
    public func sendFile(from file: Socket, offset: Int64, count: Int) throws(Failure) -> Int {
        let fd = try descriptor()
        let input = try file.descriptor()
        // A file sent into itself would grow as fast as it is read, for ever
        // (`cat f >> f`): refused, as cat refuses it. Sockets XPIO made (they
        // have a family) need no look.
        if family == nil {
            var ours = stat(), theirs = stat()
            try Sys.fstat(fd, &ours).get()
            try Sys.fstat(input, &theirs).get()
            if ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino { throw .xpio("xpio: the file is the output itself") }
        }
        // sendfile has no MSG_DONTWAIT: on a file another owner made
        // blocking it would block for all of `count`; pread and send
        // (MSG_DONTWAIT) instead.
        if secure == nil && Platform.linux && !Descriptor.isBlocking(fd) {
            var position = offset
            switch Sys.sendfile(fd, input, &position, count) {
            case .success(let sent): return sent
            case .failure(.system(EINVAL)), .failure(.system(ENOSYS)): break
            case .failure(.system(EOVERFLOW)) where Socket.isPastEnd(input, offset): return 0
            case .failure(let failure): throw failure
            }
        }
        let read: Int
        switch Sys.pread(input, Socket.readBuffer.baseAddress!, min(count, Socket.readBuffer.count), offset) {
        case .success(let got): read = got
        case .failure(.system(EINVAL)) where Socket.isPastEnd(input, offset): return 0
        case .failure(.system(EOVERFLOW)) where Socket.isPastEnd(input, offset): return 0
        case .failure(let failure): throw failure
        }
        // At the end, TLS sends the record it may still hold (SecureChannel.write).
        guard read > 0 else { return secure?.holdsUnsent == true ? try write(UnsafeRawBufferPointer(start: nil, count: 0)) : 0 }
        return try write(UnsafeRawBufferPointer(rebasing: Socket.readBuffer[..<read]))
    }

    /// Whether `offset` is at or past the end of regular file `fd`: an
    /// offset the kernel's file calls refuse as too large (EOVERFLOW,
    /// EINVAL) is still "the file's end" to `sendfile`, which sends 0.
    private static func isPastEnd(_ fd: CInt, _ offset: Int64) -> Bool {
        var status = stat()
        guard case .success = Sys.fstat(fd, &status) else { return false }
        return (Int32(bitPattern: UInt32(status.st_mode)) & S_IFMT) == S_IFREG && offset >= Int64(status.st_size)
    }

    // MARK: handing descriptors over

    /// Gives the descriptor up without closing it (see `Descriptor.take`:
    /// waiting tasks wake, the object reads as closed) and returns it with
    /// the bytes the buffered reads had kept, so a hand-over (STARTTLS,
    /// LuaSec) loses nothing. The flags stay as they are.
    public func detach() throws(Failure) -> (CInt, UnsafeRawBufferPointer) {
        _ = try descriptor()
        guard secure == nil else { throw .xpio("xpio: tls: a TLS socket cannot be detached") }
        nameConnection?.resolution.cancel()
        nameConnection = nil
        if let file = nonBlockingFile { _ = NonBlockingFiles.release(file) }   // the flags stay as they are
        nonBlockingFile = nil
        let kept = buffered.map { $0.take($0.count) } ?? UnsafeRawBufferPointer(start: Socket.readBuffer.baseAddress, count: 0)
        return (take(), kept)
    }

    /// The descriptor, for a child (`Spawn`, which closes this object once
    /// the child has started), with nothing of the stream left behind in
    /// the parent: bytes the buffered reads kept go back to a file that can
    /// seek (the child reads them again, as C's stdio leaves a file it
    /// flushes); a pipe or socket holding such bytes is refused, as is a
    /// TLS socket (the child would write plain text into the session).
    /// The corresponding C function is `lseek`.
    func descriptorForChild() throws(Failure) -> CInt {
        let fd = try descriptor()
        guard secure == nil else { throw .xpio("xpio: tls: a TLS socket cannot be handed to a child") }
        if let kept = buffered, !kept.isEmpty {
            guard case .success = Sys.seek(fd, -Int64(kept.count), SEEK_CUR) else {
                throw .xpio("xpio: the socket holds bytes it read ahead (read them, or detach it, first)")
            }
            _ = kept.take(kept.count)
        }
        return fd
    }

    /// A socket object for descriptor `fd`: a duplicate of it, or (`.own`)
    /// the number itself.
    public static func open(fd: Int64, _ mode: DescriptorMode) throws(Failure) -> Socket {
        mode == .own ? try adopt(fd: fd) : try duplicate(fd: fd)
    }

    /// A socket object that owns descriptor `fd` itself (no duplicate, unlike
    /// `duplicate`), made close-on-exec and non-blocking.
    /// The corresponding C function is `fcntl`.
    public static func adopt(fd: Int64) throws(Failure) -> Socket {
        guard fd >= 0 && fd <= Int64(CInt.max) else { throw .system(EBADF) }
        let number = CInt(fd)
        let flags = try Sys.fcntl(number, F_GETFD, 0).get()
        if flags & FD_CLOEXEC == 0 { _ = try Sys.fcntl(number, F_SETFD, flags | FD_CLOEXEC).get() }
        try Descriptor.setBlocking(number, false)
        return Socket(fd: number, family: nil)
    }

    /// Frees the block emptied buffered reads leave for the next one
    /// (ReadBuffer's spare).
    public static func dropSpareReadBlock() { ReadBuffer.dropSpare() }

    /// How many bytes the socket holds that the kernel no longer has
    /// (decrypted ones in TLS too).
    public func bufferedCount() throws(Failure) -> Int64 {
        _ = try descriptor()
        return Int64((buffered?.count ?? 0) + (secure?.unreadCount ?? 0))
    }

    /// Whether a read would answer without the kernel: the buffered reads
    /// hold bytes, or TLS does.
    private var holdsReadable: Bool {
        if let buffered, !buffered.isEmpty { return true }
        return secure?.hasPending ?? false
    }

    /// Readiness now, for code doing its own I/O on the descriptor: returns
    /// when the socket is readable (bytes it holds count) or writable, else
    /// `.retry`. The corresponding C function is `poll` (with no timeout).
    public func ready(_ readiness: Readiness) throws(Failure) {
        let fd = try descriptor()
        if readiness == .read && holdsReadable { return }
        var entry = pollfd(fd: fd, events: Int16(readiness == .read ? POLLIN : POLLOUT), revents: 0)
        if try Sys.poll(&entry, 1, 0).get() == 0 { throw .retry }
    }

    /// What `when_wait` waits on: the descriptor itself (TLS or not), or
    /// nothing when held bytes make it readable at once.
    public func readinessTarget(_ readiness: Readiness) throws(Failure) -> WaitTarget? {
        _ = try descriptor()
        if readiness == .read && holdsReadable { return nil }
        return WaitTarget(self, readiness)
    }

    /// Puts TLS under the socket (`tls.wrap`): bytes the buffered reads kept
    /// go to the engine first (a STARTTLS peer's ClientHello may be among
    /// them), and from then on every read and write goes through it.
    public func startTLS(engine: TLSEngine, context: TLSContext, host: UnsafePointer<CChar>?,
                         alpn: UnsafePointer<UnsafePointer<CChar>?>?, alpnCount: Int, session: UnsafeRawBufferPointer?) throws(Failure) {
        let fd = try descriptor()
        guard secure == nil else { throw .xpio("xpio: tls: socket is already TLS") }
        guard !isDatagram else { throw .xpio("xpio: tls: a datagram socket cannot speak TLS") }
        let kept = buffered.map { $0.take($0.count) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
        var start = xpio_tls_start(fd: fd, kept: kept.baseAddress, kept_length: kept.count, host: host, alpn: alpn,
                                   nalpn: CInt(alpnCount), session: session?.baseAddress, session_length: session?.count ?? 0)
        do throws(Failure) {
            secure = try SecureChannel(engine: engine, context: context, start: &start)
            // TLS sends whole records, one send each: Nagle's algorithm would
            // hold a record's tail for the peer's delayed ACK (40 ms) whenever a
            // write spans two records. Not a TCP socket: nothing to turn off.
            _ = try? setOption(.tcpNoDelay, .flag(true))
        } catch {
            // The kept bytes stay the socket's when TLS could not start.
            if kept.count > 0 { buffered?.putBack(kept) }
            throw error
        }
    }

    /// The corresponding C function is `accept4`.
    public func accept() throws(Failure) -> Socket {
        let fd = try descriptor()
        // accept4 has no per-call MSG_DONTWAIT: on a listener whose file
        // another owner made blocking (a child it was handed to by number),
        // accept only what poll says is there. (A connection another
        // process takes in between still blocks: the file is shared.)
        if Descriptor.isBlocking(fd) {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if try Sys.poll(&entry, 1, 0).get() == 0 { throw .retry }
        }
        let socket = Socket(fd: try Sys.accept4(fd).get(), family: family)
        socket.streamKind = .stream
        return socket
    }

    /// What when_read and when_write wait on; a closed socket refuses. While
    /// a name given to `connect` is being resolved, writability means the
    /// resolution's end.
    public func waitTarget(_ readiness: Readiness) throws(Failure) -> WaitTarget? {
        _ = try descriptor()
        // Bytes the buffered reads kept that no read has found too few (the
        // rest of a batch of lines): a read answers from them at once.
        if readiness == .read, let buffered, !buffered.isEmpty, !buffered.wanting { return nil }
        if readiness == .write, let pending = nameConnection, !pending.resolution.isDone {
            return try pending.resolution.waitTarget(.read)
        }
        if let secure {
            // What TLS last asked for on this side; nil when decrypted bytes wait.
            guard let wanted = secure.readiness(for: readiness == .read ? .read : .write) else { return nil }
            return WaitTarget(self, wanted)
        }
        return WaitTarget(self, readiness)
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
    ///
    /// A name is resolved first, off the Lua thread (`.retry` until then),
    /// for this socket's family (an inet6 socket takes IPv4 answers too,
    /// mapped); its addresses are then tried in order, the next one when a
    /// connection is refused or unreachable.
    /// The corresponding C function is `connect`.
    public func connect(_ endpoint: Endpoint) throws(Failure) {
        let fd = try descriptor()
        guard case .name(let host, let service) = endpoint else {
            nameConnection = nil
            if case .address(let address) = endpoint { try connect(fd, adapted(address)) }
            return
        }
        if nameConnection?.matches(host, service) != true {
            // An inet6 socket reaches IPv4 addresses too, mapped (unless
            // IPV6_V6ONLY is set, which makes them unreachable: the next is tried).
            let wanted: AddressFamily? = family == .inet6 ? nil : family
            nameConnection = NameConnection(host: host, service: service,
                                            resolution: try Resolution(host: host, service: service, family: wanted, passive: false))
        }
        let pending = nameConnection!
        do throws(Failure) {
            let addresses = try pending.resolution.addresses()
            guard !addresses.isEmpty else { throw Failure.resolution(EAI_NONAME) }
            while true {
                do throws(Failure) {
                    try connect(fd, adapted(addresses[pending.index]))
                    nameConnection = nil
                    return
                } catch .retry {
                    throw Failure.retry
                } catch {
                    guard pending.index + 1 < addresses.count, NameConnection.triesNext(error) else { throw error }
                    pending.index += 1
                }
            }
        } catch .retry {
            throw .retry
        } catch {
            nameConnection = nil
            throw error
        }
    }

    private func connect(_ fd: CInt, _ address: Address) throws(Failure) {
        var result = address.withSockaddr { Sys.connect(fd, $0, $1) }
        if case .failure(.system(ECONNABORTED)) = result {
            // Linux: the first connect after a failed one (its error already
            // read from SO_ERROR) only resets the socket; the next one starts.
            result = address.withSockaddr { Sys.connect(fd, $0, $1) }
        }
        let wasConnecting = connecting
        connecting = false
        switch result {
        case .success where !wasConnecting: return
        case .success, .failure(.system(EISCONN)):
            // After a connect under way, Linux answers 0 or EISCONN once it
            // is made, whatever address the call names: it is this call's
            // connection only if it went to `address`. EISCONN with none
            // under way: the socket was connected (or listening) before.
            if wasConnecting, let peer = try? peerAddress(), peer.isPeer(of: address) { return }
            throw .system(EISCONN)
        case .failure(.retry) where address.family == .unix:
            // A Unix listener whose backlog is full (EAGAIN: a Unix connect
            // is never in progress). Nothing announces its room: poll calls
            // the socket writable at once, and a wait would spin. Said at
            // once, as libuv does.
            throw .system(EAGAIN)
        case .failure(.retry):
            // A second call while the first is in progress (EALREADY), or one
            // after it failed: the pending error says which.
            let pending = try intOption(SOL_SOCKET, SO_ERROR)
            if pending != 0 && pending != EINPROGRESS && pending != EALREADY { throw .system(pending) }
            connecting = true
            throw .retry
        case .failure(let failure): throw failure
        }
    }

    // MARK: descriptors over Unix sockets

    /// Sends `data` with descriptors attached (SCM_RIGHTS): the peer gets
    /// duplicates, these stay open here. The corresponding C function is `sendmsg`.
    public func sendDescriptors(_ data: UnsafeRawBufferPointer, _ fds: [CInt]) throws(Failure) -> Int {
        let fd = try descriptor()
        try refuseTLS()
        try requireUnix()
        return try Sys.sendDescriptors(fd, data, fds).get()
    }

    /// Calls that would go around TLS (datagrams, descriptors) refuse a TLS socket.
    private func refuseTLS() throws(Failure) {
        if secure != nil { throw .xpio("xpio: tls: not on a TLS socket") }
    }

    /// Descriptors and credentials travel over Unix sockets only (a socket
    /// of fdopen's is asked its domain).
    private func requireUnix() throws(Failure) {
        if let family {
            if family != .unix { throw .xpio("xpio: not a unix socket") }
        } else if try intOption(SOL_SOCKET, SO_DOMAIN) != AF_UNIX {
            throw .xpio("xpio: not a unix socket")
        }
    }

    /// Receives at most `size` bytes and the descriptors sent with them (at
    /// most `max`; any more are closed at once), each wrapped as a socket,
    /// non-blocking and close-on-exec. End of stream is
    /// `nil, "xpio: end of stream"`. The corresponding C function is `recvmsg`.
    public func receiveDescriptors(size: Int64, max: Int64) throws(Failure) -> (UnsafeRawBufferPointer, [Socket]) {
        let fd = try descriptor()
        try refuseTLS()
        if let buffered, !buffered.isEmpty {
            // Bytes a buffered read kept came before any sent now: they first.
            return (buffered.take(Int(min(Swift.max(size, 1), Int64(Swift.min(buffered.count, Socket.readBuffer.count))))), [])
        }
        try requireUnix()
        let capacity = Int(min(Swift.max(size, 1), Int64(Socket.readBuffer.count)))
        let limit = Int(min(max, 253))
        var fds = [CInt](repeating: -1, count: Swift.max(limit, 1))
        var count: CInt = 0, truncated: CInt = 0
        let buffer = UnsafeMutableRawBufferPointer(rebasing: Socket.readBuffer[..<capacity])
        let received = try fds.withUnsafeMutableBufferPointer { list in
            Sys.receiveDescriptors(fd, buffer, UnsafeMutableBufferPointer(rebasing: list[..<limit]), &count, &truncated)
        }.get()
        var sockets: [Socket] = []
        for index in 0..<Int(count) {
            let socket = Socket(fd: fds[index], family: nil)
            _ = try? Descriptor.setBlocking(fds[index], false)
            sockets.append(socket)
        }
        if truncated == 2 {
            // The kernel dropped descriptors this process had no room for:
            // said so, not a silent short list. The bytes stay readable;
            // those that did arrive close with `sockets`.
            inbox.putBack(UnsafeRawBufferPointer(rebasing: Socket.readBuffer[..<received]))
            throw .xpio("xpio: descriptors sent with the bytes were lost: no descriptor was free for them")
        }
        if received == 0 && sockets.isEmpty && !isDatagram { throw .xpio("xpio: end of stream") }
        return (UnsafeRawBufferPointer(rebasing: Socket.readBuffer[..<received]), sockets)
    }

    /// The peer's credentials on a Unix socket: (pid, uid, gid).
    /// The corresponding C function is `getsockopt(SO_PEERCRED)` (or
    /// `getpeereid` where the system has no SO_PEERCRED: the pid is then -1).
    public func peerCredentials() throws(Failure) -> (CInt, CInt, CInt) {
        var pid: CInt = 0, uid: CInt = 0, gid: CInt = 0
        let fd = try descriptor()
        try requireUnix()
        try Sys.peerCredentials(fd, &pid, &uid, &gid).get()
        return (pid, uid, gid)
    }

    // MARK: datagrams

    /// Sends one datagram to `endpoint` (a name is resolved first, blocking
    /// the caller). The corresponding C function is `sendto`.
    public func sendTo(_ bytes: UnsafeRawBufferPointer, _ endpoint: Endpoint) throws(Failure) -> Int {
        let fd = try descriptor()
        try refuseTLS()
        let address = adapted(try Resolver.resolveNow(endpoint, family: family, passive: false))
        let base = bytes.baseAddress ?? UnsafeRawPointer(Socket.readBuffer.baseAddress!)
        let sent = address.withSockaddr { Sys.sendto(fd, base, bytes.count, $0, $1) }
        if case .failure(.retry) = sent, address.family == .unix, (try? peerAddress())?.isPeer(of: address) != true {
            // A Unix receiver's full queue: poll tells only a connected
            // sender of its room, so a wait would spin. Said at once.
            throw .system(EAGAIN)
        }
        return try sent.get()
    }

    /// Receives one datagram of at most `size` bytes (64 KiB per call) into
    /// the shared read buffer: the bytes, the sender's address, and the
    /// datagram's full length when it was longer than `size` (the rest is
    /// lost: the kernel discards it). On a stream socket it reads as `read`
    /// does (buffered bytes first; `nil, "xpio: end of stream"` at the end)
    /// and the address is the peer's. The corresponding C function is `recvfrom`.
    public func receiveFrom(size: Int64) throws(Failure) -> (UnsafeRawBufferPointer, Address, Int?) {
        let fd = try descriptor()
        if streamKind == .unknown {
            streamKind = try intOption(SOL_SOCKET, SO_TYPE) == CInt(SOCK_STREAM.rawValue) ? .stream : .datagram
        }
        if streamKind == .stream {
            guard let bytes = try read(size: size) else { throw .xpio("xpio: end of stream") }
            return (bytes, (try? peerAddress()) ?? Address(), nil)
        }
        let capacity = Int(min(size, Int64(Socket.readBuffer.count)))
        var sender = Address()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let full = try sender.edit(sockaddr.self) { Sys.receiveDatagram(fd, Socket.readBuffer.baseAddress!, capacity, $0, &length) }.get()
        sender.length = length
        if sender.family == nil && family == .unix {
            // An unnamed sender: the kernel gives no address at all.
            sender.edit(sockaddr.self) { $0.pointee.sa_family = sa_family_t(AF_UNIX) }
            sender.length = socklen_t(MemoryLayout<sa_family_t>.size)
        }
        let count = min(full, capacity)
        return (UnsafeRawBufferPointer(rebasing: Socket.readBuffer[..<count]), sender, full > capacity ? full : nil)
    }

    /// Shuts down reading, writing or both. The corresponding C function is `shutdown`.
    public func shutdown(read: Bool, write: Bool) throws(Failure) {
        // A TLS peer learns of the end from close_notify first (as far as it goes now).
        if write, let secure { try? secure.shutdown(waitForPeer: false) }
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

/// `connect` to a name: which name, its resolution, and the address tried now.
final class NameConnection {
    let name: [UInt8]
    let resolution: Resolution
    var index = 0

    init(host: UnsafeRawBufferPointer, service: UnsafeRawBufferPointer, resolution: Resolution) {
        name = Array(host) + [0] + Array(service)
        self.resolution = resolution
    }

    func matches(_ host: UnsafeRawBufferPointer, _ service: UnsafeRawBufferPointer) -> Bool {
        name.count == host.count + 1 + service.count && name.elementsEqual(Array(host) + [0] + Array(service))
    }

    /// The failures after which the next address is worth a try.
    static func triesNext(_ failure: Failure) -> Bool {
        guard case .system(let code) = failure else { return false }
        return code == ECONNREFUSED || code == ENETUNREACH || code == EHOSTUNREACH || code == ETIMEDOUT
            || code == EADDRNOTAVAIL || code == EAFNOSUPPORT
    }
}
