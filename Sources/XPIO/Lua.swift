import CLua
import Runtime

/// Lua stack helpers: used by generated code (`Glue.swift`) and the API
/// enums only. None of them raises (see the rule in `xpio_lua.h`): argument
/// types were checked in C before a body runs, and failures come back as a
/// status for the trampoline.
typealias LuaState = OpaquePointer?

/// A Lua string argument: bytes that stay valid while the value is on the
/// stack, and NUL-terminated (Lua guarantees it).
struct LuaString {
    let bytes: UnsafeRawBufferPointer
    var cString: UnsafePointer<CChar> { bytes.baseAddress!.assumingMemoryBound(to: CChar.self) }
    /// True when the string has no NUL inside (so C sees all of it).
    var isCString: Bool { !bytes.contains(0) }
}

enum Lua {
    // MARK: arguments

    static func string(_ L: LuaState, _ index: CInt) -> LuaString {
        var length = 0
        let pointer = lua_tolstring(L, index, &length)
        return LuaString(bytes: UnsafeRawBufferPointer(start: pointer, count: length))
    }

    static func optionalString(_ L: LuaState, _ index: CInt) -> LuaString? {
        lua_type(L, index) == LUA_TSTRING || lua_type(L, index) == LUA_TNUMBER ? string(L, index) : nil
    }

    static func integer(_ L: LuaState, _ index: CInt) -> Int64 { lua_tointegerx(L, index, nil) }

    static func integer(_ L: LuaState, _ index: CInt, default value: Int64) -> Int64 {
        isAbsent(L, index) ? value : lua_tointegerx(L, index, nil)
    }

    static func optionalInteger(_ L: LuaState, _ index: CInt) -> Int64? {
        isAbsent(L, index) ? nil : lua_tointegerx(L, index, nil)
    }

    static func number(_ L: LuaState, _ index: CInt) -> Double { lua_tonumberx(L, index, nil) }

    static func optionalNumber(_ L: LuaState, _ index: CInt) -> Double? {
        isAbsent(L, index) ? nil : lua_tonumberx(L, index, nil)
    }

    static func boolean(_ L: LuaState, _ index: CInt) -> Bool { lua_toboolean(L, index) != 0 }

    /// None, nil or false: how an optional argument is left out.
    static func isAbsent(_ L: LuaState, _ index: CInt) -> Bool {
        let type = lua_type(L, index)
        return type <= LUA_TNIL || (type == LUA_TBOOLEAN && lua_toboolean(L, index) == 0)
    }

    // MARK: objects
    //
    // An object is a full userdata holding one retained Swift reference
    // (nil once collected), with the kind's metatable.

    static func object<T: AnyObject>(_ L: LuaState, _ index: CInt, _ type: T.Type) -> T? {
        guard let slot = lua_touserdata(L, index),
              let pointer = slot.load(as: UnsafeMutableRawPointer?.self) else { return nil }
        return Unmanaged<T>.fromOpaque(pointer).takeUnretainedValue()
    }

    static func optionalObject<T: AnyObject>(_ L: LuaState, _ index: CInt, _ type: T.Type) -> T? {
        isAbsent(L, index) ? nil : object(L, index, type)
    }

    /// Takes the reference out of the userdata (for __gc): later calls see nil.
    static func takeObject<T: AnyObject>(_ L: LuaState, _ index: CInt, _ type: T.Type) -> T? {
        guard let slot = lua_touserdata(L, index),
              let pointer = slot.load(as: UnsafeMutableRawPointer?.self) else { return nil }
        slot.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
        return Unmanaged<T>.fromOpaque(pointer).takeRetainedValue()
    }

    /// Pushes an empty object of `T`'s kind and returns its stack index. It is
    /// made before the resource it will hold, so that running out of memory
    /// here can leak nothing.
    static func newObject<T: ObjectAPI>(_ L: LuaState, _ type: T.Type) -> CInt {
        let slot = lua_newuserdatauv(L, MemoryLayout<UnsafeMutableRawPointer?>.size, T.userValues)!
        slot.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
        luaL_setmetatable(L, cString(T.metatable))
        return lua_gettop(L)
    }

    static func setObject<T: AnyObject>(_ L: LuaState, _ index: CInt, _ object: T) {
        lua_touserdata(L, index)!.storeBytes(of: Unmanaged.passRetained(object).toOpaque(), as: UnsafeMutableRawPointer?.self)
    }

    // MARK: results

    static func pushTrue(_ L: LuaState) -> CInt {
        lua_pushboolean(L, 1)
        return 1
    }

    static func push(_ L: LuaState, _ value: Int64) -> CInt {
        lua_pushinteger(L, value)
        return 1
    }

    static func push(_ L: LuaState, _ value: Int) -> CInt { push(L, Int64(value)) }
    static func push(_ L: LuaState, _ value: CInt) -> CInt { push(L, Int64(value)) }

