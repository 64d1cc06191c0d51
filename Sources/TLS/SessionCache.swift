import COpenSSL

/// The sessions a client context keeps when made with `session_cache =
/// true`: the newest one for each host a connection named, at most 64
/// hosts, the oldest dropped first. A later connection to the same host
/// resumes with it, without the caller handing `session()` over.
///
/// Sessions arrive through OpenSSL's new-session callback (with TLS 1.3,
/// after the handshake, when the client reads the server's tickets); each
/// one stored replaces the last for its host, since a TLS 1.3 ticket is
/// meant to be used once.
final class SessionCache {
    static let capacity = 64
    private var hosts: [UnsafeMutablePointer<CChar>] = []
    private var sessions: [OpaquePointer] = []

    deinit {
        for host in hosts { free(host) }
        for session in sessions { SSL_SESSION_free(session) }
    }

    /// The session kept for `host` (the cache keeps its reference).
    func session(for host: UnsafePointer<CChar>) -> OpaquePointer? {
        index(of: host).map { sessions[$0] }
    }

    /// Keeps `session` for `host`, taking the reference the callback gave.
    func store(_ session: OpaquePointer, for host: UnsafePointer<CChar>) {
        if let i = index(of: host) {
            SSL_SESSION_free(sessions[i])
            sessions[i] = session
            return
        }
        guard let copy = strdup(host) else {
            SSL_SESSION_free(session)
            return
        }
        if hosts.count == SessionCache.capacity {
            free(hosts.removeFirst())
            SSL_SESSION_free(sessions.removeFirst())
        }
        hosts.append(copy)
        sessions.append(session)
    }

    private func index(of host: UnsafePointer<CChar>) -> Int? {
        hosts.firstIndex { strcmp($0, host) == 0 }
    }
}

/// OpenSSL's new-session callback on a caching client context: the session
/// goes to the cache under the connection's host. Returns 1: the cache keeps
/// the reference.
func storeNewSession(_ ssl: OpaquePointer?, _ session: OpaquePointer?) -> Int32 {
    guard let ssl, let session, let bio = SSL_get_rbio(ssl), let data = BIO_get_data(bio) else { return 0 }
    let connection = Unmanaged<Connection>.fromOpaque(data).takeUnretainedValue()
    guard let cache = connection.context.sessions, let host = connection.cacheKey else { return 0 }
    cache.store(session, for: host)
    return 1
}
