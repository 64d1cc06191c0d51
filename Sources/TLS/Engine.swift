import CTLSABI
import CTLSModule

/// The provider xpio.so receives (Sources/CTLSABI/include/xpio_tls_abi.h):
/// one table of C function pointers per process, made once (Swift's lazy
/// static initialisation is thread-safe) and never freed. Each entry is a
/// thin thunk: it turns the opaque pointer back into its object and calls
/// the method that does the work (Context.swift, Connection.swift,
/// Inspection.swift).
enum Engine {
    nonisolated(unsafe) static let provider: UnsafePointer<xpio_tls_provider> = {
        let p = UnsafeMutablePointer<xpio_tls_provider>.allocate(capacity: 1)
        p.initialize(to: xpio_tls_provider(
            abi: XPIO_TLS_ABI,
            version: xpio_version(),
            context_new: contextNew,
            context_release: contextRelease,
            connection_new: connectionNew,
            connection_release: connectionRelease,
            handshake: handshake,
            read: read,
            write: write,
            shutdown: shutdown,
            pending: pending,
            unread: unread,
            unsent: unsent,
            error: error,
            info: info,
            peer_certificates: peerCertificates,
            session: session))
        return UnsafePointer(p)
    }()
}

/// What luaopen_xpio_tls (Sources/CTLSModule/module.c) hands xpio.so.
@_cdecl("xpio_tls_engine")
public func engine() -> UnsafeRawPointer {
    UnsafeRawPointer(Engine.provider)
}

private func context(_ p: UnsafeMutableRawPointer) -> Context {
    Unmanaged<Context>.fromOpaque(p).takeUnretainedValue()
}

private func connection(_ p: UnsafeMutableRawPointer?) -> Connection {
    Unmanaged<Connection>.fromOpaque(p!).takeUnretainedValue()
}

private func contextNew(_ config: UnsafePointer<xpio_tls_config>?, _ error: UnsafeMutablePointer<CChar>?,
                        _ size: Int) -> UnsafeMutableRawPointer? {
    var scratch: CChar = 0
    var text = error.map { Text($0, size) } ?? Text(&scratch, 0)
    guard let config else { return nil }
    guard let made = Context.make(config, &text) else { return nil }
    return Unmanaged.passRetained(made).toOpaque()   // xpio.so's reference
}

private func contextRelease(_ p: UnsafeMutableRawPointer?) {
    guard let p else { return }
    Unmanaged<Context>.fromOpaque(p).release()
}

private func connectionNew(_ ctx: UnsafeMutableRawPointer?, _ start: UnsafePointer<xpio_tls_start>?,
                           _ io: UnsafePointer<xpio_tls_io>?, _ error: UnsafeMutablePointer<CChar>?,
                           _ size: Int) -> UnsafeMutableRawPointer? {
    var scratch: CChar = 0
    var text = error.map { Text($0, size) } ?? Text(&scratch, 0)
    guard let ctx, let start, let io else { return nil }
    guard let made = Connection.make(context(ctx), start, io, &text) else { return nil }
    return Unmanaged.passRetained(made).toOpaque()
}

private func connectionRelease(_ p: UnsafeMutableRawPointer?) {
    guard let p else { return }
    let c = Unmanaged<Connection>.fromOpaque(p)
    c.takeUnretainedValue().close()
    c.release()   // deinit frees the SSL and drops the context
}

private func handshake(_ p: UnsafeMutableRawPointer?) -> Int32 {
    connection(p).handshake()
}

private func read(_ p: UnsafeMutableRawPointer?, _ buffer: UnsafeMutableRawPointer?, _ size: Int,
                  _ count: UnsafeMutablePointer<Int>?) -> Int32 {
    var n = 0
    let status = connection(p).read(buffer, buffer == nil ? 0 : size, &n)
    count?.pointee = n
    return status
}

private func write(_ p: UnsafeMutableRawPointer?, _ data: UnsafeRawPointer?, _ size: Int,
                   _ count: UnsafeMutablePointer<Int>?) -> Int32 {
    var n = 0
    let status = connection(p).write(data, data == nil ? 0 : size, &n)
    count?.pointee = n
    return status
}

private func shutdown(_ p: UnsafeMutableRawPointer?, _ waitPeer: Int32) -> Int32 {
    connection(p).shutdown(waitPeer != 0)
}

private func pending(_ p: UnsafeMutableRawPointer?) -> Int32 {
    connection(p).pending()
}

private func unread(_ p: UnsafeMutableRawPointer?) -> Int {
    connection(p).unread()
}

private func unsent(_ p: UnsafeMutableRawPointer?) -> Int32 {
    connection(p).stashLength > 0 ? 1 : 0
}

private func error(_ p: UnsafeMutableRawPointer?, _ code: UnsafeMutablePointer<Int32>?) -> UnsafePointer<CChar>? {
    let c = connection(p)
    code?.pointee = c.errorCode
    return UnsafePointer(c.message)
}

private func info(_ p: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<xpio_tls_info>?) -> Int32 {
    guard let out else { return Status.error }
    connection(p).info(&out.pointee)
    return Status.ok
}

private func peerCertificates(_ p: UnsafeMutableRawPointer?, _ chain: Int32,
                              _ each: (@convention(c) (UnsafeMutableRawPointer?, UnsafePointer<xpio_tls_certificate>?) -> Void)?,
                              _ user: UnsafeMutableRawPointer?) -> Int32 {
    guard let each else { return 0 }
    return connection(p).peerCertificates(chain != 0, each, user)
}

private func session(_ p: UnsafeMutableRawPointer?, _ data: UnsafeMutablePointer<UnsafeRawPointer?>?,
                     _ length: UnsafeMutablePointer<Int>?) -> Int32 {
    var d: UnsafeRawPointer? = nil
    var n = 0
    guard connection(p).session(&d, &n) else { return 0 }
    data?.pointee = d
    length?.pointee = n
    return 1
}
