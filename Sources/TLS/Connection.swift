import COpenSSL
import CTLSABI

/// One TLS connection over a socket xpio.so owns: the SSL object, the BIO
/// state (the kept bytes, the errno of a failed system call), the write
/// stash, and the buffers the ABI's strings point into.
///
/// Nothing here blocks: every OpenSSL call runs over the non-blocking
/// socket BIO (SocketBIO.swift) and answers a want instead of waiting.
final class Connection {
    let context: Context
    let ssl: OpaquePointer
    let io: UnsafePointer<xpio_tls_io>
    let fd: Int32

    /// Bytes the socket read before `wrap` (STARTTLS, cqueues' "pushback"):
    /// the BIO serves them before it calls `receive`.
    var kept: UnsafeMutablePointer<UInt8>? = nil
    var keptLength = 0
    var keptOffset = 0

    /// A chunk SSL_write_ex took but could not finish: OpenSSL wants the
    /// retry with the same bytes and length, so they are kept here (the
    /// caller's buffer is gone) and every later call sends them first.
    static let chunk = 16384
    var stash: UnsafeMutablePointer<UInt8>? = nil
    var stashLength = 0

    /// The errno of the last failed `receive`/`send` (0: none): set by the
    /// BIO, read when OpenSSL says SSL_ERROR_SYSCALL.
    var systemError: Int32 = 0
    /// `receive` answered 0: the peer closed its side (BIO_eof).
    var sawEOF = false

    /// The last ERROR: its message (what `error` answers) and errno (0 when
    /// the message is the whole story).
    static let messageSize = 256
    let message: UnsafeMutablePointer<CChar>
    var errorCode: Int32 = 0

    /// A fatal error happened: OpenSSL forbids SSL_shutdown afterwards, and
    /// every later operation answers the same ERROR (and message) at once,
    /// rather than whatever OpenSSL says about a dead connection.
    var failed = false
    /// Our close_notify went out; the peer's arrived.
    var shutdownSent = false
    var peerClosed = false

    /// Copies the ABI's strings point into, valid until the next call.
    let alpnSelected: UnsafeMutablePointer<CChar>
    var sessionDER: UnsafeMutablePointer<UInt8>? = nil
    /// The host this client named: its key in the context's session cache
    /// (nil when the context keeps none).
    var cacheKey: UnsafeMutablePointer<CChar>? = nil
    /// The name or IP address a verifying client checks (brackets
    /// stripped), for the sessions it is offered (`resume`).
    var checkedHost: UnsafeMutablePointer<CChar>? = nil
    var checkedHostIsIP = false

    private init(context: Context, ssl: OpaquePointer, io: UnsafePointer<xpio_tls_io>, fd: Int32,
                 message: UnsafeMutablePointer<CChar>, alpnSelected: UnsafeMutablePointer<CChar>) {
        self.context = context
        self.ssl = ssl
        self.io = io
        self.fd = fd
        self.message = message
        self.alpnSelected = alpnSelected
        message[0] = 0
    }

    deinit {
        SSL_free(ssl)   // frees the BIO too
        free(kept)
        free(stash)
        free(message)
        free(alpnSelected)
        free(sessionDER)
        free(cacheKey)
        free(checkedHost)
    }

