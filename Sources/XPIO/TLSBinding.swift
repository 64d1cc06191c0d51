import CLua
import CSystem
import CTLSABI
import Runtime

/// The TLS entries of Spec/tls.spec: their checked arguments turned into
/// the engine's plain C structures (Sources/CTLSABI), and the socket's
/// TLS operations. The engine itself is xpio/tls.so's; it is reached only
/// through the table `require "xpio.tls"` installed (`xpio_tls`).
enum TLSBinding {
    static func engine() throws(Failure) -> TLSEngine {
        guard let engine = xpio_tls_engine_installed() else { throw .xpio("xpio: tls: require \"xpio.tls\" first") }
        return UnsafeRawPointer(engine).assumingMemoryBound(to: xpio_tls_provider.self)
    }

    // MARK: contexts

    static func client(_ options: Record_tlsclient) throws(Failure) -> TLSContext {
        var config = xpio_tls_config()
        config.server = 0
        config.ca = options.ca?.cString
        config.verify = options.verify == false ? 0 : 1
        config.ignore_unexpected_eof = options.ignore_unexpected_eof == true ? 1 : 0
        config.session_cache = options.session_cache == true ? 1 : 0
        return try make(&config, cert: options.cert, key: options.key, password: options.password, alpn: options.alpn,
                        versions: (options.min_version, options.max_version), ciphers: (options.ciphers, options.ciphersuites))
    }

    static func server(_ options: Record_tlsserver) throws(Failure) -> TLSContext {
        var config = xpio_tls_config()
        config.server = 1
        config.client_ca = options.client_ca?.cString
        config.verify_client = options.verify_client.map { $0 == .require ? 2 : 1 } ?? 0
        config.tickets = options.tickets == false ? 0 : 1
        // The SNI map: name, cert, key, as three parallel lists.
        var names: [UnsafePointer<CChar>?] = [], certs: [UnsafePointer<CChar>?] = [], keys: [UnsafePointer<CChar>?] = []
        for (name, pair) in options.certs {
            guard let cert = pair.cert, let key = pair.key else { throw .xpio("xpio: tls: each of certs needs cert and key") }
            names.append(name.cString)
            certs.append(cert.cString)
            keys.append(key.cString)
        }
        return try names.withUnsafeBufferPointer { names throws(Failure) -> TLSContext in
            try certs.withUnsafeBufferPointer { certs throws(Failure) -> TLSContext in
                try keys.withUnsafeBufferPointer { keys throws(Failure) -> TLSContext in
                    config.sni_names = names.baseAddress
                    config.sni_certs = certs.baseAddress
                    config.sni_keys = keys.baseAddress
                    config.nsni = CInt(names.count)
                    return try make(&config, cert: options.cert, key: options.key, password: options.password, alpn: options.alpn,
                                    versions: (options.min_version, options.max_version), ciphers: (options.ciphers, options.ciphersuites))
                }
            }
        }
    }

    /// What both kinds of context take.
    private static func make(_ config: inout xpio_tls_config, cert: LuaString?, key: LuaString?, password: LuaString?,
                             alpn: [LuaString], versions: (LuaString?, LuaString?), ciphers: (LuaString?, LuaString?)) throws(Failure) -> TLSContext {
        let engine = try engine()
        config.cert = cert?.cString
        config.key = key?.cString
        config.password = password?.cString
        config.min_version = versions.0?.cString
        config.max_version = versions.1?.cString
        config.ciphers = ciphers.0?.cString
        config.ciphersuites = ciphers.1?.cString
        let protocols: [UnsafePointer<CChar>?] = alpn.map { $0.cString }
        return try protocols.withUnsafeBufferPointer { list throws(Failure) -> TLSContext in
            config.alpn = list.baseAddress
            config.nalpn = CInt(list.count)
            return try TLSContext(engine: engine, config: &config)
        }
    }

    // MARK: connections

    static func wrap(_ socket: Socket, _ context: TLSContext, _ options: Record_tlswrap) throws(Failure) -> Socket {
        let engine = try engine()
        let protocols: [UnsafePointer<CChar>?] = options.alpn.map { $0.cString }
        try protocols.withUnsafeBufferPointer { list throws(Failure) in
            try socket.startTLS(engine: engine, context: context, host: options.host?.cString,
                                alpn: list.isEmpty ? nil : list.baseAddress, alpnCount: list.count, session: options.session?.bytes)
        }
        return socket
    }

    static func channel(_ socket: Socket) throws(Failure) -> SecureChannel {
        _ = try socket.descriptor()
        guard let secure = socket.secure else { throw .xpio("xpio: tls: not a TLS socket") }
        return secure
    }

    static func handshake(_ socket: Socket) throws(Failure) {
        try channel(socket).handshake()
    }

    static func shutdown(_ socket: Socket, _ options: Record_tlsshutdown) throws(Failure) {
        try channel(socket).shutdown(waitForPeer: options.wait == true)
    }

    static func session(_ socket: Socket) throws(Failure) -> UnsafeRawBufferPointer? {
        try channel(socket).session()
    }

    /// What when_handshake and when_tls_shutdown wait on: the readiness
    /// TLS last asked of that operation.
    static func waitTarget(_ socket: Socket, _ operation: TLSOperation) throws(Failure) -> WaitTarget? {
        guard let readiness = try channel(socket).readiness(for: operation) else { return nil }
        return WaitTarget(socket, readiness)
    }
}

/// socket:tlsinfo() and socket:peer_certificate() (Sources/CLua/tls.c)
/// ask the engine with the socket's connection.
@_cdecl("xpio_socket_tls_connection")
func socketTLSConnection(_ object: UnsafeMutableRawPointer?, _ closed: UnsafeMutablePointer<CInt>?) -> UnsafeMutableRawPointer? {
    let socket = Unmanaged<Socket>.fromOpaque(object!).takeUnretainedValue()
    guard !socket.isClosed else {
        closed?.pointee = 1
        return nil
    }
    return socket.secure?.handle
}

/// Whether a blocking read of the socket waits for readability before its
/// first try (Sources/CLua/blocking.c; `Socket.readWouldFail`).
@_cdecl("xpio_socket_read_would_fail")
func socketReadWouldFail(_ object: UnsafeMutableRawPointer?) -> CInt {
    guard let object else { return 0 }
    return Unmanaged<Socket>.fromOpaque(object)._withUnsafeGuaranteedRef { $0.readWouldFail } ? 1 : 0
}
