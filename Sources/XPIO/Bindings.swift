import CSystem
import Runtime

// The few entries whose Lua arguments need more than a type's reader
// before the runtime can take them; the spec binds them here by name.
// Those that find argument errors (their spec binding passes `@name`,
// the argument's number) throw `BindingFailure`: the runtime's `Failure`
// knows nothing of Lua's arguments.

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
    static func shutdown(_ socket: Socket, _ what: LuaString, argument: CInt) throws(BindingFailure) {
        let read = what.bytes.contains(UInt8(ascii: "r"))
        let write = what.bytes.contains(UInt8(ascii: "w"))
        guard read || write else { throw .badArgument(argument, "\"r\", \"w\" or \"rw\" expected") }
        do throws(Failure) { try socket.shutdown(read: read, write: write) } catch { throw .runtime(error) }
    }

    /// `socket:wait(what)`: until the socket is ready for `what`.
    static func wait(_ socket: Socket, _ what: LuaString, argument: CInt) throws(BindingFailure) {
        let readiness = try readiness(what, argument: argument)
        do throws(Failure) { try socket.ready(readiness) } catch { throw .runtime(error) }
    }

    /// `socket:when_wait(task, what)`: what to wait on for `what`.
    static func waitTarget(_ socket: Socket, _ what: LuaString, argument: CInt) throws(BindingFailure) -> WaitTarget? {
        let readiness = try readiness(what, argument: argument)
        do throws(Failure) { return try socket.readinessTarget(readiness) } catch { throw .runtime(error) }
    }

    /// `"r"` or `"w"`: the readiness `wait` and `when_wait` take.
    static func readiness(_ what: LuaString, argument: CInt) throws(BindingFailure) -> Readiness {
        let bytes = what.bytes
        if bytes.count == 1 && bytes[0] == UInt8(ascii: "r") { return .read }
        if bytes.count == 1 && bytes[0] == UInt8(ascii: "w") { return .write }
        throw .badArgument(argument, "\"r\" or \"w\" expected")
    }

    /// `socket:write(data, i, j)`: `data` (a string, or an array of strings
    /// taken as their concatenation) from byte `i` to byte `j` as
    /// `string.sub` reads them, starting `progress` bytes in (a blocking
    /// write's earlier tries): one `send`, or one `sendmsg`/`writev` for an
    /// array (at most `IOV_MAX` strings per call).
    static func write(_ socket: Socket, _ data: Union_string_array_string, _ i: Int64?, _ j: Int64?, progress: Int64) throws(Failure) -> Moved {
        let parts: [UnsafeRawBufferPointer]
        switch data {
        case .string(let text):
            let range = substring(length: text.bytes.count, i, j)
            let from = range.lowerBound + Int(progress)
            let written = try socket.write(UnsafeRawBufferPointer(rebasing: text.bytes[from..<range.upperBound]))
            return Moved(count: written, remaining: Int64(range.upperBound - from - written), to: socket)
        case .array_string(let strings):
            parts = strings.map { $0.bytes }
        }
        let range = substring(length: parts.reduce(0) { $0 + $1.count }, i, j)
        // The vectors of bytes from..<upper of the concatenation.
        let from = range.lowerBound + Int(progress), upper = range.upperBound
        var used = 0, offset = 0, selected = 0
        for part in parts where used < vectorCapacity {
            defer { offset += part.count }
            let start = max(from, offset), end = min(upper, offset + part.count)
            guard start < end else { continue }
            vectors[used] = iovec(iov_base: UnsafeMutableRawPointer(mutating: part.baseAddress! + (start - offset)), iov_len: end - start)
            used += 1
            selected += end - start
        }
        // A datagram is one call's bytes: more strings than one call takes
        // are gathered into one block, not sent as several datagrams.
        if selected < upper - from && socket.isDatagram {
            return Moved(count: try writeGathered(socket, parts, from..<upper), remaining: 0)
        }
        // Nothing selected: an empty write all the same (an empty datagram).
        let written = used == 0 ? try socket.write(UnsafeRawBufferPointer(start: nil, count: 0))
                                : try socket.write(vectors: UnsafeBufferPointer(start: vectors, count: used))
        return Moved(count: written, remaining: Int64(upper - from - written), to: socket)
    }

    /// Writes bytes `range` of the concatenation of `parts` from one block
    /// (malloc'd: a memory failure is ENOMEM, not a trap).
    private static func writeGathered(_ socket: Socket, _ parts: [UnsafeRawBufferPointer], _ range: Range<Int>) throws(Failure) -> Int {
        guard let block = malloc(range.count) else { throw .system(ENOMEM) }
        defer { free(block) }
        var offset = 0
        for part in parts {
            defer { offset += part.count }
            let start = max(range.lowerBound, offset), end = min(range.upperBound, offset + part.count)
            guard start < end else { continue }
            (block + (start - range.lowerBound)).copyMemory(from: part.baseAddress! + (start - offset), byteCount: end - start)
        }
        return try socket.write(UnsafeRawBufferPointer(start: block, count: range.count))
    }

    /// `socket:sendfile(file, offset, count)`, `progress` bytes in: `count`
    /// bytes, or (without one) up to the file's end, which a send of
    /// nothing tells.
    static func sendfile(_ socket: Socket, _ file: Socket, _ offset: Int64?, _ count: Int64?, progress: Int64) throws(Failure) -> Moved {
        let left = count.map { $0 - progress } ?? Int64(Int32.max)
        let sent = try socket.sendFile(from: file, offset: (offset ?? 0) + progress, count: Int(min(left, 0x7fff_f000)))
        return Moved(count: sent, remaining: count == nil ? (sent > 0 ? 1 : 0) : left - Int64(sent), to: socket)
    }

    /// The byte range `string.sub(s, i, j)` takes of `length` bytes:
    /// negative positions count from the end, out-of-range ones are
    /// clamped, and `i` past `j` is empty.
    static func substring(length: Int, _ i: Int64?, _ j: Int64?) -> Range<Int> {
        let size = Int64(length)
        var first = i ?? 1, last = j ?? -1
        if first < 0 { first = first >= -size ? size + first + 1 : 1 } else if first == 0 { first = 1 }
        if last < 0 { last = last >= -size ? size + last + 1 : 0 } else if last > size { last = size }
        guard first <= last else { return 0..<0 }
        return Int(first - 1)..<Int(last)
    }

    /// The scratch `iovec`s of vectored writes: at most IOV_MAX per call
    /// (the rest go in the blocking form's next try, or the caller's).
    static let vectorCapacity = 1024
    nonisolated(unsafe) static let vectors = UnsafeMutablePointer<iovec>.allocate(capacity: vectorCapacity)

    /// `socket:readuntil(delimiter, max)`: the delimiter is any bytes but none.
    static func readUntil(_ socket: Socket, _ delimiter: LuaString, limit: Int64, argument: CInt) throws(BindingFailure) -> BufferedRead {
        guard delimiter.bytes.count > 0 else { throw .badArgument(argument, "the delimiter must not be empty") }
        do throws(Failure) { return try socket.readUntil(delimiter.bytes, keep: false, limit: limit) } catch { throw .runtime(error) }
    }
}

