import CSystem
import CTLSABI

/// The TLS engine `require "xpio.tls"` installed: xpio/tls.so's table of C
/// functions (Sources/CTLSABI). The runtime knows this table, never
/// OpenSSL, so xpio.so stays libc-only.
public typealias TLSEngine = UnsafePointer<xpio_tls_provider>

/// Whether a TLS server asks clients for a certificate (`verify_client`).
public enum VerifyClient { case require, optional }

/// Which operation a TLS connection waits for: each keeps the readiness
/// the engine last asked of it, so a reader task and a writer task on one
/// socket wait for what each needs (a read may need writability).
public enum TLSOperation: Int { case read, write, handshake, shutdown }

/// A TLS context: the settings and certificates connections are made with
/// (`tls.client`, `tls.server`). The engine frees it after its last
/// connection, so closing it never breaks one.
public final class TLSContext {
    let engine: TLSEngine
    private var context: UnsafeMutableRawPointer?
    public let isServer: Bool

    /// A context from `config`, or the engine's message.
    public init(engine: TLSEngine, config: inout xpio_tls_config) throws(Failure) {
        self.engine = engine
        isServer = config.server != 0
        guard let made = engine.pointee.context_new(&config, TLSContext.message.baseAddress, TLSContext.message.count) else {
            throw .message(EngineText(UnsafePointer(TLSContext.message.baseAddress!)))
        }
        context = made
    }

    deinit { dispose() }

    public var isClosed: Bool { context == nil }

    public func close() throws(Failure) {
        guard !isClosed else { throw .closed("tls context") }
        dispose()
    }

    public func dispose() {
        guard let context else { return }
        self.context = nil
        engine.pointee.context_release(context)
    }

    func open() throws(Failure) -> UnsafeMutableRawPointer {
        guard let context else { throw .closed("tls context") }
        return context
    }

    /// Where the engine writes why it could not make a context or a
    /// connection: read by the Lua edge before the next such call.
    nonisolated(unsafe) static let message = UnsafeMutableBufferPointer<CChar>.allocate(capacity: 512)
}

/// One socket's TLS connection in the engine: what `tls.wrap` puts under a
/// socket, which then reads and writes through it. The engine does its I/O
/// through `SecureChannel.io` (XPIO's `Sys`), never blocks, and answers
/// "want read" or "want write" when it cannot go on.
public final class SecureChannel {
    let engine: TLSEngine
    private var connection: UnsafeMutableRawPointer?
    /// What each operation last waited for (`TLSOperation` order).
    private var wants: [Readiness] = [.read, .write, .read, .write]

    init(engine: TLSEngine, context: TLSContext, start: inout xpio_tls_start) throws(Failure) {
        self.engine = engine
        let made = engine.pointee.connection_new(try context.open(), &start, &SecureChannel.io,
                                                 TLSContext.message.baseAddress, TLSContext.message.count)
        guard let made else { throw .message(EngineText(UnsafePointer(TLSContext.message.baseAddress!))) }
        connection = made
    }

    /// Lets the engine go: a close_notify as far as it goes without
    /// waiting, then the connection is freed. Called while the descriptor
    /// is still open (a close, a collection), never after.
    func release() {
        guard let connection else { return }
        self.connection = nil
        engine.pointee.connection_release(connection)
    }

    deinit { release() }

    /// The engine's connection, for the Lua edge's tables (`tlsinfo`).
    public var handle: UnsafeMutableRawPointer? { connection }

    /// The readiness operation `operation` waits for; nil: at once (decrypted bytes wait in the engine).
    public func readiness(for operation: TLSOperation) -> Readiness? {
        if operation == .read && hasPending { return nil }
        return wants[operation.rawValue]
    }

    /// Decrypted bytes waiting in the engine: bytes the socket holds.
    public var unreadCount: Int {
        guard let connection else { return 0 }
        return engine.pointee.unread(connection)
    }

    /// Whether the engine still holds a record `write` counted as taken.
    public var holdsUnsent: Bool {
        guard let connection else { return false }
        return engine.pointee.unsent(connection) != 0
    }

    /// Whether a read would answer without I/O (decrypted bytes, or bytes
    /// kept from before the wrap, wait in the engine).
    var hasPending: Bool {
        guard let connection else { return false }
        return engine.pointee.pending(connection) != 0
    }

    /// Reads decrypted bytes; 0 at the peer's close_notify.
    func read(into buffer: UnsafeMutableRawPointer, _ size: Int) throws(Failure) -> Int {
        let connection = try open()
        var count = 0
        let status = engine.pointee.read(connection, buffer, size, &count)
        if status == Int32(XPIO_TLS_PEER_CLOSED) { return 0 }
        try check(status, .read)
        return count
    }

    /// Writes (at most a record's worth), answering what the engine took.
    /// The engine counts a record the kernel could not take yet as taken
    /// and sends it first at the next call: a write of nothing only sends
    /// that (`retry` while it cannot), which is how a blocking write makes
    /// sure its last record left before it returns (`holdsUnsent`).
    func write(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> Int {
        let connection = try open()
        var count = 0
        let size = bytes.baseAddress == nil ? 0 : bytes.count
        try check(engine.pointee.write(connection, bytes.baseAddress, size, &count), .write)
        return count
    }

    public func handshake() throws(Failure) {
        try check(engine.pointee.handshake(try open()), .handshake)
    }

    public func shutdown(waitForPeer: Bool) throws(Failure) {
        let status = engine.pointee.shutdown(try open(), waitForPeer ? 1 : 0)
        if status == Int32(XPIO_TLS_PEER_CLOSED) { return }
        try check(status, .shutdown)
    }

    /// The session to resume later (DER), valid until the next call; nil when there is none yet.
    public func session() throws(Failure) -> UnsafeRawBufferPointer? {
        var data: UnsafeRawPointer?
        var length = 0
        guard engine.pointee.session(try open(), &data, &length) != 0, let data else { return nil }
        return UnsafeRawBufferPointer(start: data, count: length)
    }

    private func open() throws(Failure) -> UnsafeMutableRawPointer {
        guard let connection else { throw .closed("socket") }
        return connection
    }

    /// An engine status as a failure: a want is `retry` (remembering the
    /// readiness for this operation), an error its message or errno.
    private func check(_ status: Int32, _ operation: TLSOperation) throws(Failure) {
        switch status {
        case Int32(XPIO_TLS_OK): return
        case Int32(XPIO_TLS_WANT_READ):
            wants[operation.rawValue] = .read
            throw .retry
        case Int32(XPIO_TLS_WANT_WRITE):
            wants[operation.rawValue] = .write
            throw .retry
        case Int32(XPIO_TLS_PEER_CLOSED):
            throw .xpio("xpio: tls: connection closed by the peer")
        default:
            var code: CInt = 0
            guard let connection, let message = engine.pointee.error(connection, &code) else { throw .xpio("xpio: tls: error") }
            if code != 0 { throw .errno(code) }
            throw .message(EngineText(message))
        }
    }

    /// XPIO's system calls for the engine's BIO: a count, or -errno.
    nonisolated(unsafe) static var io = xpio_tls_io(
        receive: { fd, buffer, size in SecureChannel.answer(Sys.recv(fd, buffer!, size)) },
        send: { fd, data, size in SecureChannel.answer(Sys.send(fd, data!, size)) }
    )

    private static func answer(_ result: Result<Int, Failure>) -> Int {
        switch result {
        case .success(let count): return count
        case .failure(.system(let code)): return -Int(code)
        case .failure: return -Int(EAGAIN)
        }
    }
}