    static func push(_ L: LuaState, _ value: Double) -> CInt {
        lua_pushnumber(L, value)
        return 1
    }

    static func push(_ L: LuaState, _ value: Bool) -> CInt {
        lua_pushboolean(L, value ? 1 : 0)
        return 1
    }

    static func push(_ L: LuaState, _ bytes: UnsafeRawBufferPointer) -> CInt {
        _ = lua_pushlstring(L, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        return 1
    }

    static func push(_ L: LuaState, _ text: StaticString) -> CInt {
        _ = lua_pushlstring(L, UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self), text.utf8CodeUnitCount)
        return 1
    }

    /// What `read` returns: the bytes, or a single nil at end of stream.
    static func push(_ L: LuaState, _ result: ReadResult) -> CInt {
        switch result {
        case .bytes(let bytes): return push(L, bytes)
        case .end:
            lua_pushnil(L)
            return 1
        }
    }

    static func push(_ L: LuaState, _ status: ExitStatus) -> CInt {
        switch status {
        case .exited(let code): _ = push(L, "exit" as StaticString); _ = push(L, code)
        case .signaled(let signal): _ = push(L, "signal" as StaticString); _ = push(L, signal)
        }
        return 2
    }

    static func push(_ L: LuaState, _ value: SocketOption.Value) -> CInt {
        switch value {
        case .flag(let flag): return push(L, flag)
        case .size(let size): return push(L, size)
        }
    }

    static func push(_ L: LuaState, _ address: Address) -> CInt {
        var text: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes: "255.255.255.255:65535" fits
        return withUnsafeMutableBytes(of: &text) { buffer in
            push(L, UnsafeRawBufferPointer(rebasing: buffer[..<address.format(into: buffer)]))
        }
    }

    /// The failure as results (`nil, message`), or as a status that makes the
    /// trampoline retry, yield or raise.
    static func fail(_ L: LuaState, _ failure: Failure) -> CInt {
        switch failure {
        case .retry:
            return CInt(XPIO_RETRY)
        case .system(let code):
            lua_pushnil(L)
            xpio_pusherrno(L, code)
            return 2
        case .xpio(let message):
            lua_pushnil(L)
            return push(L, message) + 1
        case .closed(let kind):
            lua_pushnil(L)
            xpio_pushclosed(L, cString(kind))
            return 2
        case .badArgument(let index, let reason):
            _ = push(L, reason)
            return CInt(XPIO_ARGERROR) - index
        case .raise(let message):
            _ = push(L, message)
            return CInt(XPIO_RAISE)
        }
    }

    // MARK: registration (luaopen_xpio)

    static func setFunction(_ L: LuaState, _ name: StaticString, _ signature: StaticString, _ body: lua_CFunction) {
        xpio_pushfunction(L, cString(name), cString(signature), body)
        lua_setfield(L, -2, cString(name))
    }

    static func setBlocking(_ L: LuaState, _ name: StaticString, _ signature: StaticString, _ attempt: lua_CFunction, when partner: StaticString) {
        lua_getfield(L, -1, cString(partner))
        xpio_pushblocking(L, cString(name), cString(signature), attempt)
        lua_setfield(L, -2, cString(name))
    }

    static func setField(_ L: LuaState, _ name: StaticString, _ pushed: CInt) {
        lua_setfield(L, -2, cString(name))
    }

    /// Pushes the kind's metatable and its methods table.
    static func beginKind(_ L: LuaState, _ metatable: StaticString) {
        _ = luaL_newmetatable(L, cString(metatable))
        xpio_newtable(L)
    }

    /// Pops the methods table and the metatable, after filling the metatable.
    static func endKind(_ L: LuaState, _ code: StaticString, gc: lua_CFunction, close: lua_CFunction, tostring: lua_CFunction) {
        lua_setfield(L, -2, "__index")
        xpio_pushfunction(L, "__gc", cString(code), gc)
        lua_setfield(L, -2, "__gc")
        xpio_pushfunction(L, "__close", cString(code), close)
        lua_setfield(L, -2, "__close")
        xpio_pushfunction(L, "__tostring", "a", tostring)
        lua_setfield(L, -2, "__tostring")
        xpio_pop(L, 1)
    }

    static func cString(_ text: StaticString) -> UnsafePointer<CChar> {
        UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
    }
}

/// What every object kind's API enum provides besides its entries; the
/// generated glue adds `metatable` from the spec.
protocol ObjectAPI {
    associatedtype Object: AnyObject
    static var metatable: StaticString { get }
    /// Lua values kept with each object (see `TqueueAPI`).
    static var userValues: CInt { get }
}

extension ObjectAPI {
    static var userValues: CInt { 0 }
}

/// A read's result: bytes in the shared read buffer, or end of stream.
enum ReadResult {
    case bytes(UnsafeRawBufferPointer)
    case end
}
