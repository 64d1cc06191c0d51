import CSystem

/// The socket options XPIO knows, by their POSIX names. Each is a flag
/// (boolean) or a size (non-negative integer); `O_NONBLOCK` is a file status
/// flag (fcntl), the others are socket options (getsockopt/setsockopt).
public enum SocketOption {
    case tcpNoDelay, keepAlive, reuseAddress, receiveBuffer, sendBuffer, nonBlocking

    public enum Value {
        case flag(Bool)
        case size(Int64)
    }

    /// The option with this name, or `.xpio("xpio: unknown socket option")`.
    public static func named(_ name: UnsafeRawBufferPointer) throws(Failure) -> SocketOption {
        for (option, text) in table where equal(name, text) { return option }
        throw .xpio("xpio: unknown socket option")
    }

    nonisolated(unsafe) private static let table: [(SocketOption, StaticString)] = [
        (.tcpNoDelay, "TCP_NODELAY"), (.keepAlive, "SO_KEEPALIVE"), (.reuseAddress, "SO_REUSEADDR"),
        (.receiveBuffer, "SO_RCVBUF"), (.sendBuffer, "SO_SNDBUF"), (.nonBlocking, "O_NONBLOCK"),
    ]

    private static func equal(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        for index in 0..<bytes.count where bytes[index] != text.utf8Start[index] { return false }
        return true
    }

    var isFlag: Bool {
        switch self {
        case .receiveBuffer, .sendBuffer: return false
        default: return true
        }
    }

    /// (level, name) for getsockopt/setsockopt.
    var level: (CInt, CInt) {
        switch self {
        case .tcpNoDelay: return (CInt(IPPROTO_TCP), TCP_NODELAY)
        case .keepAlive: return (SOL_SOCKET, SO_KEEPALIVE)
        case .reuseAddress: return (SOL_SOCKET, SO_REUSEADDR)
        case .receiveBuffer: return (SOL_SOCKET, SO_RCVBUF)
        case .sendBuffer: return (SOL_SOCKET, SO_SNDBUF)
        case .nonBlocking: return (0, 0)
        }
    }
}

extension Socket {
    /// The corresponding C functions are `getsockopt` and `fcntl(F_GETFL)`.
    public func option(_ option: SocketOption) throws(Failure) -> SocketOption.Value {
        if option == .nonBlocking {
            let flags = try Sys.fcntl(try descriptor(), F_GETFL, 0).get()
            return .flag(flags & O_NONBLOCK != 0)
        }
        let (level, name) = option.level
        let value = try intOption(level, name)
        return option.isFlag ? .flag(value != 0) : .size(Int64(value))
    }

    /// The corresponding C functions are `setsockopt` and `fcntl(F_SETFL)`.
    public func setOption(_ option: SocketOption, _ value: SocketOption.Value) throws(Failure) {
        let number: CInt
        switch (option.isFlag, value) {
        case (true, .flag(let flag)): number = flag ? 1 : 0
        case (false, .size(let size)) where size >= 0 && size <= Int64(CInt.max): number = CInt(size)
        default: throw .xpio("xpio: bad option value")
        }
        if option == .nonBlocking {
            try setBlocking(number == 0)
            return
        }
        let (level, name) = option.level
        var raw = number
        _ = try Sys.check(setsockopt(try descriptor(), level, name, &raw, socklen_t(MemoryLayout<CInt>.size))).get()
    }

    /// An integer socket option; the buffer is zeroed first, since Linux's
    /// getsockopt need not fill all of it.
    func intOption(_ level: CInt, _ name: CInt) throws(Failure) -> CInt {
        var value: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        _ = try Sys.check(getsockopt(try descriptor(), level, name, &value, &length)).get()
        return value
    }
}
