import CLua
import CSystem
import Runtime

/// Turns `xpio.spawn(args, env, files, attrs)`'s tables into a
/// `SpawnRequest`, checking every value (bad ones are argument errors
/// naming `spawn`), then starts the child and closes the socket objects
/// that were handed to it.
///
/// Strings are used in place: each value is pushed on the Lua stack, where
/// it stays (and so stays alive) until the spawn is over. Only the
/// "NAME=value" environment strings are built, in memory freed on return.
enum SpawnArguments {
    static func spawn(_ L: LuaState, args: CInt, env: CInt, files: CInt, attrs: CInt) throws(Failure) -> Process {
        let base = lua_gettop(L)
        defer { lua_settop(L, base) }

        // args: an array of strings (numbers are converted).
        let count = Int(lua_rawlen(L, args))
        guard lua_checkstack(L, CInt(clamping: count + 8)) != 0 else { throw .badArgument(1, "too many arguments") }
        var argv: [UnsafeMutablePointer<CChar>?] = []
        argv.reserveCapacity(count + 1)
        for index in 1...max(count, 1) where count > 0 {
            let type = lua_rawgeti(L, args, lua_Integer(index))
            guard type == LUA_TSTRING || type == LUA_TNUMBER else { throw .badArgument(1, "arguments must be strings") }
            let text = Lua.string(L, -1)
            guard text.isCString else { throw .badArgument(1, "arguments may not contain NUL") }
            argv.append(UnsafeMutablePointer(mutating: text.cString))
        }
        argv.append(nil)

        // attrs: exe, cwd, pgroup, setsid (read raw: no user code runs).
        var program: UnsafePointer<CChar>? = count > 0 ? UnsafePointer(argv[0]) : nil
        var directory: UnsafePointer<CChar>?
        var group: pid_t?
        var newSession = false
        if !Lua.isAbsent(L, attrs) {
            if let exe = try stringField(L, attrs, "exe") { program = exe }
            directory = try stringField(L, attrs, "cwd")
            switch field(L, attrs, "pgroup") {
            case LUA_TNIL: break
            case LUA_TBOOLEAN: if Lua.boolean(L, -1) { group = 0 }
            case LUA_TUSERDATA:
                guard luaL_testudata(L, -1, ProcessAPI.metatable.cString) != nil,
                      let leader = Lua.object(L, -1, Process.self) else { throw .badArgument(4, "attrs.pgroup must be true or a process") }
                group = leader.pid
            default: throw .badArgument(4, "attrs.pgroup must be true or a process")
            }
            switch field(L, attrs, "setsid") {
            case LUA_TNIL: break
            case LUA_TBOOLEAN: newSession = Lua.boolean(L, -1)
            default: throw .badArgument(4, "attrs.setsid must be a boolean")
            }
        }
        guard let program else { throw .badArgument(1, "args[1] or attrs.exe must name the program") }

        // env: NAME -> value, the whole environment.
        var envp: [UnsafeMutablePointer<CChar>?] = []
        defer { for entry in envp { entry?.deallocate() } }
        if !Lua.isAbsent(L, env) {
            lua_pushnil(L)
            while lua_next(L, env) != 0 {
                guard lua_type(L, -2) == LUA_TSTRING else { throw .badArgument(2, "environment names must be strings") }
                let valueType = lua_type(L, -1)
                guard valueType == LUA_TSTRING || valueType == LUA_TNUMBER else {
                    throw .badArgument(2, "environment values must be strings")
                }
                let name = Lua.string(L, -2)
                guard name.bytes.count > 0, name.isCString, !name.bytes.contains(UInt8(ascii: "=")) else {
                    throw .badArgument(2, "environment names may not be empty or contain '=' or NUL")
                }
                lua_pushvalue(L, -1)   // convert a copy: lua_next needs the key untouched
                let value = Lua.string(L, -1)
                guard value.isCString else { throw .badArgument(2, "environment values may not contain NUL") }
                let entry = UnsafeMutablePointer<CChar>.allocate(capacity: name.bytes.count + value.bytes.count + 2)
                UnsafeMutableRawPointer(entry).copyMemory(from: name.bytes.baseAddress!, byteCount: name.bytes.count)
                entry[name.bytes.count] = CChar(UInt8(ascii: "="))
                if value.bytes.count > 0 {
                    UnsafeMutableRawPointer(entry + name.bytes.count + 1).copyMemory(from: value.bytes.baseAddress!, byteCount: value.bytes.count)
                }
                entry[name.bytes.count + 1 + value.bytes.count] = 0
                envp.append(entry)
                xpio_pop(L, 2)
            }
        }
        envp.append(nil)

        // files: child descriptor -> socket object or parent descriptor.
        var map: [(target: CInt, source: CInt)] = []
        var granted: [Socket] = []
        if !Lua.isAbsent(L, files) {
            lua_pushnil(L)
            while lua_next(L, files) != 0 {
                var isInteger: CInt = 0
                let target = lua_tointegerx(L, -2, &isInteger)
                guard lua_type(L, -2) == LUA_TNUMBER, isInteger != 0, target >= 0, target < 1 << 20 else {
                    throw .badArgument(3, "file numbers must be non-negative integers")
                }
                let source: CInt
                if lua_type(L, -1) == LUA_TNUMBER, lua_isinteger(L, -1) != 0 {
                    let number = Lua.integer(L, -1)
                    guard number >= 0 && number <= Int64(CInt.max) else { throw .badArgument(3, "files must be sockets or descriptor numbers") }
                    source = CInt(number)
                } else if luaL_testudata(L, -1, SocketAPI.metatable.cString) != nil, let socket = Lua.object(L, -1, Socket.self) {
                    source = try socket.descriptor()
                    granted.append(socket)
                } else {
                    throw .badArgument(3, "files must be sockets or descriptor numbers")
                }
                map.append((CInt(target), source))
                xpio_pop(L, 1)
            }
        }

        var request = SpawnRequest(program: program, arguments: argv, environment: envp, files: map)
        request.directory = directory
        request.processGroup = group
        request.newSession = newSession
        let searchPath = strchr(program, CInt(UInt8(ascii: "/"))) == nil
        let process = try Spawn.start(request, searchPath: searchPath)
        // Handed over: the child has them now; XPIO must not use them again.
        for socket in granted where socket.isOpen { try? socket.close() }
        return process
    }

    /// Pushes attrs[name] (raw) and returns its type.
    private static func field(_ L: LuaState, _ table: CInt, _ name: StaticString) -> CInt {
        _ = Lua.push(L, name)
        return lua_rawget(L, table)
    }

    /// attrs[name] as a C string, nil when absent; it stays on the stack.
    private static func stringField(_ L: LuaState, _ table: CInt, _ name: StaticString) throws(Failure) -> UnsafePointer<CChar>? {
        switch field(L, table, name) {
        case LUA_TNIL: return nil
        case LUA_TSTRING:
            let text = Lua.string(L, -1)
            guard text.isCString else { throw .badArgument(4, "attrs strings may not contain NUL") }
            return text.cString
        default: throw .badArgument(4, "attrs.exe and attrs.cwd must be strings")
        }
    }
}