    /// A client or server connection (as the context is) over start->fd, or
    /// nil with the message in `text`.
    static func make(_ context: Context, _ start: UnsafePointer<xpio_tls_start>, _ io: UnsafePointer<xpio_tls_io>,
                     _ text: inout Text) -> Connection? {
        ERR_clear_error()
        defer { ERR_clear_error() }
        let s = start.pointee
        guard io.pointee.receive != nil, io.pointee.send != nil else {
            text.append("xpio: tls: no I/O functions")
            return nil
        }
        guard let method = socketBIOMethod() else {
            text.append("xpio: tls: out of memory")
            return nil
        }
        guard let message = malloc(messageSize)?.assumingMemoryBound(to: CChar.self) else {
            text.append("xpio: tls: out of memory")
            return nil
        }
        guard let alpnSelected = malloc(256)?.assumingMemoryBound(to: CChar.self) else {
            free(message)
            text.append("xpio: tls: out of memory")
            return nil
        }
        guard let ssl = SSL_new(context.ctx) else {
            free(message)
            free(alpnSelected)
            text.append("xpio: tls: cannot make a connection: ")
            appendReason(&text)
            return nil
        }
        // From here on, deinit frees whatever was made.
        let connection = Connection(context: context, ssl: ssl, io: io, fd: s.fd, message: message, alpnSelected: alpnSelected)

        if s.kept_length > 0, let bytes = s.kept {
            guard let copy = malloc(s.kept_length)?.assumingMemoryBound(to: UInt8.self) else {
                text.append("xpio: tls: out of memory")
                return nil
            }
            memcpy(copy, bytes, s.kept_length)
            connection.kept = copy
            connection.keptLength = s.kept_length
        }

        guard let bio = BIO_new(method) else {
            text.append("xpio: tls: out of memory")
            return nil
        }
        BIO_set_data(bio, Unmanaged.passUnretained(connection).toOpaque())
        BIO_set_init(bio, 1)
        SSL_set_bio(ssl, bio, bio)   // the SSL owns the BIO from here

        if context.server {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            guard connection.setHost(s.host, &text) else { return nil }
            // A caching context resumes the host's last session unless the
            // caller gave one.
            if let cache = context.sessions, let host = s.host, host[0] != 0 {
                connection.cacheKey = strdup(host)
                if s.session_length == 0, let key = connection.cacheKey, let session = cache.session(for: key) {
                    _ = connection.resume(session)   // the SSL takes its own reference
                }
            }
            if s.nalpn > 0 {
                var length = 0
                guard let wire = alpnWire(s.alpn, s.nalpn, &length) else {
                    text.append("xpio: tls: invalid ALPN protocol name")
                    return nil
                }
                let failed = SSL_set_alpn_protos(ssl, wire, UInt32(length)) != 0   // 0 is success here
                free(wire)
                if failed {
                    text.append("xpio: tls: invalid ALPN protocol name")
                    return nil
                }
            }
            if s.session_length > 0, let der = s.session {
                var p: UnsafePointer<UInt8>? = der.assumingMemoryBound(to: UInt8.self)
                guard let session = d2i_SSL_SESSION(nil, &p, Int(s.session_length)) else {
                    text.append("xpio: tls: invalid session")
                    return nil
                }
                let set = connection.resume(session)
                SSL_SESSION_free(session)   // the SSL holds its own reference
                if set != 1 {
                    text.append("xpio: tls: invalid session")
                    return nil
                }
            }
        }
        return connection
    }

    /// The client's host: an IP literal (brackets stripped) is checked
    /// against the certificate's IP addresses and sent as no SNI (RFC 6066
    /// forbids it); a name is checked (SSL_set1_host) and sent as SNI. A
    /// context that verifies needs one.
    private func setHost(_ host: UnsafePointer<CChar>?, _ text: inout Text) -> Bool {
        guard let host, host[0] != 0 else {
            if context.verifiesPeer {
                text.append("xpio: tls: no host name to verify")
                return false
            }
            return true
        }
        var length = strlen(host)
        var start = host
        if length >= 2 && host[0] == 0x5B /* [ */ && host[length - 1] == 0x5D /* ] */ {
            start = host + 1
            length -= 2
        }
        guard let name = malloc(length + 1)?.assumingMemoryBound(to: CChar.self) else {
            text.append("xpio: tls: out of memory")
            return false
        }
        checkedHost = name   // freed with the connection
        memcpy(name, start, length)
        name[length] = 0

        var address = (UInt64(0), UInt64(0))
        let isIP = inet_pton(AF_INET, name, &address) == 1 || inet_pton(AF_INET6, name, &address) == 1
        checkedHostIsIP = isIP
        if isIP {
            if context.verifiesPeer && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1 {
                text.append("xpio: tls: invalid host")
                return false
            }
            return true
        }
        if context.verifiesPeer {
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            if SSL_set1_host(ssl, name) != 1 {
                text.append("xpio: tls: invalid host")
                return false
            }
        }
        if xpio_ssl_set_tlsext_host_name(ssl, name) != 1 {
            text.append("xpio: tls: invalid host")
            return false
        }
        return true
    }