enum FileBinding {
    /// `xpio.open(path, flags, mode)`: `flags` as `io.open` spells them.
    static func open(_ path: LuaString, _ flags: LuaString?, _ mode: Int64?, at: (flags: CInt, mode: CInt)) throws(BindingFailure) -> Socket {
        var letters = flags?.bytes ?? UnsafeRawBufferPointer(start: nil, count: 0)
        while let last = letters.last, last == UInt8(ascii: "b") { letters = UnsafeRawBufferPointer(rebasing: letters.dropLast()) }
        let update = letters.count == 2 && letters[1] == UInt8(ascii: "+")
        guard letters.count == (update ? 2 : 1) || flags == nil else {
            throw .badArgument(at.flags, "\"r\", \"w\", \"a\", \"r+\", \"w+\" or \"a+\" expected")
        }
        var bits: CInt
        switch letters.first ?? UInt8(ascii: "r") {
        case UInt8(ascii: "r"): bits = update ? O_RDWR : O_RDONLY
        case UInt8(ascii: "w"): bits = (update ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC
        case UInt8(ascii: "a"): bits = (update ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND
        default: throw .badArgument(at.flags, "\"r\", \"w\", \"a\", \"r+\", \"w+\" or \"a+\" expected")
        }
        let permissions = mode ?? 0o666
        guard permissions <= 0o7777 else { throw .badArgument(at.mode, "mode must be between 0 and 07777") }
        do throws(Failure) { return try Socket.open(path: path.cString, flags: bits, mode: mode_t(permissions)) } catch { throw .runtime(error) }
    }
}

enum ProcessBinding {
    /// `process:kill(signal)`.
    static func kill(_ process: Process, _ signal: Union_integer_signame?, argument: CInt) throws(BindingFailure) {
        let number = try signalNumber(signal, argument: argument)
        do throws(Failure) { try process.kill(number) } catch { throw .runtime(error) }
    }

    /// `process:killgroup(signal)`.
    static func killGroup(_ process: Process, _ signal: Union_integer_signame?, argument: CInt) throws(BindingFailure) {
        let number = try signalNumber(signal, argument: argument)
        do throws(Failure) { try process.killGroup(number) } catch { throw .runtime(error) }
    }

    /// `xpio.signal(signal)`: a watch of it.
    static func watch(_ signal: Union_integer_signame, argument: CInt) throws(BindingFailure) -> SignalWatch {
        let number = try signalNumber(signal, argument: argument)
        do throws(Failure) { return try SignalWatch.watch(number) } catch { throw .runtime(error) }
    }

    /// A signal given as a number, a name (`signal` enum) or nothing (SIGKILL).
    /// 0 sends nothing and probes whether the process is there (POSIX).
    static func signalNumber(_ value: Union_integer_signame?, argument: CInt) throws(BindingFailure) -> CInt {
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
                      attrs: Record_attrs, at: (args: CInt, files: CInt, attrs: CInt)) throws(BindingFailure) -> Process {
        guard let program = attrs.exe ?? args.first else {
            throw .badArgument(at.args, "args[1] or attrs.exe must name the program")
        }
        var request = SpawnRequest(program: program.cString, arguments: args.map { $0.cString },
                                   environment: env.map { (name: $0.key.bytes, value: $0.value.bytes) })
        for (target, value) in files {
            guard target < 1 << 20 else { throw .badArgument(at.files, "file numbers must be below 2^20") }
            switch value {
            case .size(let number):
                do throws(Failure) { request.files.append((CInt(target), .descriptor(try SocketBinding.descriptor(number)))) } catch { throw .runtime(error) }
            case .fileshortcut(.null): request.files.append((CInt(target), .null))
            case .fileshortcut(.stdout): request.files.append((CInt(target), .sameAsStdout))
            case .socket(let socket?): request.files.append((CInt(target), .handOver(socket)))
            case .socket(nil): throw .runtime(.closed("socket"))
            }
        }
        // "stdout" names files[1]'s file: files[1] must be one (not itself "stdout").
        let stdoutIsAFile = request.files.contains { if case .sameAsStdout = $0.source { return false } else { return $0.target == 1 } }
        if !stdoutIsAFile && request.files.contains(where: { if case .sameAsStdout = $0.source { return true } else { return false } }) {
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
        do throws(Failure) { return try Spawn.start(request) } catch { throw .runtime(error) }
    }
}
