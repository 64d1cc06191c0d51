import CSystem

/// The socket options XPIO knows (Lua names them by their POSIX names, in
/// the spec's `option` enum). `O_NONBLOCK` is a file status flag (fcntl);
/// the others are socket options (getsockopt/setsockopt).
public enum SocketOption {
    case tcpNoDelay, keepAlive, reuseAddress, reusePort, broadcast
    case receiveBuffer, sendBuffer, nonBlocking
    case v6Only, ttl, unicastHops, linger, error
    case keepIdle, keepInterval, keepCount

    /// (level, name) for getsockopt/setsockopt.
    var level: (CInt, CInt) {
        switch self {
        case .tcpNoDelay: return (CInt(IPPROTO_TCP), TCP_NODELAY)
        case .keepAlive: return (SOL_SOCKET, SO_KEEPALIVE)
        case .reuseAddress: return (SOL_SOCKET, SO_REUSEADDR)
        case .reusePort: return (SOL_SOCKET, SO_REUSEPORT)
        case .broadcast: return (SOL_SOCKET, SO_BROADCAST)
        case .receiveBuffer: return (SOL_SOCKET, SO_RCVBUF)
        case .sendBuffer: return (SOL_SOCKET, SO_SNDBUF)
        case .v6Only: return (CInt(IPPROTO_IPV6), IPV6_V6ONLY)
        case .ttl: return (CInt(IPPROTO_IP), IP_TTL)
        case .unicastHops: return (CInt(IPPROTO_IPV6), IPV6_UNICAST_HOPS)
        case .linger: return (SOL_SOCKET, SO_LINGER)
        case .error: return (SOL_SOCKET, SO_ERROR)
        case .keepIdle: return (CInt(IPPROTO_TCP), TCP_KEEPIDLE)
        case .keepInterval: return (CInt(IPPROTO_TCP), TCP_KEEPINTVL)
        case .keepCount: return (CInt(IPPROTO_TCP), TCP_KEEPCNT)
        case .nonBlocking: return (0, 0)
        }
    }
}

/// An option's value: a flag or an integer (a size, a count, seconds).
/// SO_LINGER is `false` when off and its seconds when on.
///
/// Which one an option takes is the Spec's to say (its `option` enum gives
/// each case a value type, and the Lua edge fits values to it): the runtime
/// reads what the kernel holds, an `int`, as an integer (O_NONBLOCK, a file
/// status bit, as a flag), and sets an `int` option from either.
public enum OptionValue {
    case flag(Bool)
    case integer(Int64)
}

extension Socket {
    /// The corresponding C functions are `getsockopt` and `fcntl(F_GETFL)`.
    public func option(_ option: SocketOption) throws(Failure) -> OptionValue {
        let fd = try descriptor()
        switch option {
        case .nonBlocking:
            return .flag(try Sys.fcntl(fd, F_GETFL, 0).get() & O_NONBLOCK != 0)
        case .linger:
            var value = linger()
            var length = socklen_t(MemoryLayout<linger>.size)
            try Sys.getsockopt(fd, SOL_SOCKET, SO_LINGER, &value, &length).get()
            return value.l_onoff != 0 ? .integer(Int64(value.l_linger)) : .flag(false)
        default:
            let (level, name) = option.level
            return .integer(Int64(try intOption(level, name)))
        }
    }

    /// The corresponding C functions are `setsockopt` and `fcntl(F_SETFL)`.
    public func setOption(_ option: SocketOption, _ value: OptionValue) throws(Failure) {
        let fd = try descriptor()
        switch (option, value) {
        case (.error, _):
            throw .xpio("xpio: SO_ERROR is read-only")
        case (.nonBlocking, .flag(let flag)):
            try Descriptor.setBlocking(fd, !flag)
        case (.nonBlocking, .integer(let number)):
            try Descriptor.setBlocking(fd, number == 0)
        case (.linger, .flag(false)), (.linger, .integer(0...)):
            var raw = linger()
            if case .integer(let seconds) = value {
                raw.l_onoff = 1
                raw.l_linger = CInt(clamping: seconds)
            }
            try Sys.setsockopt(fd, SOL_SOCKET, SO_LINGER, &raw, socklen_t(MemoryLayout<linger>.size)).get()
        case (.linger, .flag(true)), (.linger, .integer):
            throw .xpio("xpio: bad option value")   // on, but for how long?
        case (_, .flag(let flag)):
            try setIntOption(fd, option, flag ? 1 : 0)
        case (_, .integer(let number)) where number >= 0:
            // Beyond INT_MAX is INT_MAX: the kernel caps buffer sizes, and
            // refuses a TTL that big as it would any other.
            try setIntOption(fd, option, CInt(clamping: number))
        case (_, .integer):
            // The glue checked the value against the option's type (a size is not negative).
            throw .xpio("xpio: bad option value")
        }
    }

    private func setIntOption(_ fd: CInt, _ option: SocketOption, _ number: CInt) throws(Failure) {
        let (level, name) = option.level
        var raw = number
        try Sys.setsockopt(fd, level, name, &raw, socklen_t(MemoryLayout<CInt>.size)).get()
    }

    /// An integer socket option; the buffer is zeroed first, since Linux's
    /// getsockopt need not fill all of it.
    func intOption(_ level: CInt, _ name: CInt) throws(Failure) -> CInt {
        var value: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        try Sys.getsockopt(try descriptor(), level, name, &value, &length).get()
        return value
    }
}