    /// Offers `session` for resumption (SSL_set_session; 1 when OpenSSL
    /// took it). Resuming skips the checks of the peer's certificate:
    /// OpenSSL carries over the session's verification result, and never
    /// checks the host again. So a verifying client resumes only a session
    /// whose peer was verified and whose certificate names the host checked
    /// now; any other (from a `verify = false` connection, or another host)
    /// is left out, and the full handshake checks the peer.
    func resume(_ session: OpaquePointer) -> Int32 {
        guard SSL_set_session(ssl, session) == 1 else { return 0 }
        guard context.verifiesPeer else { return 1 }
        // SSL_set_session copies the session's result into the SSL.
        if SSL_get_verify_result(ssl) == X509_V_OK, let peer = SSL_SESSION_get0_peer(session), let host = checkedHost {
            let matches = checkedHostIsIP
                ? X509_check_ip_asc(peer, host, 0) == 1
                : X509_check_host(peer, host, strlen(host), UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS), nil) == 1
            if matches { return 1 }
        }
        _ = SSL_set_session(ssl, nil)
        return 1
    }

    // MARK: operations (each: clear the error queue, flush the stash, act, map)

    /// Starts an operation: OpenSSL's error queue is per thread and shared,
    /// and SSL_get_error reads it, so it must hold this call's errors only.
    private func begin() {
        ERR_clear_error()
        systemError = 0
    }

    func handshake() -> Int32 {
        begin()
        if failed { return Status.error }
        let flushed = flushStash()
        guard flushed == Status.ok else { return flushed }
        if SSL_is_init_finished(ssl) == 1 { return Status.ok }
        let r = SSL_do_handshake(ssl)
        if r == 1 { return Status.ok }
        return answer(SSL_get_error(ssl, r), .handshake)
    }

    /// A read of size 0 (or no buffer) only flushes the stash.
    func read(_ buffer: UnsafeMutableRawPointer?, _ size: Int, _ count: inout Int) -> Int32 {
        count = 0
        begin()
        if failed { return Status.error }
        let flushed = flushStash()
        guard flushed == Status.ok else { return flushed }
        guard size > 0, let buffer else { return Status.ok }
        var n = 0
        if SSL_read_ex(ssl, buffer, size, &n) == 1 {
            count = n
            return Status.ok
        }
        return answer(SSL_get_error(ssl, 0), .read)
    }

    /// At most one record's worth per call; a chunk OpenSSL could not send
    /// at once is stashed and counted as taken.
    func write(_ data: UnsafeRawPointer?, _ size: Int, _ count: inout Int) -> Int32 {
        count = 0
        begin()
        if failed { return Status.error }
        let flushed = flushStash()
        guard flushed == Status.ok else { return flushed }
        guard size > 0, let data else { return Status.ok }
        let length = min(size, Connection.chunk)
        var n = 0
        if SSL_write_ex(ssl, data, length, &n) == 1 {
            count = n
            return Status.ok
        }
        let status = answer(SSL_get_error(ssl, 0), .write)
        guard status == Status.wantRead || status == Status.wantWrite else { return status }
        if stash == nil {
            stash = malloc(Connection.chunk)?.assumingMemoryBound(to: UInt8.self)
        }
        guard let stash else {
            // Cannot keep the chunk: OpenSSL still expects its retry, so the
            // connection is unusable. Say so rather than lose bytes.
            return fail("xpio: tls: out of memory")
        }
        memcpy(stash, data, length)
        stashLength = length
        count = length
        return Status.ok
    }

    /// Retries the stashed chunk (same bytes, same length) until it is all
    /// sent: OK, or the want (or error) the retry met.
    private func flushStash() -> Int32 {
        while stashLength > 0, let stash {
            var n = 0
            if SSL_write_ex(ssl, stash, stashLength, &n) != 1 {
                return answer(SSL_get_error(ssl, 0), .write)
            }
            // Partial writes are on: the rest is a new write, not a retry.
            if n < stashLength { memmove(stash, stash + n, stashLength - n) }
            stashLength -= n
        }
        return Status.ok
    }

    /// close_notify once; with waitPeer, then reads (discarding any data
    /// still in flight) until the peer's close_notify. SSL_shutdown alone
    /// would fail with "unexpected record" on application data arriving
    /// after ours, which a peer may well still be sending.
    func shutdown(_ waitPeer: Bool) -> Int32 {
        begin()
        if failed { return Status.error }
        let flushed = flushStash()
        guard flushed == Status.ok else { return flushed }
        if !shutdownSent {
            let r = SSL_shutdown(ssl)
            if r < 0 { return answer(SSL_get_error(ssl, r), .shutdown) }
            shutdownSent = true   // 0: sent (the alert got through the BIO, or SSL_shutdown would want)
            if r == 1 { peerClosed = true }
        }
        guard waitPeer && !peerClosed else { return Status.ok }
        var scratch = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while true {
            var n = 0
            let r = withUnsafeMutableBytes(of: &scratch) { SSL_read_ex(ssl, $0.baseAddress, $0.count, &n) }
            if r == 1 { continue }
            let status = answer(SSL_get_error(ssl, 0), .shutdown)
            if status == Status.peerClosed {
                peerClosed = true
                _ = SSL_shutdown(ssl)   // records the exchange as complete; nothing left to send
                ERR_clear_error()
                return Status.ok
            }
            return status
        }
    }

    /// Decrypted bytes inside OpenSSL, or kept bytes the BIO has not served
    /// yet: either way epoll cannot see them, so the caller must read first.
    func pending() -> Int32 {
        SSL_pending(ssl) > 0 || keptOffset < keptLength ? 1 : 0
    }

    /// The decrypted bytes a read answers without I/O.
    func unread() -> Int { Int(max(0, SSL_pending(ssl))) }

    /// Best-effort close_notify (the BIO never blocks, the answer is
    /// ignored), only over a connection that is up and healthy.
    func close() {
        ERR_clear_error()
        if SSL_is_init_finished(ssl) == 1 && !failed && !shutdownSent {
            _ = SSL_shutdown(ssl)
        }
        ERR_clear_error()
    }
}
