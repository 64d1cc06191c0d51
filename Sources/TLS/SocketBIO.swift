import COpenSSL
import CTLSABI

/// The BIO under every connection: OpenSSL's records go through xpio.so's
/// own `receive`/`send` (its system-call layer, MSG_NOSIGNAL included), not
/// through a socket BIO of OpenSSL's, so XPIO keeps one place that talks to
/// the kernel. Would-block becomes a BIO retry (OpenSSL then answers
/// WANT_READ/WANT_WRITE); any other errno is remembered on the connection
/// for the SSL_ERROR_SYSCALL that follows. Its data pointer is the
/// connection, unretained: the connection owns the SSL, which owns the BIO.
func socketBIOMethod() -> OpaquePointer? {
    xpio_bio_method(bioWrite, bioRead, bioControl, bioCreate, bioDestroy)
}

private func connection(_ bio: OpaquePointer) -> Connection? {
    guard let data = BIO_get_data(bio) else { return nil }
    return Unmanaged<Connection>.fromOpaque(data).takeUnretainedValue()
}

/// Whether -errno means "try again later".
private func wouldBlock(_ r: Int) -> Bool {
    r == -Int(EAGAIN) || r == -Int(EWOULDBLOCK) || r == -Int(EINTR)
}

/// Serves the bytes kept from before `wrap` first, then `receive`. 0 is the
/// peer's EOF (OpenSSL tells a clean close from a truncation itself).
private func bioRead(_ bio: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ size: Int32) -> Int32 {
    guard let bio, let buffer, size > 0, let c = connection(bio) else { return 0 }
    xpio_bio_clear_retry_flags(bio)
    if c.keptOffset < c.keptLength, let kept = c.kept {
        let n = min(Int(size), c.keptLength - c.keptOffset)
        memcpy(buffer, kept + c.keptOffset, n)
        c.keptOffset += n
        if c.keptOffset == c.keptLength {   // all served: let it go
            free(kept)
            c.kept = nil
            c.keptLength = 0
            c.keptOffset = 0
        }
        return Int32(n)
    }
    guard let receive = c.io.pointee.receive else { return -1 }
    let r = receive(c.fd, buffer, Int(size))
    if r == 0 { c.sawEOF = true }
    if r >= 0 { return Int32(r) }
    if wouldBlock(r) {
        xpio_bio_set_retry_read(bio)
    } else {
        c.systemError = Int32(-r)
    }
    return -1
}

private func bioWrite(_ bio: OpaquePointer?, _ data: UnsafePointer<CChar>?, _ size: Int32) -> Int32 {
    guard let bio, let data, size > 0, let c = connection(bio) else { return 0 }
    xpio_bio_clear_retry_flags(bio)
    guard let send = c.io.pointee.send else { return -1 }
    let r = send(c.fd, data, Int(size))
    if r > 0 { return Int32(r) }
    if r == 0 || wouldBlock(r) {
        xpio_bio_set_retry_write(bio)
    } else {
        c.systemError = Int32(-r)
    }
    return -1
}

/// OpenSSL asks for a flush after each flight (the socket has no buffer of
/// ours to flush), and BIO_eof after a read of 0: only a yes there makes it
/// tell a truncation (SSL_R_UNEXPECTED_EOF_WHILE_READING, or the end of the
/// stream under SSL_OP_IGNORE_UNEXPECTED_EOF) from a failed system call.
/// Everything else (kTLS, pending counts) is "no".
private func bioControl(_ bio: OpaquePointer?, _ command: Int32, _ number: Int, _ pointer: UnsafeMutableRawPointer?) -> Int {
    switch command {
    case BIO_CTRL_FLUSH: return 1
    case BIO_CTRL_EOF:
        guard let bio, let c = connection(bio) else { return 0 }
        return c.sawEOF ? 1 : 0
    default: return 0
    }
}

private func bioCreate(_ bio: OpaquePointer?) -> Int32 { 1 }

/// The connection, not the BIO, owns the state.
private func bioDestroy(_ bio: OpaquePointer?) -> Int32 { 1 }
