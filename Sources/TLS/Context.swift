import COpenSSL
import CTLSABI

/// A `tls.client{}` or `tls.server{}` context: the SSL_CTX connections are
/// made from, plus what its callbacks read at handshake time (the server's
/// ALPN list, the SNI map). A Swift class, so the reference count the ABI
/// asks for ("freed after the last connection") is Swift's own: xpio.so
/// holds one reference (dropped by `context_release`), every connection
/// holds another.
final class Context {
    /// The default SSL_CTX (every name the SNI map does not list).
    let ctx: OpaquePointer
    let server: Bool
    /// Whether the peer's certificate is checked: a client with verify on,
    /// a server asking for client certificates. `info.verified` and the
    /// "certificate verify failed" message depend on it.
    let verifiesPeer: Bool
    /// The server's ALPN protocols, wire format, in its order of preference.
    let alpn: UnsafeMutablePointer<UInt8>?
    let alpnLength: Int
    /// The SNI map: names (malloc'd copies) and their SSL_CTXs.
    let sniNames: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    let sniContexts: UnsafeMutablePointer<OpaquePointer?>?
    let sniCount: Int
    /// A client's sessions by host (`session_cache = true`), or nil.
    let sessions: SessionCache?

    private init(ctx: OpaquePointer, server: Bool, verifiesPeer: Bool,
                 alpn: UnsafeMutablePointer<UInt8>?, alpnLength: Int,
                 sniNames: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                 sniContexts: UnsafeMutablePointer<OpaquePointer?>?, sniCount: Int, cachesSessions: Bool) {
        self.ctx = ctx
        self.server = server
        self.verifiesPeer = verifiesPeer
        self.alpn = alpn
        self.alpnLength = alpnLength
        self.sniNames = sniNames
        self.sniContexts = sniContexts
        self.sniCount = sniCount
        self.sessions = !server && cachesSessions ? SessionCache() : nil
    }

    deinit {
        SSL_CTX_free(ctx)
        for i in 0..<sniCount {
            free(sniNames?[i])
            SSL_CTX_free(sniContexts?[i])
        }
        free(sniNames)
        free(sniContexts)
        free(alpn)
    }

    /// Builds a context from the configuration, or answers nil with the
    /// message in `text`. OpenSSL's error queue is emptied either way.
    static func make(_ config: UnsafePointer<xpio_tls_config>, _ text: inout Text) -> Context? {
        ERR_clear_error()
        defer { ERR_clear_error() }
        let c = config.pointee
        let server = c.server != 0
        guard let ctx = makeSSLContext(c, cert: c.cert, key: c.key, &text) else { return nil }

        var alpn: UnsafeMutablePointer<UInt8>? = nil
        var alpnLength = 0
        if c.nalpn > 0 {
            guard let wire = alpnWire(c.alpn, c.nalpn, &alpnLength) else {
                SSL_CTX_free(ctx)
                text.append("xpio: tls: invalid ALPN protocol name")
                return nil
            }
            if server {
                alpn = wire
            } else {
                let failed = SSL_CTX_set_alpn_protos(ctx, wire, UInt32(alpnLength)) != 0   // 0 is success here
                free(wire)
                alpnLength = 0
                if failed {
                    SSL_CTX_free(ctx)
                    text.append("xpio: tls: invalid ALPN protocol name")
                    return nil
                }
            }
        }

        // The SNI map: one SSL_CTX per name, with the same settings.
        let count = server && c.nsni > 0 ? Int(c.nsni) : 0
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        var contexts: UnsafeMutablePointer<OpaquePointer?>? = nil
        if count > 0 {
            names = calloc(count, MemoryLayout<UnsafeMutablePointer<CChar>?>.stride)?
                .assumingMemoryBound(to: UnsafeMutablePointer<CChar>?.self)
            contexts = calloc(count, MemoryLayout<OpaquePointer?>.stride)?
                .assumingMemoryBound(to: OpaquePointer?.self)
        }
        let context = Context(ctx: ctx, server: server, verifiesPeer: server ? c.verify_client > 0 : c.verify != 0,
                              alpn: alpn, alpnLength: alpnLength,
                              sniNames: names, sniContexts: contexts, sniCount: (names != nil && contexts != nil) ? count : 0,
                              cachesSessions: c.session_cache != 0)
        if count > 0 && (names == nil || contexts == nil) {
            text.append("xpio: tls: out of memory")
            return nil   // deinit frees what was made
        }
        for i in 0..<count {
            guard let name = c.sni_names?[i], let sniCtx = makeSSLContext(c, cert: c.sni_certs?[i], key: c.sni_keys?[i], &text),
                  let copy = duplicate(name) else {
                if text.length == 0 { text.append("xpio: tls: out of memory") }
                return nil
            }
            names?[i] = copy
            contexts?[i] = sniCtx
        }
        context.installCallbacks()
        return context
    }

