import CSystem
import Runtime

// The few entries whose Lua arguments need more than a type's reader
// before the runtime can take them; the spec binds them here by name.

enum SocketBinding {
    /// `what`: a `w` in it shuts down writing, an `r` reading.
    static func shutdown(_ socket: Socket, _ what: LuaString) throws(Failure) {
        let read = what.bytes.contains(UInt8(ascii: "r"))
        let write = what.bytes.contains(UInt8(ascii: "w"))
        guard read || write else { throw .badArgument(2, "\"r\", \"w\" or \"rw\" expected") }
        try socket.shutdown(read: read, write: write)
    }
}

enum ProcessBinding {
    /// A signal given as a number, a name (`signal` enum) or nothing (SIGKILL).
    static func signalNumber(_ value: Value, argument: CInt) throws(Failure) -> CInt {
        if value.isAbsent { return SIGKILL }
        if let number = value.optionalInteger {
            guard number > 0 && number <= Int64(Signal.highest) else { throw .badArgument(argument, "invalid signal number") }
            return CInt(number)
        }
        return value.enumCase(Signal.self).number
    }
}

/// `xpio.spawn(args, env, files, attrs)`: the decoded tables (C has checked
/// every type, NULs and names) made into a `SpawnRequest`; the socket
/// objects handed to the child are closed once it has started.
enum SpawnBinding {
    static func spawn(args: [Value], env: [Value], files: [Value], attrs: Record_attrs) throws(Failure) -> Process {
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { UnsafeMutablePointer(mutating: $0.string.cString) }
        argv.append(nil)
        guard let program = attrs.exe?.cString ?? argv.first.flatMap({ $0.map { UnsafePointer($0) } }) else {
            throw .badArgument(1, "args[1] or attrs.exe must name the program")
        }

        // "NAME=value" strings, freed on return.
        var envp: [UnsafeMutablePointer<CChar>?] = []
        defer { for entry in envp { entry?.deallocate() } }
        var pair = 0
        while pair + 1 < env.count {
            let name = env[pair].string.bytes, value = env[pair + 1].string.bytes
            let entry = UnsafeMutablePointer<CChar>.allocate(capacity: name.count + value.count + 2)
            UnsafeMutableRawPointer(entry).copyMemory(from: name.baseAddress!, byteCount: name.count)
            entry[name.count] = CChar(UInt8(ascii: "="))
            if value.count > 0 {
                UnsafeMutableRawPointer(entry + name.count + 1).copyMemory(from: value.baseAddress!, byteCount: value.count)
            }
            entry[name.count + 1 + value.count] = 0
            envp.append(entry)
            pair += 2
        }
        envp.append(nil)

        // child descriptor -> socket object or parent descriptor.
        var map: [(target: CInt, source: CInt)] = []
        var granted: [Socket] = []
        pair = 0
        while pair + 1 < files.count {
            let target = files[pair].integer
            guard target < 1 << 20 else { throw .badArgument(3, "file numbers must be below 2^20") }
            let source: CInt
            if let number = files[pair + 1].optionalInteger {
                guard number <= Int64(CInt.max) else { throw .system(EBADF) }
                source = CInt(number)
            } else {
                let socket = try files[pair + 1].object(Socket.self, "socket")
                source = try socket.descriptor()
                granted.append(socket)
            }
            map.append((CInt(target), source))
            pair += 2
        }

        var request = SpawnRequest(program: program, arguments: argv, environment: envp, files: map)
        request.directory = attrs.cwd?.cString
        if attrs.pgroup.optionalBoolean == true { request.processGroup = 0 }
        if let leader = attrs.pgroup.optionalObject(Process.self) { request.processGroup = leader.pid }
        request.newSession = attrs.setsid ?? false
        let process = try Spawn.start(request, searchPath: strchr(program, CInt(UInt8(ascii: "/"))) == nil)
        // Handed over: the child has them now; XPIO must not use them again.
        for socket in granted where socket.isOpen { socket.dispose() }
        return process
    }
}
