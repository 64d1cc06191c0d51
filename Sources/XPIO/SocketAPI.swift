import CLua
import Runtime

/// The socket entries of `Spec/socket.spec`: argument conversion and the
/// shape of results; the work is `Runtime.Socket`'s.
enum SocketAPI {
    typealias Object = Socket

    /// One buffer for every read: a read copies from here into a Lua string,
    /// so a `read(1 << 30)` never allocates a gigabyte for a few bytes.
    nonisolated(unsafe) static let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)

    static func bind(_ this: Socket, addr: LuaString) throws(Failure) {
        try this.bind(try Address.parse(addr.bytes))
    }

    static func listen(_ this: Socket, backlog: Int64) throws(Failure) {
        try this.listen(backlog: CInt(clamping: backlog))
    }

    static func connect(_ this: Socket, addr: LuaString) throws(Failure) {
        try this.connect(try Address.parse(addr.bytes))
    }

    static func accept(_ this: Socket) throws(Failure) -> Socket {
        try this.accept()
    }

    static func read(_ this: Socket, size: Int64) throws(Failure) -> ReadResult {
        guard size >= 0 else { throw .badArgument(2, "size must not be negative") }
        if size == 0 { return .bytes(UnsafeRawBufferPointer(start: nil, count: 0)) }
        let buffer = UnsafeMutableRawBufferPointer(rebasing: readBuffer[..<Int(min(size, Int64(readBuffer.count)))])
        let count = try this.read(into: buffer)
        return count == 0 ? .end : .bytes(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
    }

    static func write(_ this: Socket, data: LuaString) throws(Failure) -> Int {
        try this.write(data.bytes)
    }

    /// What when_read and when_write wait on; a closed socket refuses.
    static func readiness(_ this: Socket) throws(Failure) -> Socket? {
        _ = try this.descriptor()
        return this
    }

    static func getsockname(_ this: Socket) throws(Failure) -> Address { try this.localAddress() }

    static func getpeername(_ this: Socket) throws(Failure) -> Address { try this.peerAddress() }

    static func getsockopt(_ this: Socket, option: LuaString) throws(Failure) -> SocketOption.Value {
        _ = try this.descriptor()
        return try this.option(try SocketOption.named(option.bytes))
    }

    static func setsockopt(_ L: LuaState, _ this: Socket, option: LuaString, value: CInt) throws(Failure) {
        _ = try this.descriptor()
        let option = try SocketOption.named(option.bytes)
        let converted: SocketOption.Value
        switch lua_type(L, value) {
        case LUA_TBOOLEAN: converted = .flag(Lua.boolean(L, value))
        case LUA_TNUMBER where lua_isinteger(L, value) != 0: converted = .size(Lua.integer(L, value))
        default: throw .xpio("xpio: bad option value")
        }
        try this.setOption(option, converted)
    }

    static func shutdown(_ this: Socket, what: LuaString) throws(Failure) {
        let read = what.bytes.contains(UInt8(ascii: "r"))
        let write = what.bytes.contains(UInt8(ascii: "w"))
        guard read || write else { throw .badArgument(2, "\"r\", \"w\" or \"rw\" expected") }
        try this.shutdown(read: read, write: write)
    }

    static func close(_ this: Socket) throws(Failure) { try this.close() }

    static func fileno(_ this: Socket) throws(Failure) -> CInt { try this.descriptor() }

    /// __gc and __close.
    static func dispose(_ this: Socket) { try? this.close() }

    static func describe(_ L: LuaState, _ this: Socket?) -> CInt {
        xpio_pushdescription(L, "xpio.socket", this?.fd ?? -1, "fd")
        return 1
    }
}
