import COpenSSL
import CTLSABI

/// What a connection agreed, the peer's certificates and the session to
/// resume: read-only questions, none of which does I/O.
extension Connection {
    func info(_ info: inout xpio_tls_info) {
        ERR_clear_error()
        let done = SSL_is_init_finished(ssl) == 1
        info.version = done ? SSL_get_version(ssl) : nil
        info.cipher = done ? SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)) : nil
        var protocolName: UnsafePointer<UInt8>? = nil
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &protocolName, &length)
        if let protocolName, length > 0 {
            memcpy(alpnSelected, protocolName, Int(length))   // <= 255 by the wire format
            alpnSelected[Int(length)] = 0
            info.alpn = UnsafePointer(alpnSelected)
        } else {
            info.alpn = nil
        }
        info.servername = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)
        info.resumed = SSL_session_reused(ssl)
        info.verified = done && context.verifiesPeer && SSL_get0_peer_certificate(ssl) != nil
            && SSL_get_verify_result(ssl) == X509_V_OK ? 1 : 0
        ERR_clear_error()
    }

    /// Calls `each` for the peer's certificate and, with `chain`, the rest
    /// of its chain: a server's SSL_get_peer_cert_chain leaves the client's
    /// leaf out and a client's has it first, so the leaf is given first and
    /// skipped wherever it shows in the chain.
    func peerCertificates(_ chain: Bool, _ each: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<xpio_tls_certificate>?) -> Void,
                          _ user: UnsafeMutableRawPointer?) -> Int32 {
        ERR_clear_error()
        defer { ERR_clear_error() }
        guard let leaf = SSL_get1_peer_certificate(ssl) else { return 0 }
        defer { X509_free(leaf) }
        var count: Int32 = 0
        if describe(leaf, each, user) { count += 1 }
        guard chain, let stack = SSL_get_peer_cert_chain(ssl) else { return count }
        for i in 0..<xpio_sk_x509_num(stack) {
            guard let x = xpio_sk_x509_value(stack, i), X509_cmp(x, leaf) != 0 else { continue }
            if describe(x, each, user) { count += 1 }
        }
        return count
    }

    /// The DER of the session to resume, kept until the next call; false
    /// when there is none yet or it cannot be resumed.
    func session(_ data: inout UnsafeRawPointer?, _ length: inout Int) -> Bool {
        ERR_clear_error()
        defer { ERR_clear_error() }
        guard let session = SSL_get1_session(ssl) else { return false }
        defer { SSL_SESSION_free(session) }
        guard SSL_SESSION_is_resumable(session) == 1 else { return false }
        let n = i2d_SSL_SESSION(session, nil)
        guard n > 0, let der = malloc(Int(n))?.assumingMemoryBound(to: UInt8.self) else { return false }
        var p: UnsafeMutablePointer<UInt8>? = der
        guard i2d_SSL_SESSION(session, &p) == n else {
            free(der)
            return false
        }
        free(sessionDER)
        sessionDER = der
        data = UnsafeRawPointer(der)
        length = Int(n)
        return true
    }
}

