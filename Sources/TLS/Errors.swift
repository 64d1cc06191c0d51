import COpenSSL
import CTLSABI

/// Which operation met the error: a peer's close_notify is the end of the
/// stream for a read (and what a waiting shutdown waits for), an error for
/// anything else.
enum Operation {
    case handshake, read, write, shutdown
}

extension Connection {
    /// Turns SSL_get_error's answer into the ABI's status, with the message
    /// (and errno) for ERROR kept for `error`. Empties the error queue.
    func answer(_ code: Int32, _ operation: Operation) -> Int32 {
        defer { ERR_clear_error() }
        switch code {
        case SSL_ERROR_WANT_READ:
            return Status.wantRead
        case SSL_ERROR_WANT_WRITE:
            return Status.wantWrite
        case SSL_ERROR_ZERO_RETURN:
            if operation == .read || operation == .shutdown {
                peerClosed = true
                return Status.peerClosed
            }
            return fail("xpio: tls: closed by the peer")
        case SSL_ERROR_SYSCALL:
            failed = true
            if systemError != 0 {
                var text = Text(message, Connection.messageSize)
                text.append(strerror(systemError))
                errorCode = systemError
                return Status.error
            }
            return fail("xpio: tls: unexpected eof")
        case SSL_ERROR_SSL:
            failed = true
            errorCode = 0
            var text = Text(message, Connection.messageSize)
            // A failed verification shows in the handshake as a generic
            // alert; the verify result says why.
            if context.verifiesPeer && SSL_is_init_finished(ssl) != 1 {
                let result = SSL_get_verify_result(ssl)
                if result != X509_V_OK {
                    text.append("xpio: tls: certificate verify failed: ")
                    text.append(X509_verify_cert_error_string(result))
                    return Status.error
                }
            }
            let reason = firstError()
            if reason != 0 && ERR_GET_LIB(reason) == ERR_LIB_SSL && ERR_GET_REASON(reason) == XPIO_SSL_R_UNEXPECTED_EOF_WHILE_READING {
                text.append("xpio: tls: unexpected eof")
            } else if reason != 0, let s = reasonText(reason) {
                text.append(s)
            } else {
                text.append("xpio: tls: protocol error")
            }
            return Status.error
        default:
            failed = true
            return fail("xpio: tls: unexpected OpenSSL state")
        }
    }

    /// Keeps an engine message (no errno) and answers ERROR.
    func fail(_ text: StaticString) -> Int32 {
        var t = Text(message, Connection.messageSize)
        t.append(text)
        errorCode = 0
        return Status.error
    }
}

/// The text of one queued error: OpenSSL's reason string, or for a system
/// error (a failed fopen, say) strerror of its errno, which OpenSSL keeps
/// as the reason and has no string for.
func reasonText(_ e: UInt) -> UnsafePointer<CChar>? {
    if ERR_GET_LIB(e) == ERR_LIB_SYS { return UnsafePointer(strerror(ERR_GET_REASON(e))) }
    return ERR_reason_error_string(e)
}

/// Empties OpenSSL's queue and answers its first error with a text (the
/// root cause: later entries tend to be "called from here" wrappers), or 0,
/// and whether a certificate/key mismatch was among them (a key load checks
/// it against the certificate already loaded, and says so only there).
func takeErrors() -> (first: UInt, mismatch: Bool) {
    var first: UInt = 0
    var mismatch = false
    while true {
        let e = ERR_get_error_all(nil, nil, nil, nil, nil)
        if e == 0 { break }
        if first == 0 && reasonText(e) != nil { first = e }
        if ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH { mismatch = true }
    }
    return (first, mismatch)
}

func firstError() -> UInt { takeErrors().first }

/// Appends the queue's first reason ("No such file or directory", "bad
/// decrypt"), or "unknown error" when OpenSSL gave none. Empties the queue.
func appendReason(_ text: inout Text) {
    let e = firstError()
    if e != 0, let s = reasonText(e) {
        text.append(s)
    } else {
        text.append("unknown error")
    }
}

/// The ABI's statuses as Int32 (Swift imports the header's anonymous enum as Int).
enum Status {
    static var ok: Int32 { Int32(XPIO_TLS_OK) }
    static var wantRead: Int32 { Int32(XPIO_TLS_WANT_READ) }
    static var wantWrite: Int32 { Int32(XPIO_TLS_WANT_WRITE) }
    static var peerClosed: Int32 { Int32(XPIO_TLS_PEER_CLOSED) }
    static var error: Int32 { Int32(XPIO_TLS_ERROR) }
}
