import CSystem
import Runtime

// The few entries whose Lua arguments need more than a type's reader
// before the runtime can take them; the spec binds them here by name.

enum SocketBinding {
    /// `files`: socket objects or descriptor numbers (which stay open here).
    static func sendDescriptors(_ socket: Socket, _ data: LuaString, _ files: [Union_socket_size]) throws(Failure) -> Int {
        var fds: [CInt] = []
        for file in files {
            switch file {
            case .socket(let socket): fds.append(try descriptor(of: socket))
            case .size(let number): fds.append(try descriptor(number))
            }
        }
        return try socket.sendDescriptors(data.bytes, fds)
    }

    /// A descriptor number given as such: one no descriptor can have is
    /// EBADF, as the kernel says.
    static func descriptor(_ number: Int64) throws(Failure) -> CInt {
        guard number <= Int64(CInt.max) else { throw .system(EBADF) }
        return CInt(number)
    }

    /// A socket given for its descriptor (nil: collected, so closed).
    static func descriptor(of socket: Socket?) throws(Failure) -> CInt {
        guard let socket else { throw .closed("socket") }
        return try socket.descriptor()
    }

    /// `what`: a `w` in it shuts down writing, an `r` reading.
    static func shutdown(_ socket: Socket, _ what: LuaString, argument: CInt) throws(Failure) {
        let read = what.bytes.contains(UInt8(ascii: "r"))
        let write = what.bytes.contains(UInt8(ascii: "w"))
        guard read || write else { throw .badArgument(argument, "\"r\", \"w\" or \"rw\" expected") }
        try socket.shutdown(read: read, write: write)
    }

    /// `"r"` or `"w"`: the readiness `wait` and `when_wait` take.
    static func readiness(_ what: LuaString, argument: CInt) throws(Failure) -> Readiness {
        let bytes = what.bytes
        if bytes.count == 1 && bytes[0] == UInt8(ascii: "r") { return .read }
        if bytes.count == 1 && bytes[0] == UInt8(ascii: "w") { return .write }
        throw .badArgument(argument, "\"r\" or \"w\" expected")
    }

    /// A readuntil delimiter: any bytes but none.
    static func delimiter(_ text: LuaString, argument: CInt) throws(Failure) -> UnsafeRawBufferPointer {
        guard text.bytes.count > 0 else { throw .badArgument(argument, "the delimiter must not be empty") }
        return text.bytes
    }
}

enum ProcessBinding {
    /// A signal given as a number, a name (`signal` enum) or nothing (SIGKILL).
    /// 0 sends nothing and probes whether the process is there (POSIX).
    static func signalNumber(_ value: Union_integer_signame?, argument: CInt) throws(Failure) -> CInt {
        switch value {
        case nil: return SIGKILL
        case .integer(let number)?:
            guard number >= 0 && number <= Int64(xpio_signal_highest()) else { throw .badArgument(argument, "invalid signal number") }
            return CInt(number)
        case .signame(let name)?: return name.number
        }
    }
}

/// The shortcuts `files` takes besides sockets and numbers (the spec's `fileshortcut`).
enum FileShortcut { case null, stdout }

extension BufferedRead: ResultSet {
    func store(in call: Call) -> Int32 {
        switch self {
        case .bytes(let bytes):
            call.set(0, bytes)
            return 1
        case .end:
            call.set(0, nil as Int64?)
            return 1
        case .partial(let bytes):
            call.set(0, nil as Int64?)
            call.set(1, "xpio: end of stream" as StaticString)
            call.set(2, bytes)
            return 3
        }
    }
}

/// `xpio.spawn(args, env, files, attrs)`: the checked tables made into a
/// `SpawnRequest` (the runtime opens, aliases and hands over the files); the
/// checks only Lua's argument numbers can report are here.
enum SpawnBinding {
    /// `at`: the argument numbers of `args`, `files` and `attrs`, for errors.
    static func spawn(args: [LuaString], env: [(key: LuaString, value: LuaString)], files: [(key: Int64, value: Union_socket_size_fileshortcut)],
                      attrs: Record_attrs, at: (args: CInt, files: CInt, attrs: CInt)) throws(Failure) -> Process {
        guard let program = attrs.exe ?? args.first else {
            throw .badArgument(at.args, "args[1] or attrs.exe must name the program")
        }
        var request = SpawnRequest(program: program.cString, arguments: args.map { $0.cString },
                                   environment: env.map { (name: $0.key.bytes, value: $0.value.bytes) })
        for (target, value) in files {
            guard target < 1 << 20 else { throw .badArgument(at.files, "file numbers must be below 2^20") }
            switch value {
            case .size(let number): request.files.append((CInt(target), .descriptor(try SocketBinding.descriptor(number))))
            case .fileshortcut(.null): request.files.append((CInt(target), .null))
            case .fileshortcut(.stdout): request.files.append((CInt(target), .sameAsStdout))
            case .socket(let socket?): request.files.append((CInt(target), .handOver(socket)))
            case .socket(nil): throw .closed("socket")
            }
        }
        if request.files.contains(where: { if case .sameAsStdout = $0.source { return true } else { return false } }),
           !files.contains(where: { $0.key == 1 }) {
            throw .badArgument(at.files, "\"stdout\" needs files[1]")
        }
        request.directory = attrs.cwd?.cString
        switch attrs.pgroup {
        case .boolean(true)?: request.processGroup = 0
        case .process(let leader?)?: request.processGroup = leader.pid
        default: break
        }
        request.newSession = attrs.setsid ?? false
        if let mask = attrs.umask {
            guard mask <= 0o777 else { throw .badArgument(at.attrs, "attrs.umask must be between 0 and 0777") }
            request.umask = mode_t(mask)
        }
        return try Spawn.start(request)
    }
}