    /// The server's callbacks, on the default SSL_CTX and every SNI one
    /// (after SSL_set_SSL_CTX, OpenSSL reads ALPN's from the new one). Their
    /// argument is this object, unretained: SSL_CTXs die with it.
    private func installCallbacks() {
        if sessions != nil { SSL_CTX_sess_set_new_cb(ctx, storeNewSession) }
        guard server else { return }
        let me = Unmanaged.passUnretained(self).toOpaque()
        if alpn != nil {
            SSL_CTX_set_alpn_select_cb(ctx, selectALPN, me)
            for i in 0..<sniCount { SSL_CTX_set_alpn_select_cb(sniContexts?[i], selectALPN, me) }
        }
        if sniCount > 0 { _ = xpio_ssl_ctx_set_servername_callback(ctx, selectContext, me) }
    }
}

/// One SSL_CTX with the configuration's settings and the given certificate
/// and key (the default pair, or one of the SNI map's), or nil with the
/// message in `text`.
private func makeSSLContext(_ c: xpio_tls_config, cert: UnsafePointer<CChar>?, key: UnsafePointer<CChar>?,
                            _ text: inout Text) -> OpaquePointer? {
    let server = c.server != 0
    var minimum: Int32 = TLS1_2_VERSION
    var maximum: Int32 = 0   // 0: the highest OpenSSL has
    if let v = c.min_version {
        guard let parsed = tlsVersion(v) else { text.append("xpio: tls: unknown TLS version"); return nil }
        minimum = parsed
    }
    if let v = c.max_version {
        guard let parsed = tlsVersion(v) else { text.append("xpio: tls: unknown TLS version"); return nil }
        maximum = parsed
    }
    if server && (cert == nil || key == nil) {
        text.append("xpio: tls: a server needs cert and key")
        return nil
    }
    // Settings that could only fail later, at every handshake, fail here.
    if (cert == nil) != (key == nil) {
        text.append("xpio: tls: cert and key go together")
        return nil
    }
    if maximum != 0 && minimum > maximum {
        text.append("xpio: tls: min_version is above max_version")
        return nil
    }
    if server && c.verify_client > 0 && c.client_ca == nil {
        text.append("xpio: tls: verify_client needs client_ca")
        return nil
    }
    guard let ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()) else {
        text.append("xpio: tls: cannot make a context: ")
        appendReason(&text)
        return nil
    }
    var ok = false
    defer { if !ok { SSL_CTX_free(ctx) } }

    if xpio_ssl_ctx_set_min_proto_version(ctx, minimum) != 1 || xpio_ssl_ctx_set_max_proto_version(ctx, maximum) != 1 {
        text.append("xpio: tls: unknown TLS version")
        return nil
    }
    var options = XPIO_SSL_OP_NO_RENEGOTIATION
    if server && c.tickets == 0 { options |= XPIO_SSL_OP_NO_TICKET }
    if c.ignore_unexpected_eof != 0 { options |= XPIO_SSL_OP_IGNORE_UNEXPECTED_EOF }
    _ = SSL_CTX_set_options(ctx, options)
    _ = xpio_ssl_ctx_set_mode(ctx, XPIO_SSL_MODES)
    if server {
        if c.tickets == 0 { _ = SSL_CTX_set_num_tickets(ctx, 0) }
        // Resumption with client certificates needs a session id context.
        _ = SSL_CTX_set_session_id_context(ctx, "xpio", 4)
    } else if c.session_cache != 0 {
        _ = xpio_ssl_ctx_set_session_cache_client(ctx)
    }
    if let ciphers = c.ciphers, SSL_CTX_set_cipher_list(ctx, ciphers) != 1 {
        text.append("xpio: tls: invalid ciphers")
        return nil
    }
    if let suites = c.ciphersuites, SSL_CTX_set_ciphersuites(ctx, suites) != 1 {
        text.append("xpio: tls: invalid ciphersuites")
        return nil
    }

    // Whom to trust.
    if !server {
        if c.verify != 0 {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            if let ca = c.ca {
                if !loadVerifyLocations(ctx, ca) {
                    text.append("xpio: tls: cannot load CA: ")
                    appendReason(&text)
                    return nil
                }
            } else if SSL_CTX_set_default_verify_paths(ctx) != 1 {
                text.append("xpio: tls: cannot load CA: ")
                appendReason(&text)
                return nil
            }
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
    } else {
        if let file = c.client_ca {
            // The names the server asks for (CertificateRequest), and the
            // same file as what client chains are checked against.
            guard SSL_CTX_load_verify_file(ctx, file) == 1, let names = SSL_load_client_CA_file(file) else {
                text.append("xpio: tls: cannot load CA: ")
                appendReason(&text)
                return nil
            }
            SSL_CTX_set_client_CA_list(ctx, names)   // takes ownership of names
        }
        switch c.verify_client {
        case 1: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        case 2: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        default: SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
    }

    // Who we are.
    if let cert {
        if SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 {
            text.append("xpio: tls: cannot load certificate: ")
            appendReason(&text)
            return nil
        }
    }
    if let key {
        // Always our callback, even without a password: OpenSSL's default
        // one would prompt on the terminal. The password is the caller's
        // string, valid during this call only.
        SSL_CTX_set_default_passwd_cb(ctx, passwordCallback)
        SSL_CTX_set_default_passwd_cb_userdata(ctx, UnsafeMutableRawPointer(mutating: c.password))
        let loaded = SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1
        SSL_CTX_set_default_passwd_cb_userdata(ctx, nil)
        if !loaded {
            let errors = takeErrors()
            if errors.mismatch {
                text.append("xpio: tls: certificate and key do not match")
            } else {
                text.append("xpio: tls: cannot load key: ")
                if errors.first != 0, let reason = reasonText(errors.first) { text.append(reason) } else { text.append("unknown error") }
            }
            return nil
        }
        if cert != nil && SSL_CTX_check_private_key(ctx) != 1 {
            text.append("xpio: tls: certificate and key do not match")
            return nil
        }
    }
    ok = true
    return ctx
}

/// "1.0" ... "1.3" as OpenSSL's version numbers; nil for anything else.
private func tlsVersion(_ s: UnsafePointer<CChar>) -> Int32? {
    if equal(s, "1.0") { return TLS1_VERSION }
    if equal(s, "1.1") { return TLS1_1_VERSION }
    if equal(s, "1.2") { return TLS1_2_VERSION }
    if equal(s, "1.3") { return TLS1_3_VERSION }
    return nil
}

/// Whether a C string is exactly a static one.
func equal(_ s: UnsafePointer<CChar>, _ literal: StaticString) -> Bool {
    literal.withUTF8Buffer { bytes in
        var i = 0
        for byte in bytes {
            if UInt8(bitPattern: s[i]) != byte { return false }
            i += 1
        }
        return s[i] == 0
    }
}

/// A CA file or a directory of hashed CA files (c_rehash), told apart by stat.
private func loadVerifyLocations(_ ctx: OpaquePointer, _ path: UnsafePointer<CChar>) -> Bool {
    var info = stat()
    if stat(path, &info) == 0 && (Int32(bitPattern: info.st_mode) & S_IFMT) == S_IFDIR {
        return SSL_CTX_load_verify_dir(ctx, path) == 1
    }
    return SSL_CTX_load_verify_file(ctx, path) == 1
}

/// The wire form of an ALPN list (each name prefixed by its length), in a
/// malloc'd buffer; nil if a name is empty or longer than 255 bytes.
func alpnWire(_ list: UnsafePointer<UnsafePointer<CChar>?>?, _ count: Int32, _ length: inout Int) -> UnsafeMutablePointer<UInt8>? {
    guard let list, count > 0 else { return nil }
    var total = 0
    for i in 0..<Int(count) {
        guard let name = list[i] else { return nil }
        let n = strlen(name)
        if n == 0 || n > 255 { return nil }
        total += 1 + n
    }
    guard let wire = malloc(total)?.assumingMemoryBound(to: UInt8.self) else { return nil }
    var at = 0
    for i in 0..<Int(count) {
        let name = list[i]!
        let n = strlen(name)
        wire[at] = UInt8(n)
        memcpy(wire + at + 1, name, n)
        at += 1 + n
    }
    length = total
    return wire
}

/// pem_password_cb: copies the configured password (NULL: none, which
/// fails the load of an encrypted key instead of prompting).
private func passwordCallback(_ buffer: UnsafeMutablePointer<CChar>?, _ size: Int32, _ rwflag: Int32,
                              _ user: UnsafeMutableRawPointer?) -> Int32 {
    guard let buffer, let user else { return 0 }
    let password = user.assumingMemoryBound(to: CChar.self)
    let n = min(strlen(password), Int(size))
    memcpy(buffer, password, n)
    return Int32(n)
}

/// The server's ALPN choice: the first of the SERVER's protocols the client
/// offers (SSL_select_next_proto walks the server list in order); no
/// overlap is not fatal, the handshake goes on without ALPN.
private func selectALPN(_ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
                        _ outLength: UnsafeMutablePointer<UInt8>?, _ offered: UnsafePointer<UInt8>?,
                        _ offeredLength: UInt32, _ arg: UnsafeMutableRawPointer?) -> Int32 {
    guard let arg, let out, let outLength, let offered else { return SSL_TLSEXT_ERR_NOACK }
    let context = Unmanaged<Context>.fromOpaque(arg).takeUnretainedValue()
    guard let alpn = context.alpn else { return SSL_TLSEXT_ERR_NOACK }
    var chosen: UnsafeMutablePointer<UInt8>? = nil
    var length: UInt8 = 0
    let answer = SSL_select_next_proto(&chosen, &length, alpn, UInt32(context.alpnLength), offered, offeredLength)
    guard answer == OPENSSL_NPN_NEGOTIATED, let chosen else { return SSL_TLSEXT_ERR_NOACK }
    out.pointee = UnsafePointer(chosen)
    outLength.pointee = length
    return SSL_TLSEXT_ERR_OK
}

/// The servername callback: switches the connection to the SNI map's
/// SSL_CTX for the name the client sent (case-insensitively); other names,
/// and no name, keep the default certificate.
private func selectContext(_ ssl: OpaquePointer?, _ alert: UnsafeMutablePointer<Int32>?,
                           _ arg: UnsafeMutableRawPointer?) -> Int32 {
    guard let ssl, let arg, let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else {
        return SSL_TLSEXT_ERR_OK
    }
    let context = Unmanaged<Context>.fromOpaque(arg).takeUnretainedValue()
    for i in 0..<context.sniCount {
        if let known = context.sniNames?[i], strcasecmp(known, name) == 0 {
            _ = SSL_set_SSL_CTX(ssl, context.sniContexts?[i])
            break
        }
    }
    return SSL_TLSEXT_ERR_OK
}
