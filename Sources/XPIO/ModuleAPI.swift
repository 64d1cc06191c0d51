import CLua
import CSystem
import Runtime

/// The module functions of `Spec/module.spec`.
enum ModuleAPI {
    static func socket(type: LuaString) throws(Failure) -> Socket {
        if type.bytes.elementsEqual(("TCP" as StaticString).utf8Buffer) { return try Socket.open(stream: true) }
        if type.bytes.elementsEqual(("UDP" as StaticString).utf8Buffer) { return try Socket.open(stream: false) }
        throw .xpio("xpio: unsupported socket type")
    }

    static func socketpair() throws(Failure) -> (Socket, Socket) { try Socket.pair() }

    static func pipe() throws(Failure) -> (Socket, Socket) { try Socket.pipe() }

    static func fdopen(fd: Int64) throws(Failure) -> Socket {
        guard fd >= 0 && fd <= Int64(CInt.max) else { throw .system(EBADF) }
        return try Socket.duplicate(CInt(fd))
    }

    static func tqueue() throws(Failure) -> TaskQueue { try TaskQueue() }

    static func setCurrentTask(_ L: LuaState, task: CInt) -> CInt {
        if Lua.isAbsent(L, task) { lua_pushnil(L) } else { lua_pushvalue(L, task) }
        xpio_setcurrenttask(L, -1)
        return 0
    }

    static func getCurrentTask(_ L: LuaState) -> CInt {
        xpio_pushcurrenttask(L)
        return 1
    }

    static func gettime(_ L: LuaState) -> CInt { Lua.push(L, Clock.now()) }

    static func version(_ L: LuaState) -> CInt { Lua.push(L, "0.1.0" as StaticString) }

    static func spawn(_ L: LuaState, args: CInt, env: CInt, files: CInt, attrs: CInt) throws(Failure) -> Process {
        try SpawnArguments.spawn(L, args: args, env: env, files: files, attrs: attrs)
    }

    /// xpio.env: the process environment as a table, read at load.
    static func env(_ L: LuaState) -> CInt {
        xpio_newtable(L)
        guard var entry = xpio_environ() else { return 1 }
        while let pointer = entry.pointee {
            let text = UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self)
            let length = strlen(pointer)
            if let equals = (0..<length).first(where: { text[$0] == UInt8(ascii: "=") }), equals > 0 {
                _ = lua_pushlstring(L, pointer, equals)
                _ = lua_pushstring(L, pointer + equals + 1)
                lua_rawset(L, -3)
            }
            entry += 1
        }
        return 1
    }
}

extension StaticString {
    var utf8Buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: utf8Start, count: utf8CodeUnitCount) }
}