/// Fills one xpio_tls_certificate from an X509 and calls `each` with it;
/// everything it points to is freed on return. False if memory ran out.
private func describe(_ x: OpaquePointer, _ each: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<xpio_tls_certificate>?) -> Void,
                      _ user: UnsafeMutableRawPointer?) -> Bool {
    // Memory BIOs hold the texts; a NUL written last makes each a C string.
    guard let subject = BIO_new(BIO_s_mem()) else { return false }
    defer { BIO_free(subject) }
    guard let issuer = BIO_new(BIO_s_mem()) else { return false }
    defer { BIO_free(issuer) }
    guard let pem = BIO_new(BIO_s_mem()) else { return false }
    defer { BIO_free(pem) }
    guard X509_NAME_print_ex(subject, X509_get_subject_name(x), 0, XPIO_XN_FLAG_RFC2253) >= 0,
          X509_NAME_print_ex(issuer, X509_get_issuer_name(x), 0, XPIO_XN_FLAG_RFC2253) >= 0,
          PEM_write_bio_X509(pem, x) == 1 else { return false }
    guard let subjectText = terminated(subject, nil), let issuerText = terminated(issuer, nil) else { return false }
    var pemLength = 0
    guard let pemText = terminated(pem, &pemLength) else { return false }

    // Serial: hex of the integer (BN_bn2hex, uppercase).
    var serial: UnsafeMutablePointer<CChar>? = nil
    if let bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nil) {
        serial = BN_bn2hex(bn)
        BN_free(bn)
    }
    defer { CRYPTO_free(serial, nil, 0) }

    // SHA-256 of the DER, lowercase hex.
    var digest = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))   // EVP_MAX_MD_SIZE (64)
    var digestLength: UInt32 = 0
    var hex = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0),
               UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))   // 136 bytes
    let digested = withUnsafeMutableBytes(of: &digest) { d in
        X509_digest(x, EVP_sha256(), d.baseAddress?.assumingMemoryBound(to: UInt8.self), &digestLength) == 1
    }
    guard digested else { return false }
    withUnsafeBytes(of: &digest) { d in
        withUnsafeMutableBytes(of: &hex) { h in
            let digits: StaticString = "0123456789abcdef"
            let table = digits.utf8Start
            for i in 0..<Int(digestLength) {
                h[2 * i] = table[Int(d[i] >> 4)]
                h[2 * i + 1] = table[Int(d[i] & 15)]
            }
            h[2 * Int(digestLength)] = 0
        }
    }

    // subjectAltName entries as "DNS:..." / "IP:...".
    let sanNames = X509_get_ext_d2i(x, NID_subject_alt_name, nil, nil).map { OpaquePointer($0) }
    defer { if let sanNames { xpio_general_names_free(sanNames) } }
    let sanTotal = sanNames.map { Int(xpio_sk_general_name_num($0)) } ?? 0
    let entrySize = 1024
    var sanList: UnsafeMutablePointer<UnsafePointer<CChar>?>? = nil
    var sanStorage: UnsafeMutablePointer<CChar>? = nil
    if sanTotal > 0 {
        sanList = malloc(sanTotal * MemoryLayout<UnsafePointer<CChar>?>.stride)?.assumingMemoryBound(to: UnsafePointer<CChar>?.self)
        sanStorage = malloc(sanTotal * entrySize)?.assumingMemoryBound(to: CChar.self)
        if sanList == nil || sanStorage == nil {
            free(sanList)
            free(sanStorage)
            return false
        }
    }
    defer {
        free(sanList)
        free(sanStorage)
    }
    var sanCount = 0
    if let sanNames, let sanList, let sanStorage {
        for i in 0..<sanTotal {
            let slot = sanStorage + i * entrySize
            if xpio_general_name_text(sanNames, Int32(i), slot, entrySize) >= 0 {
                sanList[sanCount] = UnsafePointer(slot)
                sanCount += 1
            }
        }
    }

    withUnsafeBytes(of: &hex) { h in
        var certificate = xpio_tls_certificate()
        certificate.subject = subjectText
        certificate.issuer = issuerText
        certificate.serial = UnsafePointer(serial)
        certificate.not_before = epoch(X509_get0_notBefore(x))
        certificate.not_after = epoch(X509_get0_notAfter(x))
        certificate.san = UnsafePointer(sanList)
        certificate.nsan = Int32(sanCount)
        certificate.sha256 = h.baseAddress?.assumingMemoryBound(to: CChar.self)
        certificate.pem = pemText
        certificate.pem_length = pemLength
        withUnsafePointer(to: &certificate) { each(user, $0) }
    }
    return true
}

/// A memory BIO's bytes as a C string (a NUL appended inside the BIO, not
/// counted in `length`); nil if OpenSSL could not grow it.
private func terminated(_ bio: OpaquePointer, _ length: UnsafeMutablePointer<Int>?) -> UnsafePointer<CChar>? {
    var zero: CChar = 0
    guard BIO_write(bio, &zero, 1) == 1 else { return nil }
    var data: UnsafePointer<CChar>? = nil
    let n = xpio_bio_mem_data(bio, &data)
    guard n >= 1, let data else { return nil }
    length?.pointee = Int(n) - 1
    return data
}

/// An ASN1_TIME as seconds since the epoch (UTC), 0 if it does not parse.
private func epoch(_ time: UnsafePointer<ASN1_TIME>?) -> Int64 {
    guard let time else { return 0 }
    var parts = tm()
    guard ASN1_TIME_to_tm(time, &parts) == 1 else { return 0 }
    return Int64(timegm(&parts))
}
